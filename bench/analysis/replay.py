"""Action error along replayed demos, on the simulator's own rendering: is a closed-loop gap a pixel-path
mismatch, or the policy's own drift?

Each demo's recorded actions are replayed in the simulator from its initial state (a demo holds every action,
wait steps included, so the replay retraces it: `replay_success` checks that it still reaches the goal). At
every chunk boundary after the wait steps the policy samples a chunk from the simulator's own rendering at that
moment, through its own pixel path as `bench run` feeds it, and the chunk is compared with the demo's next
actions (the offline action error's metric). The states are the demo's, the pixels those of a live episode: an
error as low as the offline one rules out a mismatch between the frames a model was trained on and the frames
it is evaluated on, so what fails in closed loop is what the policy does once its own actions leave the demos'
states (compounding drift, and no demonstrated recovery to learn from).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.analysis.offline import METRIC, cluster_bootstrap, paired_difference


def replay_error(policy: str, checkpoint: str | Path | None, data: str | Path, demos: int = 10, seed: int = 0,
                 progress=None) -> dict:
    """Per chunk boundary of `demos` demos spread evenly over the file: the policy's action error there."""
    import h5py
    import torch

    from bench.core.provenance import file_hash, shown_path
    from bench.demos.libero_hdf5 import demo_names
    from bench.policies.trained import TrainedPolicy
    from bench.sim.libero.env import LiberoSim
    from bench.sim.suites import get_suite

    pol = TrainedPolicy(policy, None if checkpoint is None else str(checkpoint))
    model = pol.model
    errors, where, replayed = [], [], {}
    with h5py.File(data, "r") as f:
        suite = get_suite(str(f["data"].attrs["suite"]))
        protocol = suite.protocol
        names = demo_names(f["data"])
        picks = [names[int(i)] for i in np.linspace(0, len(names) - 1, min(demos, len(names))).round()]
        sims: dict[int, LiberoSim] = {}
        try:
            for n, name in enumerate(picks):
                g = f["data"][name]
                task = suite.task(int(g.attrs["task_id"]))
                sim = sims.get(task.task_id) or sims.setdefault(task.task_id, LiberoSim(task, protocol))
                sim.reset_to(np.asarray(g.attrs["init_state"]), protocol.seed)
                actions = np.asarray(g["actions"], dtype=np.float64)
                text = pol.text([task.language])
                done = False
                for t, action in enumerate(actions):
                    if t >= protocol.wait_steps and (t - protocol.wait_steps) % protocol.executed_chunk == 0 \
                            and t + pol.spec.chunk_length <= len(actions):  # a whole chunk of the demo left
                        obs = sim.render(pol.cameras, protocol.resolution)
                        images = {c: torch.from_numpy(np.ascontiguousarray(obs[c][None])) for c in pol.cameras}
                        with torch.no_grad():
                            pred = model.predict(images, torch.from_numpy(sim.state()[None]).float(), text,
                                                 generator=torch.Generator().manual_seed(seed * 1_000_003 + n * 4096 + t))
                            target = torch.from_numpy(actions[None, t:t + pred.shape[1]]).float()
                            err = (model.normalizer.normalize("actions", pred)
                                   - model.normalizer.normalize("actions", target)) ** 2
                        errors.append(float(err.mean()))
                        where.append((name, t))
                    done = sim.step(action) or done
                replayed[name] = bool(done)
                if progress is not None:
                    progress(n + 1, len(picks))
        finally:
            for sim in sims.values():
                sim.close()
    values = np.asarray(errors, dtype=np.float64)
    clusters = np.asarray([w[0] for w in where])
    low, high = cluster_bootstrap(values, clusters)
    return {"policy": policy, "checkpoint": shown_path(pol.checkpoint_path),
            "checkpoint_hash": file_hash(pol.checkpoint_path), "data": shown_path(data),
            "metric": METRIC, "demos": len(picks), "points": len(values), "seed": seed,
            "replay_success": float(np.mean(list(replayed.values()))), "mean": float(values.mean()),
            "ci_low": low, "ci_high": high, "per_point": values.tolist(), "point_demos": clusters.tolist(),
            "point_steps": [w[1] for w in where]}


def paired_against_first(results: dict[str, dict]) -> dict[str, dict | None]:
    """Each policy's per-point errors minus the first policy's, over the same demo states (None for the first)."""
    first = next(iter(results.values()))
    return {name: None if r is first else paired_difference(np.asarray(r["per_point"]), np.asarray(first["per_point"]),
                                                            np.asarray(r["point_demos"]))
            for name, r in results.items()}


def replay_markdown(results: dict[str, dict], provenance: dict) -> str:
    """One row per policy, each paired against the first on the same demo states (a cluster bootstrap over demos)."""
    from bench.core.artifacts import with_provenance

    names = list(results)
    first = results[names[0]]
    lines = [
        "# Action error along replayed demos, on the simulator's own rendering", "",
        f"Each of {first['demos']} demos of `{first['data']}` is replayed in the simulator; at each of their "
        f"{first['points']} chunk boundaries in all the policy samples a chunk from the simulator's rendering there, "
        f"compared with the demo's next actions ({METRIC}; 95% cluster-bootstrap intervals over demos). The states "
        "are the demos', the pixels a live episode's: an error as low as the offline one says the frames a model "
        "sees in `bench run` are those it was trained on, so a closed-loop failure comes from the policy's own "
        f"drift. Replays that still reach the goal: {100 * first['replay_success']:.0f}%.", "",
        f"| policy | checkpoint | action error [95% CI] | minus {names[0]} [95% CI] | p |", "|---|---|---|---|---|"]
    for name, d in paired_against_first(results).items():
        r = results[name]
        diff = ("—", "—") if d is None else (f"{d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]", f"{d['p']:.3g}")
        lines.append(f"| {name} | `{r['checkpoint']}` | {r['mean']:.4f} [{r['ci_low']:.4f}, {r['ci_high']:.4f}] | "
                     f"{diff[0]} | {diff[1]} |")
    return with_provenance("\n".join(lines), provenance)
