"""Training curves of several runs side by side: one loss against step and against training time.

Every trainable model logs its action flow-matching loss as `action` in its
`losses.csv` (bench/training.py), so the curves compare the same quantity across
models; each model's other losses (video, alignment, action tokens) are its own
and are plotted only with `--loss NAME` on runs that have them. Time is the
training seconds logged in `elapsed_s` (summed over resumed invocations); runs
logged before it was kept have only the step panel.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

SMOOTH = 20  # rows in the rolling mean drawn over the raw (faint) curve


def load_curves(paths: list[Path], labels: list[str], loss: str) -> pd.DataFrame:
    """Long table: label, step, hours, <loss>, smoothed; an error names a file that lacks the loss."""
    parts = []
    for path, label in zip(paths, labels):
        df = pd.read_csv(path)
        if loss not in df.columns:
            losses = [c for c in df.columns if c not in ("step", "grad_norm", "samples_per_s", "elapsed_s")
                      and not c.startswith("lr_")]
            raise ValueError(f"{path} has no {loss!r} column; its losses: {', '.join(losses)}")
        part = pd.DataFrame({"label": label, "step": df["step"], loss: df[loss],
                             "hours": df["elapsed_s"] / 3600 if "elapsed_s" in df else float("nan")})
        part["smoothed"] = part[loss].rolling(SMOOTH, min_periods=1).mean()
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def plot_curves(table: pd.DataFrame, loss: str, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    has_time = table["hours"].notna().any()
    fig, axes = plt.subplots(1, 2 if has_time else 1, figsize=(11 if has_time else 6, 4), squeeze=False)
    for ax, x, xlabel in zip(axes[0], ("step", "hours"), ("training step", "training time (hours)")):
        sns.lineplot(data=table, x=x, y=loss, hue="label", ax=ax, alpha=0.2, linewidth=0.6, legend=False)
        sns.lineplot(data=table, x=x, y="smoothed", hue="label", ax=ax, linewidth=1.5)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{loss} loss ({SMOOTH}-row mean over the raw curve)")
        ax.legend(title=None, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_curves(paths: list[Path], labels: list[str], loss: str, out: Path, provenance: dict) -> pd.DataFrame:
    """OUT.png (the plot), OUT.csv (the long table it is drawn from), OUT.md (final losses and sources)."""
    table = load_curves(paths, labels, loss)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out.with_suffix(".csv"), index=False)
    plot_curves(table, loss, out.with_suffix(".png"), title=f"{loss} loss: " + ", ".join(labels))
    rows = []
    for (label, part), path in zip(table.groupby("label", sort=False), paths):
        last = part.iloc[-1]
        rows.append({"run": label, "steps": int(last["step"]), f"final {loss} ({SMOOTH}-row mean)": last["smoothed"],
                     "training hours": last["hours"], "losses.csv": str(path)})
    md = pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4g")
    out.with_suffix(".md").write_text(
        f"# Training curves: {loss} loss\n\n{md}\n\n![curves]({out.with_suffix('.png').name})\n\n"
        f"## Provenance\n\n```json\n{json.dumps(provenance, indent=2)}\n```\n", encoding="utf-8")
    return table
