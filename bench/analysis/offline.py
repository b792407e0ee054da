"""Offline score of any trained checkpoint: its action error on held-out demonstrations.

Closed-loop success needs hundreds of simulated episodes to separate two
policies; the action error on held-out demos separates them with no simulator,
so ablations report both. For windows spread evenly over the held-out demos,
the policy samples an action chunk from the window's current frames, state and
instruction (exactly as `bench run` would ask it), and the error is the masked
mean squared difference to the demo's chunk in the model's normalised action
space (so every action dimension counts alike, and models trained on the same
data are measured in the same units). Windows of one demo are correlated, so the
interval is a cluster bootstrap over demos.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

BOOTSTRAP_SAMPLES = 2000
METRIC = "masked mean squared error of the sampled action chunk in the model's normalised action space"


def _cluster_means(values: np.ndarray, clusters: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """Bootstrap means of `values` with whole clusters (demos) resampled with replacement."""
    ids, inverse = np.unique(clusters, return_inverse=True)
    sums = np.bincount(inverse, weights=values, minlength=len(ids))
    counts = np.bincount(inverse, minlength=len(ids))
    pick = np.random.default_rng(seed).integers(0, len(ids), size=(samples, len(ids)))
    return sums[pick].sum(1) / counts[pick].sum(1)


def cluster_bootstrap(values: np.ndarray, clusters: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0,
                      confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean of `values` when whole clusters (demos) are resampled."""
    means = _cluster_means(values, clusters, samples, seed)
    tail = (1 - confidence) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def action_error(checkpoint: str | Path, data: list[str | Path], windows: int = 512, seed: int = 0,
                 progress=None) -> dict:
    """Mean action error of `checkpoint` on `windows` windows of the demos in `data`, with a 95% cluster
    bootstrap interval over demos, and the per-window errors (for paired comparisons)."""
    import torch

    from bench.demos.dataset import LiberoDemoDataset
    from bench.core.provenance import shown_path
    from bench.train.loop import load_checkpoint

    model, text, _ = load_checkpoint(checkpoint)
    model.eval()
    ds = LiberoDemoDataset([str(d) for d in data], model.window_spec())
    picks = np.linspace(0, len(ds) - 1, min(windows, len(ds))).round().astype(int)
    errors, demos = [], []
    for n, i in enumerate(int(i) for i in picks):
        item = ds[i]
        # as `bench run` asks the policy: one row, its own generator (seeded by the window)
        images = {c: torch.from_numpy(item["images"][c][:1]) for c in ds.spec.cameras}
        state = torch.from_numpy(item["state"][None]).float()
        target = torch.from_numpy(item["actions"][None]).float()
        mask = torch.from_numpy(item["action_mask"][None]).float()
        with torch.no_grad():
            pred = model.predict(images, state, text([item["language"]]),
                                 generator=torch.Generator().manual_seed(seed * 1_000_003 + i))
            err = (model.normalizer.normalize("actions", pred) - model.normalizer.normalize("actions", target)) ** 2
        errors.append(float(((err.mean(-1) * mask).sum(1) / mask.sum(1).clamp(min=1))[0]))
        demo = ds.locate(i)[0]
        demos.append(f"{demo.source}/{demo.key}")
        if progress is not None:
            progress(n + 1, len(picks))
    per_window = np.asarray(errors, dtype=np.float64)
    low, high = cluster_bootstrap(per_window, np.asarray(demos))
    ds.close()
    return {"checkpoint": shown_path(checkpoint), "data": [shown_path(d) for d in data], "metric": METRIC,
            "windows": int(len(per_window)), "demos": len(set(demos)), "seed": seed,
            "mean": float(per_window.mean()), "ci_low": low, "ci_high": high, "per_window": per_window.tolist(),
            "window_demos": demos}


def paired_difference(a: np.ndarray, b: np.ndarray, clusters: np.ndarray, samples: int = BOOTSTRAP_SAMPLES,
                      seed: int = 0) -> dict:
    """Mean of a - b over paired windows (the same windows, scored with the same noise), a 95% cluster
    bootstrap interval over demos, and the two-sided bootstrap p of "no difference"."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    means = _cluster_means(d, clusters, samples, seed)
    p = min(1.0, 2 * min(np.mean(means <= 0), np.mean(means >= 0)))
    return {"diff": float(d.mean()), "low": float(np.quantile(means, 0.025)), "high": float(np.quantile(means, 0.975)),
            "p": float(p)}


def write_action_error(checkpoint: str | Path, data: list[str | Path], out: Path, windows: int = 512, seed: int = 0,
                       progress=None) -> dict:
    """`action_error` with its provenance (the checkpoint's and the data's hashes), written to `out` whole or
    not at all: studies take the file's presence for done."""
    import json

    from bench.core.provenance import file_hash, provenance

    result = action_error(checkpoint, data, windows=windows, seed=seed, progress=progress)
    result["provenance"] = {**provenance(), "checkpoint_hash": file_hash(checkpoint),
                            "data_hashes": {str(d): file_hash(d) for d in data}}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.rename(out)
    return result
