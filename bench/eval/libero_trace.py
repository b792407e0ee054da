"""What the robot touches, chunk by chunk: one episode stepped in this process, MuJoCo's contact list read
after every executed chunk.

Written to find out why the scripted expert fails a task (a hand blocked by a container's wall looks, in the
records, like any other "ran out of steps"). The episode is the one `bench run` plays: the same initial
state, seed, wait steps and observations (the sim worker's own episode code), in a process started as a sim
worker is (its backend's environment variables set before numpy loads: they choose the BLAS kernels the
controllers' floats depend on), so the trace ends in the record's final state.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from typing import Iterator

import numpy as np

ROBOT = ("gripper", "finger", "robot", "hand")  # substrings of the robot's body and geom names in LIBERO scenes


@dataclass
class ChunkTrace:
    chunk: int
    steps: int  # policy steps taken after this chunk
    stage: str | None  # what the policy says it was doing (the scripted expert's primitive), if it says
    eef: list[float]  # end-effector position after the chunk (m)
    done: bool  # the task's goal held (the episode ends, as in `bench run`)
    state: str  # digest of the whole simulator state after the chunk (a record's final_state, at the end)
    contacts: list[dict] = field(default_factory=list)  # robot against anything: bodies, geoms, height (m)
    joints: dict = field(default_factory=dict)  # every articulated part's joint position (drawers, doors, knobs)


def robot_contacts(sim) -> list[dict]:
    """The active contacts with a robot geom on one side (each pair once), sorted."""
    import mujoco

    m, d = sim.env.env.sim.model._model, sim.env.env.sim.data._data

    def name(kind, i):
        return mujoco.mj_id2name(m, kind, i) or f"#{i}"

    seen = {}
    for i in range(d.ncon):
        c = d.contact[i]
        g = (c.geom1, c.geom2)
        names = [(name(mujoco.mjtObj.mjOBJ_BODY, m.geom_bodyid[x]), name(mujoco.mjtObj.mjOBJ_GEOM, x)) for x in g]
        robot = [any(s in f"{b} {n}" for s in ROBOT) for b, n in names]
        if not any(robot):
            continue
        (rb, rg), (ob, og) = names if robot[0] else names[::-1]
        key = (rg, og)
        z = round(float(c.pos[2]), 3)
        if key not in seen or z < seen[key]["z"]:
            seen[key] = {"robot_body": rb, "robot_geom": rg, "other_body": ob, "other_geom": og, "z": z}
    return sorted(seen.values(), key=lambda r: (r["robot_geom"], r["other_geom"]))


def trace(suite, task_id: int, init_id: int, policy, max_chunks: int | None = None, protocol=None
          ) -> Iterator[ChunkTrace]:
    """Play episode `init_id` of a LIBERO task with `policy` (under the suite's protocol unless another is
    given), yielding what happened after each chunk."""
    from bench.policies.contract import EpisodeInfo, ObservationBatch
    from bench.sim.libero.worker import make
    from bench.sim.worker import EpisodeStart, _Episode

    protocol, task = protocol or suite.protocol, suite.task(task_id)
    if task.backend != "libero":
        raise ValueError(f"{suite.name}: contacts are read from LIBERO's MuJoCo scenes, this suite runs "
                         f"{task.backend}")
    inits = suite.initial_conditions(task_id)
    if not 0 <= init_id < len(inits):
        raise ValueError(f"--init {init_id}: {suite.name} task {task_id} has initial states 0-{len(inits) - 1}")
    key = f"{suite.name}/{task_id}/{init_id}"
    start = EpisodeStart(key, task, protocol, inits[init_id], protocol.seed, protocol.wait_steps, protocol.max_steps,
                         policy.spec.cameras, privileged=policy.spec.privileged)
    sim = make(task, protocol)
    try:
        ep = _Episode(start, sim, 0.0)
        sim.reset_to(start.initial, start.seed)
        wait = np.asarray(protocol.wait_action, dtype=np.float64)
        for _ in range(start.wait_steps):
            ep.step(wait)
        sim.steps = 0
        policy.reset(EpisodeInfo(key, task, init_id, protocol.seed))
        chunk, done = 0, False
        while not done and sim.steps < start.max_steps and (max_chunks is None or chunk < max_chunks):
            actions = policy.act(ObservationBatch.stack([ep.observation()]))[0][: protocol.executed_chunk]
            stage = policy.stage(key) if hasattr(policy, "stage") else None
            for a in actions:
                done = ep.step(a)
                if done or sim.steps >= start.max_steps:
                    break
            scene = sim.privileged()
            eef = [round(float(v), 4) for v in scene["eef_pos"]]
            joints = {j: round(a["qpos"], 4) for j, a in scene["articulations"].items()}
            state = hashlib.sha256(sim.sim_state().tobytes()).hexdigest()[:16]
            yield ChunkTrace(chunk, sim.steps, stage, eef, bool(done), state, robot_contacts(sim), joints)
            chunk += 1
    finally:
        sim.close()


def run_trace(suite: str, task_id: int, init_id: int = 0, policy: str = "scripted", checkpoint: str | None = None,
              max_chunks: int | None = None, max_steps: int | None = None) -> Iterator[ChunkTrace]:
    """`trace` in a process of its own with the LIBERO backend's worker environment; chunks as they come.
    Raises ValueError with the process's last line when it fails (a bad task or init id, say)."""
    from bench.sim.backend import get_backend

    cmd = [sys.executable, "-m", __name__, "--suite", suite, "--task", str(task_id), "--init", str(init_id),
           "--policy", policy]
    for flag, v in (("--checkpoint", checkpoint), ("--chunks", max_chunks), ("--max-steps", max_steps)):
        if v is not None:
            cmd += [flag, str(v)]
    env = dict(os.environ, **dict(get_backend("libero").worker_env))
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          stdin=subprocess.DEVNULL) as proc:
        for line in proc.stdout:
            if line.startswith("{"):
                yield ChunkTrace(**json.loads(line))
        err = proc.stderr.read()
    if proc.returncode != 0:
        last = [ln for ln in err.strip().splitlines() if ln.strip()]
        raise ValueError(last[-1] if last else f"the trace process exited with {proc.returncode}")


def main(argv: list[str] | None = None) -> None:
    """`python -m bench.eval.libero_trace ...`: one JSON line per chunk on stdout (run_trace starts it)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", required=True)
    ap.add_argument("--task", type=int, required=True)
    ap.add_argument("--init", type=int, default=0)
    ap.add_argument("--policy", default="scripted")
    ap.add_argument("--checkpoint")
    ap.add_argument("--chunks", type=int)
    ap.add_argument("--max-steps", type=int)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("LP_NUM_THREADS", "1")
    from bench.policies import make_policy
    from bench.sim.rendering import configure_headless_gl
    from bench.sim.suites import get_suite

    configure_headless_gl()
    suite = get_suite(args.suite)
    protocol = suite.protocol.replace(max_steps=args.max_steps) if args.max_steps else None
    policy = make_policy(args.policy, checkpoint=args.checkpoint)
    try:
        for c in trace(suite, args.task, args.init, policy, max_chunks=args.chunks, protocol=protocol):
            print(json.dumps(asdict(c)), flush=True)
    except ValueError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
