"""Offline analyses of a trained checkpoint on demonstrations (no simulator).

`future_slot`: what the video DiT's future-frame slot should hold when the features are taken.
Training fed the real future latent noised to the feature timestep; inference (today) feeds a
noised copy of the current frame; the official DiT4DiT code feeds pure noise. On held-out demos,
the action chunk sampled under each choice is compared with the demo's, all three with the same
noise (a paired comparison), so the differences between them are not sampling noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from bench.core.artifacts import with_provenance

FUTURE_SLOTS = {
    "noised_future": "the real future latent noised to the feature timestep (what training fed)",
    "noised_current": "the current frame's latent noised to the feature timestep (what inference fed)",
    "pure_noise": "Gaussian noise (what the official code feeds, in training and inference)",
}


def future_slot_errors(checkpoint: str | Path, data: list[str], windows: int = 512, batch: int = 16,
                       seed: int = 0, progress=None) -> dict:
    """Per future-slot choice: the action chunk's masked mean squared error in the model's normalised action
    space on `windows` windows spread evenly over the demos, with its standard error, and the paired
    difference to `noised_current`."""
    import torch

    from bench.demos.dataset import LiberoDemoDataset
    from bench.models.flow import euler_sample
    from bench.train.loop import load_checkpoint

    model, text, _ = load_checkpoint(checkpoint)
    model.eval()
    cfg = model.cfg
    ds = LiberoDemoDataset(data, model.window_spec())
    picks = np.linspace(0, len(ds) - 1, min(windows, len(ds))).round().astype(int)
    gen = torch.Generator().manual_seed(seed)
    errors: dict[str, list[np.ndarray]] = {k: [] for k in FUTURE_SLOTS}
    for start in range(0, len(picks), batch):
        items = [ds[int(i)] for i in picks[start:start + batch]]
        images = {c: torch.from_numpy(np.stack([it["images"][c] for it in items])) for c in cfg.cameras}
        actions = torch.from_numpy(np.stack([it["actions"] for it in items])).float()
        mask = torch.from_numpy(np.stack([it["action_mask"] for it in items])).float()
        state = torch.from_numpy(np.stack([it["state"] for it in items])).float()
        with torch.no_grad():
            emb = text([it["language"] for it in items])
            x0 = model.latents(images)  # (B, C, 1 + n_future latent frames, h, w)
            b = x0.shape[0]
            noise = torch.randn(x0.shape, generator=gen)
            start_a = torch.randn((b, cfg.action.chunk, cfg.action.action_dim), generator=gen)
            tf = torch.full((b,), cfg.feature_timestep)
            slots = {
                "noised_future": model.feature_input(x0, noise, "noised"),
                "noised_current": model.feature_input(x0[:, :, :1].expand_as(x0), noise, "noised"),
                "pure_noise": model.feature_input(x0, noise, "pure_noise"),
            }
            s = model.normalizer.normalize("state", state)
            target = model.normalizer.normalize("actions", actions)
            for name, x in slots.items():
                feats = model.video_dit.features(x, tf, emb, cond_t=cfg.cond_timestep)
                pred = euler_sample(lambda a, t: model.action_dit(a, t, s, feats), start_a, cfg.euler_steps)
                err = ((pred - target) ** 2).mean(-1)
                errors[name].append(((err * mask).sum(1) / mask.sum(1).clamp(min=1)).numpy())
        if progress is not None:
            progress(min(start + batch, len(picks)), len(picks))
    per = {k: np.concatenate(v) for k, v in errors.items()}
    base = per["noised_current"]

    def stats(x: np.ndarray) -> dict:
        return {"mean": float(x.mean()), "sem": float(x.std(ddof=1) / np.sqrt(len(x)))}

    rows = {k: {**stats(v), "what": FUTURE_SLOTS[k],
                "minus_noised_current": stats(v - base) if k != "noised_current" else None}
            for k, v in per.items()}
    demos = sorted({ds.locate(int(i))[0].key for i in picks})
    from bench.core.provenance import shown_path

    return {"checkpoint": shown_path(checkpoint), "data": [shown_path(d) for d in data], "windows": len(picks),
            "demos": len(demos),
            "seed": seed, "metric": "masked mean squared error of the sampled action chunk, normalised action space",
            "rows": rows}


def future_slot_markdown(result: dict, provenance: dict) -> str:
    lines = ["# What the future-frame slot holds when DiT4DiT's features are taken", "",
             f"Checkpoint `{result['checkpoint']}` on {result['windows']} windows of {result['demos']} held-out demos "
             f"({', '.join(f'`{d}`' for d in result['data'])}). Metric: {result['metric']}; mean with its standard "
             "error over windows. Every choice sees the same noise, so the paired difference to today's inference "
             "input carries its own standard error: a difference of more than about two of them is not sampling "
             "noise.", "",
             "| future slot | action error | minus noised_current | what it is |", "|---|---|---|---|"]
    for name, r in result["rows"].items():
        d = r["minus_noised_current"]
        diff = "—" if d is None else f"{d['mean']:+.2e} ± {d['sem']:.1e}"
        lines.append(f"| `{name}` | {r['mean']:.4f} ± {r['sem']:.4f} | {diff} | {r['what']} |")
    return with_provenance("\n".join(lines), provenance)
