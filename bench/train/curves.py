"""Training curves of several runs side by side: one loss against step and against training time.

Every trainable model logs its action flow-matching loss as `action` in its
`losses.csv` (bench/train/loop.py), so the curves compare the same quantity across
models; each model's other losses (video, alignment, action tokens) are its own
and are plotted only with `--loss NAME` on runs that have them. Time is the
training seconds logged in `elapsed_s` (summed over resumed invocations); runs
logged before it was kept have only the step panel.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from bench.core.artifacts import with_provenance

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


# What must agree for a controlled comparison, read from each run's train_config.json (bench/train/loop.py).
SAME = {"data": lambda c: c.get("data_fingerprint"), "demos": lambda c: c.get("num_demos"),
        "steps": lambda c: c["train"]["steps"], "batch": lambda c: c["train"]["batch_size"],
        "seed": lambda c: c["train"]["seed"], "demo fraction": lambda c: c["train"].get("demo_fraction", 1.0)}
PARAMS_WITHIN = 0.10  # the baselines issue's tolerance on trainable parameters


def trainable_parameters(config: dict) -> int | None:
    """A run's trainable parameter count: recorded by newer runs; for older ones (which recorded every
    parameter, an EMA copy included), counted on the model its config rebuilds."""
    if "trainable_parameters" in config:
        return config["trainable_parameters"]
    try:
        from bench.models.registry import load_models, trainable_count

        entry = load_models().get(config["model"])
        return trainable_count(config["model"], entry.config_cls.from_dict(config["config"]))
    except (KeyError, TypeError, ValueError):
        return config.get("parameters")


def training_facts(paths: list[Path], labels: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """One row per run from the train_config.json beside its losses.csv, and sentences saying what differs.

    Why: "same data, budget and seed, about the same size" is the claim every baseline table rests on, so it
    is read from the runs' own configs rather than asserted."""
    rows, configs, counts = [], {}, {}
    for path, label in zip(paths, labels):
        cfg_path = path.parent / "train_config.json"
        if not cfg_path.is_file():
            continue
        c = json.loads(cfg_path.read_text())
        configs[label] = c
        counts[label] = trainable_parameters(c)
        rows.append({"run": label, "model": c.get("model"), "trainable parameters": counts[label],
                     **{k: f(c) for k, f in SAME.items()}, "precision": c["train"].get("precision"),
                     "initialised from": c["train"].get("init_from") or "scratch"})
    notes = []
    if len(configs) < 2:
        return pd.DataFrame(rows), notes
    for key, f in SAME.items():
        values = {label: f(c) for label, c in configs.items()}
        if len(set(map(str, values.values()))) > 1:
            notes.append(f"{key} differs: " + ", ".join(f"{k} {v}" for k, v in values.items()) + ".")
    first, *others = configs
    base = counts[first]
    for label in others:
        n = counts[label]
        if base and n and abs(n - base) / base > PARAMS_WITHIN:
            notes.append(f"{label} has {n:,} trainable parameters, {100 * (n - base) / base:+.0f}% of {first}'s "
                         f"{base:,} (beyond {PARAMS_WITHIN:.0%}).")
    if not notes:
        notes.append(f"Every run here saw the same demos (data fingerprint), steps, batch, seed and demo fraction, "
                     f"and has trainable parameters within {PARAMS_WITHIN:.0%} of {first}'s.")
    return pd.DataFrame(rows), notes


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
    facts, notes = training_facts(paths, labels)
    trained = ("## What each run was trained on\n\nFrom the `train_config.json` beside each `losses.csv`.\n\n"
               f"{facts.to_markdown(index=False)}\n\n{' '.join(notes)}\n\n") if len(facts) else ""
    out.with_suffix(".md").write_text(
        with_provenance(f"# Training curves: {loss} loss\n\n{md}\n\n![curves]({out.with_suffix('.png').name})"
                        f"\n\n{trained}", provenance), encoding="utf-8")
    return table


def elapsed_at(losses: Path, step: int | None = None) -> float | None:
    """Training seconds logged at `step` (the last row at or before it; None: the last row), from a run's
    losses.csv; None when the file or its `elapsed_s` column is missing (runs logged before it was kept)."""
    if not Path(losses).exists():
        return None
    df = pd.read_csv(losses)
    if "elapsed_s" not in df:
        return None
    at = df if step is None else df[df["step"] <= step]
    return float(at["elapsed_s"].iloc[-1]) if len(at) else None
