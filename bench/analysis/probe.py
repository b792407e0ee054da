"""Does a DiT4DiT checkpoint use its video features, and does a better video prediction give better actions?

On held-out demos, the action chunk is sampled from the window's current frame, state and instruction as
`bench run` samples it, with the video features fed to the action DiT replaced by:

  computed   what the checkpoint computes at inference (its own `future_slot`)
  zeroed     zeros: the action DiT without any view of the scene
  shuffled   the computed features of a window half the set away (another demo, mostly another task)
  oracle     computed with the demo's true future frame noised to the time the features are read at, in the future slot
             instead of what inference puts there (the paper's premise: a better future, better actions)
  repeated   computed with the current frame noised to the time the features are read at, as the future

Every variant sees the same noise, so each is compared with `computed` window by window: the mean paired
difference with a 95% cluster bootstrap interval over demos and its two-sided bootstrap p
(bench.analysis.offline.paired_difference), as the rest of the suite's offline comparisons do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from bench.core.artifacts import with_provenance

VARIANTS = {
    "computed": "the features the checkpoint computes at inference",
    "zeroed": "zeros in place of the features",
    "shuffled": "the computed features of another window (half the set away: another demo)",
    "oracle": "the demo's true future frame, noised to the time the features are read at, in the future slot",
    "repeated": "the current frame, noised to the time the features are read at, in the future slot",
}


def feature_use(checkpoint: str | Path, data: list[str], windows: int = 200, batch: int = 16, seed: int = 0,
                progress=None) -> dict:
    """Per variant: per-window action errors (masked mean squared error in the model's normalised action
    space), their mean with a cluster bootstrap interval, and the paired difference to `computed`."""
    import torch

    from bench.demos.dataset import LiberoDemoDataset
    from bench.models.dit4dit import DiT4DiT
    from bench.models.flow import euler_sample
    from bench.analysis.offline import METRIC, cluster_bootstrap, paired_difference
    from bench.core.provenance import shown_path
    from bench.train.loop import load_checkpoint

    model, text, _ = load_checkpoint(checkpoint)
    if not isinstance(model, DiT4DiT):
        raise ValueError(f"{checkpoint}: a {type(model).__name__} checkpoint; the feature probe needs DiT4DiT")
    model.eval()
    cfg = model.cfg
    ds = LiberoDemoDataset(data, model.window_spec())
    picks = np.linspace(0, len(ds) - 1, min(windows, len(ds))).round().astype(int)
    feats_all, inputs = [], []
    with torch.no_grad():
        for start in range(0, len(picks), batch):  # pass 1: the inputs, the shared noise, the computed features
            items = [ds[int(i)] for i in picks[start:start + batch]]
            images = {c: torch.from_numpy(np.stack([it["images"][c] for it in items])) for c in cfg.cameras}
            x_true = model.latents(images)  # (B, C, 1 + n_future, h, w): the current frame, then the true future
            x_now = x_true[:, :, :1].expand_as(x_true)
            b = x_true.shape[0]
            gens = [torch.Generator().manual_seed(seed * 1_000_003 + int(i)) for i in picks[start:start + batch]]
            noise = torch.stack([torch.randn(x_true.shape[1:], generator=g) for g in gens])  # per window: any
            emb = text([it["language"] for it in items])
            feats = model.features(x_now, emb, noise=noise)
            feats_all.append(feats)
            inputs.append({"x_true": x_true, "x_now": x_now, "noise": noise, "emb": emb,
                           "start": torch.stack([torch.randn((cfg.action.chunk, cfg.action.action_dim), generator=g)
                                                 for g in gens]),  # batching gives the same numbers
                           "state": model.action_state(torch.from_numpy(np.stack([it["state"] for it in items]))),
                           "target": model.normalizer.normalize(
                               "actions", torch.from_numpy(np.stack([it["actions"] for it in items])).float()),
                           "mask": torch.from_numpy(np.stack([it["action_mask"] for it in items])).float()})
        every = torch.cat(feats_all)
        shuffled = every.roll(len(picks) // 2, dims=0)
        errors: dict[str, list[np.ndarray]] = {k: [] for k in VARIANTS}
        done = 0
        for n, inp in enumerate(inputs):  # pass 2: the action chunk under each variant, the same noise
            b = len(inp["start"])
            computed = feats_all[n]
            variants = {  # oracle and repeated: that future noised to the time the features are read, no steps
                "computed": computed,
                "zeroed": torch.zeros_like(computed),
                "shuffled": shuffled[done:done + b],
                "oracle": model.features_given_future(inp["x_true"], inp["emb"], inp["noise"]),
                "repeated": model.features_given_future(inp["x_now"], inp["emb"], inp["noise"]),
            }
            for name, f in variants.items():
                pred = euler_sample(lambda a, t: model.action_dit(a, t, inp["state"], f), inp["start"],
                                    cfg.euler_steps)
                err = ((pred - inp["target"]) ** 2).mean(-1)
                errors[name].append(((err * inp["mask"]).sum(1) / inp["mask"].sum(1).clamp(min=1)).numpy())
            done += b
            if progress is not None:
                progress(done, len(picks))
    per = {k: np.concatenate(v).astype(np.float64) for k, v in errors.items()}
    demos = np.asarray([f"{ds.locate(int(i))[0].source}/{ds.locate(int(i))[0].key}" for i in picks])
    ds.close()
    rows = {}
    for name, values in per.items():
        low, high = cluster_bootstrap(values, demos)
        rows[name] = {"what": VARIANTS[name], "mean": float(values.mean()), "ci_low": low, "ci_high": high,
                      "minus_computed": None if name == "computed" else
                      paired_difference(values, per["computed"], demos)}
    return {"checkpoint": shown_path(checkpoint), "data": [shown_path(d) for d in data], "windows": len(picks),
            "demos": len(set(demos.tolist())), "seed": seed, "metric": METRIC,
            "feature_timestep": cfg.feature_timestep, "feature_layer": cfg.video.feature_layer,
            "future_slot": cfg.future_slot, "rows": rows,
            "per_window": {k: v.tolist() for k, v in per.items()}, "window_demos": demos.tolist()}


def feature_use_markdown(results: dict[str, dict], provenance: dict) -> str:
    """One table per checkpoint (label -> feature_use result)."""
    from bench.analysis.offline import BOOTSTRAP_SAMPLES
    lines = ["# Does DiT4DiT use its video features?", "",
             "Held-out action error (the metric below) of the action chunk sampled with the video features as "
             "computed and replaced four ways, every variant with the same noise; each is compared with `computed` "
             "window by window (95% cluster bootstrap interval over demos, two-sided bootstrap p). A variant "
             "significantly worse than `computed` shows the action head relies on what it removes; `oracle` "
             "better than `computed` says a better video prediction would give better actions.", ""]
    for label, r in results.items():
        lines += [f"## {label}", "",
                  f"Checkpoint `{r['checkpoint']}` (feature layer {r['feature_layer']}, feature timestep "
                  f"{r['feature_timestep']}, future slot `{r['future_slot']}`) on {r['windows']} windows of "
                  f"{r['demos']} held-out demos ({', '.join(f'`{d}`' for d in r['data'])}). Metric: {r['metric']}. "
                  f"At feature timestep t a noised future slot holds (1 - t) of the frame and t of noise: here "
                  f"{1 - r['feature_timestep']:.3g} of the frame, so `oracle` and `repeated` can differ from pure "
                  "noise only as much as that share lets them.",
                  "", "| features | action error [95% CI] | minus computed [95% CI] | p | what |",
                  "|---|---|---|---|---|"]
        for name, row in r["rows"].items():
            d = row["minus_computed"]
            diff = "—" if d is None else f"{d['diff']:+.3g} [{d['low']:+.3g}, {d['high']:+.3g}]"
            p = "—" if d is None else (f"< {1 / BOOTSTRAP_SAMPLES:.1g}" if d["p"] == 0 else f"{d['p']:.3g}")
            lines.append(f"| `{name}` | {row['mean']:.4f} [{row['ci_low']:.4f}, {row['ci_high']:.4f}] | {diff} | "
                         f"{p} | {row['what']} |")
        lines.append("")
    lines += ["Closed-loop success under each variant is not measured yet: these are offline numbers only."]
    return with_provenance("\n".join(lines), provenance)
