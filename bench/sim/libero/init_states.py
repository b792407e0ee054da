"""Initial states for our own LIBERO suites: sampled once, seeded, checked, committed.

LIBERO ships each task's initial states (its `.pruned_init` files); a suite written here needs its
own. Each candidate is the BDDL problem's placement sampler run from a seed; it is kept only if it is
physically valid: no two bodies interpenetrate (no contact deeper than `max_penetration`), and after
the protocol's wait steps every object is at rest where it was put (moved less than `max_settle`,
nothing fell off the table). The states, the seeds they came from, and the reasons candidates were
rejected are written beside the suite (`init_states.npz`, `init_states.json`).
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from typing import Callable

import numpy as np


def _object_positions(env) -> dict[str, np.ndarray]:
    inner = env.env
    sim = inner.sim
    out = {}
    for name, obj in inner.objects_dict.items():
        out[name] = np.array(sim.data.body_xpos[sim.model.body_name2id(obj.root_body)])
    return out


SUPPORTS = ("floor",)  # what LIBERO's floor scenes drop their objects onto
# what check_state verifies (written beside each task's states; reports without it: no contact deeper than 5 mm
# at reset, supports included, then at rest)
CHECK = "no contact deeper than 5 mm at reset (the floor excepted), none after the drop; at rest"


def _deepest_penetration(env, skip_supports: bool = False) -> tuple[float, str]:
    """The deepest contact between two bodies (and which), optionally not counting contacts with a support."""
    sim = env.env.sim
    worst, pair = 0.0, ""
    for i in range(sim.data.ncon):
        c = sim.data.contact[i]
        if c.dist < worst:
            b1 = sim.model.body_id2name(sim.model.geom_bodyid[c.geom1])
            b2 = sim.model.body_id2name(sim.model.geom_bodyid[c.geom2])
            if skip_supports and any(s in b for b in (b1, b2) for s in SUPPORTS):
                continue
            worst, pair = float(c.dist), f"{b1}/{b2}"
    return -worst, pair


def check_state(env, wait_steps: int, wait_action: np.ndarray, max_penetration: float = 0.005,
                rest_steps: int = 20, max_drift: float = 0.005) -> str | None:
    """None if the env's current state is valid, else why not. Steps the env (restore the state after).

    LIBERO places objects a little above their support and lets them drop during the protocol's wait
    steps, so rest is judged after those: over `rest_steps` more steps no object may drift more than
    `max_drift`, and none may have fallen off the table. Two objects may not interpenetrate, before or after
    the drop; an object may start inside the floor (LIBERO's floor scenes spawn the salad dressing 4 cm into
    it in every sample; the drop resolves it), but not stay there."""
    depth, pair = _deepest_penetration(env, skip_supports=True)
    if depth > max_penetration:
        return f"interpenetration ({pair})"
    start = _object_positions(env)
    for _ in range(wait_steps):
        env.step(wait_action)
    settled = _object_positions(env)
    depth, pair = _deepest_penetration(env)
    if depth > max_penetration:
        return f"interpenetration after the drop ({pair})"
    for _ in range(rest_steps):
        env.step(wait_action)
    after = _object_positions(env)
    for name, p in start.items():
        if after[name][2] < p[2] - 0.3:  # objects start up to ~15 cm above their support and drop onto it
            return f"fell off the table ({name})"
        if float(np.linalg.norm(after[name] - settled[name])) > max_drift:
            return f"not at rest ({name})"
    return None


def make_init_states(bddl: str, n: int, seed: int, wait_steps: int, wait_action: tuple[float, ...],
                     max_attempts: int | None = None, progress: Callable[[int, int], None] | None = None
                     ) -> tuple[np.ndarray, dict]:
    """`n` valid initial states of the BDDL problem, from candidate seeds seed*1000003 + k, k = 0, 1, ..."""
    from libero.libero.envs import OffScreenRenderEnv

    with contextlib.redirect_stdout(io.StringIO()):
        env = OffScreenRenderEnv(bddl_file_name=bddl, camera_heights=32, camera_widths=32, use_camera_obs=False)
    wait = np.asarray(wait_action, dtype=np.float64)
    kept, seeds, rejected = [], [], Counter()
    max_attempts = max_attempts or 4 * n
    k = 0
    try:
        while len(kept) < n and k < max_attempts:
            s = seed * 1_000_003 + k
            k += 1
            env.seed(s)
            with contextlib.redirect_stdout(io.StringIO()):
                env.reset()
            state = np.array(env.get_sim_state(), dtype=np.float64)
            why = check_state(env, wait_steps, wait)
            if why is None:
                kept.append(state)
                seeds.append(s)
            else:
                rejected[why.split(" (")[0]] += 1
            if progress:
                progress(len(kept), k)
    finally:
        env.close()
    if len(kept) < n:
        raise RuntimeError(f"{bddl}: only {len(kept)} of {k} candidate states were valid, {n} wanted "
                           f"(rejected: {dict(rejected)}): widen the BDDL's regions or raise max_attempts")
    return np.stack(kept), {"attempts": k, "kept_seeds": seeds, "rejected": dict(rejected)}


def bddl_digest(path: str) -> str:
    """What a task's initial states were made from: states of an edited BDDL problem are stale."""
    import hashlib
    from pathlib import Path

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def write_suite_init_states(suite, n: int, seed: int, task_ids: list[int] | None = None,
                            progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Make and save the initial states of a data suite's tasks (those already saved are kept: resumable)."""
    import json

    from bench.core.provenance import provenance
    from bench.sim.libero import data_suites

    name = suite.source.removeprefix("data:")
    if not suite.source.startswith("data:"):
        raise ValueError(f"{suite.name} is one of LIBERO's own suites; its initial states ship with LIBERO")
    path, report_path = data_suites.init_states_path(name), data_suites.init_states_path(name).with_suffix(".json")
    states = dict(np.load(path)) if path.is_file() else {}
    report = json.loads(report_path.read_text()) if report_path.is_file() else {"tasks": {}}
    for task in suite.tasks():
        made_from = report["tasks"].get(task.name, {}).get("bddl_sha256")
        current = made_from in (None, bddl_digest(task.env_id))  # None: states from before the digest was kept
        if (task_ids is not None and task.task_id not in task_ids) or (task.name in states and current
                                                                         and len(states[task.name]) >= n):
            continue
        arr, info = make_init_states(task.env_id, n, seed + task.task_id, suite.protocol.wait_steps,
                                     suite.protocol.wait_action,
                                     progress=(lambda kept, tried: progress(task.name, kept, tried)) if progress else None)
        states[task.name] = arr
        report["tasks"][task.name] = {"seed": seed + task.task_id, "bddl_sha256": bddl_digest(task.env_id),
                                      "check": CHECK, **info}
        np.savez_compressed(path, **states)  # after every task: an interrupted run keeps what it made
        report["provenance"] = provenance(suite.protocol)
        report_path.write_text(json.dumps(report, indent=1) + "\n")
    data_suites.init_states.cache_clear()
    return report
