"""`bench demos generate`: run the scripted expert through the runner (parallel
sim workers), keep successful episodes, write them in LIBERO's HDF5 layout.

A demo holds every action from the task's LIBERO initial state, the protocol's
wait steps included, so `replay` reproduces it exactly with no wait steps of its own. Attempt k
of a task starts from init state k mod 50 and seeds the expert's variations with
its own key, so repeated init states still give different demos; a rerun numbers its
attempts after the last one in the file, so it never repeats a demo.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from bench.policies import make_policy
from bench.policies.contract import check_spec
from bench.core.provenance import provenance
from bench.eval.runner import Planned, RunConfig, Runner
from bench.sim.suites import Suite


def _next_attempt(done_keys: set[str], suite_name: str, task_id: int) -> int:
    """First attempt number after those already in the file, so a rerun tops up with new seeds."""
    prefix = f"{suite_name}/{task_id}/attempt"
    done = [int(k[len(prefix):]) for k in done_keys if k.startswith(prefix)]
    return max(done) + 1 if done else 0


def generate(suite: Suite, task_ids: list[int], per_task: int, out: Path, resolution: int = 128,
             workers: int = 2, policy_name: str = "scripted", max_rounds: int = 4, on_episode=None,
             first_attempt: int = 0, pixel_path: str = "render_resize_uint8", frame_every: int = 1,
             retry_unsolved: bool = False) -> dict:
    """`first_attempt` > 0 numbers attempts from there: a held-out set whose demos cannot repeat those of a
    training set generated from attempt 0 (same expert, same seeds per attempt). `frame_every` k > 1 records
    camera frames on every k-th step only (bench.sim.worker.frame_recorded): about k times less rendering.
    A task that kept no demo in a whole round is written down in the file as unsolved, and a rerun skips it
    (the same attempts would fail the same way) unless `retry_unsolved` (after the expert changed)."""
    from bench.demos.libero_hdf5 import DemoWriter, file_frame_every, file_pixel_path, file_unsolved
    from bench.sim.frames import DEMO_PIXEL_PATHS

    if pixel_path not in DEMO_PIXEL_PATHS:
        raise ValueError(f"unknown pixel path {pixel_path!r}; valid: {', '.join(DEMO_PIXEL_PATHS)}")
    existing = file_pixel_path(out)
    if existing not in (None, pixel_path):
        raise ValueError(f"{out} holds demos made with pixel path {existing!r}, not {pixel_path!r}: one file, one "
                         "pixel path. Use another --out.")
    if frame_every < 1:
        raise ValueError(f"frame_every={frame_every} must be at least 1")
    existing_every = file_frame_every(out)
    if existing_every not in (None, frame_every):
        raise ValueError(f"{out} holds demos with frames every {existing_every} steps, not every {frame_every}: "
                         "one file, one frame spacing. Use another --out.")

    protocol = suite.protocol
    policy = make_policy(policy_name)
    check_spec(policy.spec, protocol, policy_name, suite.name)
    prov = provenance(protocol)
    writer = DemoWriter(out, {"suite": suite.name, "protocol": protocol.to_dict(), "generator": policy_name,
                              "resolution": resolution, "provenance": json.dumps(prov),
                              "env_args": {"type": 1, "env_name": "libero", "camera_heights": resolution,
                                           "camera_widths": resolution, "control": protocol.control},
                              # how frames were made (bench/sim/frames.py): models trained on them must
                              # see observations through the same path
                              "pixel_path": pixel_path, "render_resolution": protocol.resolution
                              if pixel_path == "render_resize_uint8" else resolution,
                              "frame_every": frame_every, "macros_image_convention": "opengl"})
    tasks = {tid: suite.task(tid) for tid in task_ids}
    done_keys = writer.episode_keys()
    attempts = {tid: max(first_attempt, _next_attempt(done_keys, suite.name, tid)) for tid in task_ids}
    stats = {"attempts": 0, "kept": 0}
    # tasks that kept no demo in a whole round, in this run or (unless retried) an earlier one on this file:
    # topping them up would only spin
    recorded = set(file_unsolved(out))  # a recorded task has no demo: only tasks that kept none are recorded
    unsolved: list[int] = [] if retry_unsolved else [t for t, task in tasks.items() if task.name in recorded]
    t0 = time.perf_counter()
    try:
        for round_ in range(max_rounds):
            have = writer.counts()
            queue: list[Planned] = []
            for tid, task in tasks.items():
                missing = per_task - have.get(task.name, 0)
                if missing <= 0 or tid in unsolved:
                    continue
                inits = suite.initial_conditions(tid)
                for _ in range(missing if round_ == 0 else int(np.ceil(missing * 1.5))):  # top-up rounds
                    k = attempts[tid]
                    attempts[tid] += 1
                    queue.append(Planned(f"{suite.name}/{tid}/attempt{k}", task, k % len(inits),
                                         np.asarray(inits[k % len(inits)]), protocol.wait_steps, False,
                                         protocol.max_steps))
            if not queue:
                break
            kept: dict[int, int] = {}

            def keep(p: Planned, traj: dict) -> None:
                if kept.get(p.task.task_id, 0) + have.get(p.task.name, 0) >= per_task:
                    return
                writer.add(traj, {
                    "bddl_file_name": p.task.env_id,
                    "bddl_file_content": Path(p.task.env_id).read_text(),
                    "problem_info": {"problem_name": "libero", "domain_name": "robosuite",
                                     "language_instruction": p.task.language},
                    "language_instruction": p.task.language, "task_id": p.task.task_id, "init_id": p.init_id,
                    "episode_key": p.key,
                })
                kept[p.task.task_id] = kept.get(p.task.task_id, 0) + 1
                stats["kept"] += 1

            run_dir = Path(str(out) + ".runs") / f"round{round_}"
            if (run_dir / "episodes.jsonl").exists():
                (run_dir / "episodes.jsonl").unlink()
            cfg = RunConfig(suite=suite, policy_name=policy_name, task_ids=task_ids, out=run_dir,
                            workers=workers, protocol=protocol, record_resolution=resolution,
                            record_pixel_path=pixel_path, record_frame_every=frame_every)
            Runner(cfg, policy, on_episode=on_episode, on_trajectory=keep).run(queue)
            stats["attempts"] += len(queue)
            unsolved += sorted(t for t in {p.task.task_id for p in queue} - set(kept)
                               if have.get(tasks[t].name, 0) == 0)
    finally:
        final = writer.counts()
        others = recorded - {t.name for t in tasks.values()}  # the verdicts on tasks not asked for stand
        writer.set_unsolved(sorted(others | {tasks[t].name for t in unsolved}))
        writer.close()
    return {"out": str(out), "per_task": {t.name: final.get(t.name, 0) for t in tasks.values()},
            "attempts": stats["attempts"], "kept": stats["kept"], "wall_s": round(time.perf_counter() - t0, 1),
            "unsolved": [tasks[t].name for t in unsolved]}
