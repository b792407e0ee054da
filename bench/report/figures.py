"""The report's plots (seaborn on matplotlib), sized for an A4 page at print size."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def _setup():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper", font_scale=0.9)
    return plt, sns


def forest_plot(tables: dict[str, pd.DataFrame], path: Path, title: str) -> None:
    """Per task (rows) each policy's success with its Wilson 95% interval (dodged points and whiskers)."""
    plt, sns = _setup()
    labels = list(tables)
    first = next(iter(tables.values()))
    tasks = list(first["task"])
    names = ["ALL" if t == "ALL" else f"task {int(i)}" for t, i in zip(first["task"], first["task_id"].fillna(-1))]
    fig, ax = plt.subplots(figsize=(7.0, 0.2 * len(tasks) * max(1.5, len(labels) / 1.5) + 1.3))
    palette = sns.color_palette("tab10", len(labels))
    step = 0.7 / max(1, len(labels))
    for j, (label, table) in enumerate(tables.items()):
        for i, task in enumerate(tasks):
            row = table[table["task"] == task]
            if row.empty:
                continue
            r = row.iloc[0]
            y = len(tasks) - 1 - i + 0.35 - step / 2 - j * step
            ax.errorbar(100 * r["success_rate"], y, xerr=[[100 * (r["success_rate"] - r["ci_low"])],
                                                          [100 * (r["ci_high"] - r["success_rate"])]],
                        fmt="o", ms=3.5, capsize=2, color=palette[j], label=label if i == 0 else None)
    ax.set_yticks(range(len(tasks)), names[::-1])
    ax.set_xlim(-2, 102)
    ax.set_xlabel("success % (Wilson 95% interval)")
    ax.axhline(0.5, color="0.6", lw=0.8)
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(4, len(labels)), frameon=False)
    ax.set_title(title, fontsize=9, pad=22)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def time_breakdown(timing: dict[str, list[dict]], path: Path) -> None:
    """Mean seconds per episode spent rendering, stepping, creating environments, and the rest."""
    plt, sns = _setup()
    rows = []
    for label, recs in timing.items():
        n = len(recs)
        parts = {k: sum(r["timing"].get(k, 0.0) for r in recs) / n
                 for k in ("render_s", "step_s", "env_create_s", "reset_s", "episode_s")}
        wall = sum(r.get("wall_time_s", parts["episode_s"]) for r in recs) / n
        rest = max(0.0, wall - parts["render_s"] - parts["step_s"] - parts["env_create_s"] - parts["reset_s"])
        rows.append({"policy": label, "render": parts["render_s"], "physics": parts["step_s"],
                     "env creation": parts["env_create_s"] + parts["reset_s"], "policy + messages": rest})
    df = pd.DataFrame(rows).set_index("policy")
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(df) + 1.3))
    left = pd.Series(0.0, index=df.index)
    for col, color in zip(df.columns, sns.color_palette("Set2", len(df.columns))):
        ax.barh(df.index, df[col], left=left, label=col, color=color)
        left += df[col]
    ax.set_xlabel("seconds per episode (mean)")
    ax.legend(fontsize=7, ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def micro_latency(rows: list[dict], path: Path) -> None:
    """Median time of each micro-benchmark with its interquartile range (log scale: 10 ms to 1 s side by side)."""
    plt, sns = _setup()
    df = pd.DataFrame(rows).sort_values("median_ms")
    fig, ax = plt.subplots(figsize=(6.0, 0.35 * len(df) + 1.0))
    ax.barh(df["name"], df["median_ms"], xerr=df["iqr_ms"] / 2, color=sns.color_palette("Set2")[0], capsize=2)
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("milliseconds (median; whiskers: half the IQR each side)")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
