"""One process, one float-math mode: the bundled DiT4DiT's actions on fixed observations, their
digest, and the latency of each call.

Run it as its own process (`python -m bench.perf.mathprobe --mode portable`): the mode has to be in the
environment before torch loads. `bench perf math` compares the modes with it, and a test holds
the portable digest to a committed value, so a machine that computes other bits fails it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time

from bench.core import mathmode

PROMPT = "pick up the black bowl between the plate and the ramekin and place it on the plate"  # libero_spatial 0


def observations(n: int, size: int = 224):
    """n fixed observations (seeded images, a mid-range state, the same prompt), one row each, at
    steps 0, 8, 16, ...: each step seeds different noise."""
    import numpy as np

    from bench.policies.contract import ObservationBatch

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        images = {c: rng.integers(0, 256, (1, size, size, 3), dtype=np.uint8) for c in ("agentview", "eye_in_hand")}
        state = rng.uniform(-0.5, 0.5, (1, 8)).astype(np.float32)
        out.append(ObservationBatch(["libero_spatial/0/0"], images, state, [PROMPT], np.array([8 * i])))
    return out


def probe(mode: str, calls: int = 8, repeats: int = 1) -> dict:
    """Actions of `calls` observations (digest over all their bytes) and per-call latency in seconds.
    `repeats` > 1 times the same calls again (the digest must not change)."""
    mathmode.apply(mode)
    from bench.policies.trained import TrainedPolicy
    from bench.policies.contract import EpisodeInfo
    from bench.sim.suites import get_suite

    policy = TrainedPolicy("dit4dit")
    mathmode.check(mode)
    task = get_suite("libero_spatial").task(0)
    policy.reset(EpisodeInfo("libero_spatial/0/0", task, 0, 7))
    obs = observations(calls)
    policy.act(obs[0])  # warm-up: first-call allocations
    digests, latencies = set(), []
    for _ in range(repeats):
        h = hashlib.sha256()
        for o in obs:
            t = time.perf_counter()
            chunk = policy.act(o)
            latencies.append(time.perf_counter() - t)
            h.update(chunk.tobytes())
        digests.add(h.hexdigest()[:16])
    return {"mode": mode, "actions_digest": sorted(digests)[0], "stable_within_process": len(digests) == 1,
            "calls": calls * repeats, "median_call_s": statistics.median(latencies), "latencies_s": latencies,
            "math": mathmode.describe(mode)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=mathmode.MODES, required=True)
    ap.add_argument("--calls", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    print(json.dumps(probe(args.mode, args.calls, args.repeats)))


if __name__ == "__main__":
    main()
