"""Learning curves: closed-loop success and held-out action error of a training run's kept checkpoints,
against training samples and CPU-hours, several runs side by side.

A run's points are its kept checkpoints (`bench train --keep-checkpoints`, folders checkpoint_step<N>) and,
once training has finished, its final checkpoint. Each point is scored on one fixed episode set (the first
`episodes` initial states of every task of `suite`, so every point and every model meets the same scenes)
and on `windows` windows of held-out demos. Scores are cached per point under <run>/curve/step<N>/
(`evaluate`'s episodes.jsonl and summary.json, and action_error.json): scoring resumes where it stopped and a
finished point is never recomputed, so a curve grows while its model trains.

CPU-hours are the run's logged training seconds at the point's step times the cores of the machine that
trained it: what the budget cost there, contention included.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from bench.analysis.format import interval, number, pct
from bench.core.artifacts import with_provenance

CURVE_DIR = "curve"


@dataclass
class CurveSpec:
    suite: str = "libero_spatial"
    episodes: int = 10  # per task: initial states 0..episodes-1 of every task
    tasks: str | None = None  # None: every task of the suite
    heldout: tuple[str, ...] = ()  # held-out demo files for the action error (none: closed loop only)
    windows: int = 200
    workers: int = 2


@dataclass
class Point:
    run: Path
    step: int
    checkpoint: Path

    @property
    def folder(self) -> Path:
        return self.run / CURVE_DIR / f"step{self.step}"


def points(run: Path) -> list[Point]:
    """The run's scoreable checkpoints in step order: checkpoint_step<N>, and checkpoint/ once training ended. A
    scored point whose weights were left behind (a carried run, bench.train.carry) is still a point."""
    run = Path(run)
    found = {}
    for folder in run.glob("checkpoint_step*"):
        m = re.fullmatch(r"checkpoint_step(\d+)", folder.name)
        if m and ((folder / "model.safetensors").exists()
                  or (run / CURVE_DIR / f"step{m.group(1)}" / "eval" / "summary.json").exists()):
            found[int(m.group(1))] = folder
    final = run / "checkpoint" / "config.json"
    if final.exists():
        trained = json.loads(final.read_text()).get("trained_steps")
        planned = json.loads((run / "train_config.json").read_text())["train"]["steps"]
        if trained == planned:
            found.setdefault(trained, run / "checkpoint")
    return [Point(run, step, found[step]) for step in sorted(found)]


def score_point(point: Point, spec: CurveSpec, log: Callable[[str], None] = print,
                on_episode: Callable | None = None) -> dict:
    """Closed-loop success (cached episodes, resumed) and held-out action error (cached) of one point."""
    from bench.eval import EvalRequest, evaluate
    from bench.analysis.offline import write_action_error

    model = json.loads((point.checkpoint / "config.json").read_text())["model"]
    result = evaluate(EvalRequest(suite=spec.suite, policy=model, checkpoint=str(point.checkpoint), tasks=spec.tasks,
                                  episodes=spec.episodes, workers=spec.workers, out=point.folder / "eval",
                                  resume=True), on_episode=on_episode, log=log)
    ae_path = point.folder / "action_error.json"
    if spec.heldout and not ae_path.exists():
        write_action_error(point.checkpoint, list(spec.heldout), ae_path, windows=spec.windows)
    return {"step": point.step, "success_rate": float(result.table.iloc[-1]["success_rate"])}


def is_scored(point: Point, spec: CurveSpec) -> bool:
    """Every episode of the fixed set recorded, and the held-out action error when the spec asks for it."""
    return not pending_episodes(point, spec) and (not spec.heldout or (point.folder / "action_error.json").exists())


def pending_episodes(point: Point, spec: CurveSpec) -> int:
    """Episodes of the fixed set not yet recorded for this point (for progress bars and plans)."""
    from bench.core.records import latest_by_key, read_records
    from bench.sim.suites import get_suite, parse_task_ids

    suite = get_suite(spec.suite)
    total = len(parse_task_ids(spec.tasks, len(suite.tasks()))) * spec.episodes
    path = point.folder / "eval" / "episodes.jsonl"
    done = len(latest_by_key(read_records(path))) if path.exists() else 0
    return max(0, total - done)


def _train_facts(run: Path) -> dict:
    config = json.loads((run / "train_config.json").read_text())
    return {"model": config["model"], "batch_size": config["train"]["batch_size"],
            "cores": (config.get("provenance") or {}).get("machine", {}).get("cpus")}


def _elapsed_at(point: Point) -> float:
    """Training seconds at the point's step: recorded in its checkpoint, else the last logged row before it."""
    from bench.train.curves import elapsed_at

    saved = json.loads((point.checkpoint / "config.json").read_text()).get("elapsed_s")
    if saved is None:
        saved = elapsed_at(point.run / "losses.csv", point.step)
    return float("nan") if saved is None else float(saved)


def curve_table(runs: list[Path], labels: list[str]) -> pd.DataFrame:
    """One row per scored point: label, model, step, samples, cpu_hours, success (rate, interval, episodes),
    action error (mean, interval). Points not yet scored are left out."""
    rows = []
    for run, label in zip(runs, labels):
        facts = _train_facts(Path(run))
        for p in points(Path(run)):
            summary = p.folder / "eval" / "summary.json"
            if not summary.exists():
                continue
            overall = next(r for r in json.loads(summary.read_text())["rows"] if r["task"] == "ALL")
            row = {"label": label, "model": facts["model"], "step": p.step, "samples": p.step * facts["batch_size"],
                   "cpu_hours": _elapsed_at(p) * (facts["cores"] or float("nan")) / 3600,
                   "episodes": overall["episodes"], "successes": overall["successes"],
                   "success_rate": overall["success_rate"], "success_low": overall["ci_low"],
                   "success_high": overall["ci_high"]}
            ae = p.folder / "action_error.json"
            if ae.exists():
                a = json.loads(ae.read_text())
                row.update(action_error=a["mean"], action_error_low=a["ci_low"], action_error_high=a["ci_high"],
                           windows=a["windows"])
            rows.append(row)
    return pd.DataFrame(rows)


def samples_to_reach(samples: np.ndarray, rates: np.ndarray, target: float) -> float:
    """Training samples at which a curve (points in sample order, starting from 0 samples at 0 success) first
    reaches `target` success, linearly between points; inf if it never does."""
    xs, ys = np.concatenate([[0.0], samples]), np.concatenate([[0.0], rates])
    hit = np.nonzero(ys >= target)[0]
    if not len(hit):
        return float("inf")
    i = int(hit[0])
    if i == 0:
        return 0.0
    return float(xs[i - 1] + (target - ys[i - 1]) / (ys[i] - ys[i - 1]) * (xs[i] - xs[i - 1]))


def convergence(table: pd.DataFrame, target: float | None = None, boot: int = 2000, seed: int = 0) -> dict:
    """The paper's way of stating speed: training samples each run needs to reach `target` success (default: half
    the lowest of the runs' best rates, so every run reaches it), with a 95% interval from bootstrapping each
    point's episodes (a binomial redraw at its observed rate), and each run's ratio to the first run's with its
    interval. Rows with inf never reached the target (in the data, or in that share of the redraws)."""
    rng = np.random.default_rng(seed)
    curves = {label: part.sort_values("samples") for label, part in table.groupby("label", sort=False)}
    if target is None:
        target = 0.5 * min(float(c["success_rate"].max()) for c in curves.values())
    if target <= 0:
        return {"target": target, "reference": next(iter(curves)), "rows": []}
    draws, rows = {}, []
    for label, c in curves.items():
        x, n, k = c["samples"].to_numpy(float), c["episodes"].to_numpy(int), c["successes"].to_numpy(int)
        point = samples_to_reach(x, k / np.maximum(n, 1), target)
        redraw = rng.binomial(n, k / np.maximum(n, 1), size=(boot, len(n))) / np.maximum(n, 1)
        draws[label] = np.array([samples_to_reach(x, r, target) for r in redraw])
        rows.append({"label": label, "samples": point, "low": float(np.quantile(draws[label], 0.025)),
                     "high": float(np.quantile(draws[label], 0.975))})
    first = next(iter(curves))
    for r in rows:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = draws[r["label"]] / draws[first]
        ratio = np.where(np.isnan(ratio), 1.0, ratio)  # both never reach: no evidence either way
        r.update(ratio=r["samples"] / rows[0]["samples"] if rows[0]["samples"] else float("nan"),
                 ratio_low=float(np.quantile(ratio, 0.025)), ratio_high=float(np.quantile(ratio, 0.975)))
    return {"target": target, "reference": first, "rows": rows}


def convergence_lines(conv: dict) -> list[str]:
    """The convergence result as markdown lines."""
    def samples(v: float) -> str:
        return "not reached" if v == float("inf") else f"{v:,.0f}"

    if not conv["rows"]:
        return ["Samples to reach a success level: not stated (a run has no success yet)."]
    lines = [f"Samples to reach {100 * conv['target']:.1f}% success (half the lowest of the runs' best rates), 95% "
             "intervals from a binomial redraw of every point's episodes; ratio to "
             f"{conv['reference']} (above 1: slower):", "", "| run | samples | 95% interval | ratio [95% CI] |",
             "|---|---|---|---|"]
    for r in conv["rows"]:
        lines.append(f"| {r['label']} | {samples(r['samples'])} | [{samples(r['low'])}, {samples(r['high'])}] | "
                     f"{number(r['ratio'], digits=2)} [{number(r['ratio_low'], digits=2)}, {number(r['ratio_high'], digits=2)}] |")
    return lines


def plot_learning_curves(table: pd.DataFrame, path: Path, title: str = "") -> None:
    """Success and action error (rows) against samples and CPU-hours (columns), 95% intervals as bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    metrics = [("success_rate", "success_low", "success_high", "success rate (fixed episode set)", 100)]
    if "action_error" in table:
        metrics.append(("action_error", "action_error_low", "action_error_high", "held-out action error", 1))
    fig, axes = plt.subplots(len(metrics), 2, figsize=(11, 3.6 * len(metrics)), squeeze=False)
    colours = dict(zip(table["label"].unique(), sns.color_palette(n_colors=table["label"].nunique())))
    for r, (y, lo, hi, ylabel, scale) in enumerate(metrics):
        for c, (x, xlabel) in enumerate((("samples", "training samples"), ("cpu_hours", "training CPU-hours"))):
            ax = axes[r][c]
            for label, part in table.groupby("label", sort=False):
                part = part.dropna(subset=[y])
                if part.empty:
                    continue
                ax.errorbar(part[x], scale * part[y], yerr=[scale * (part[y] - part[lo]), scale * (part[hi] - part[y])],
                            marker="o", capsize=3, label=label, color=colours[label])
            ax.set_xlabel(xlabel)
            ax.set_xlim(left=0)  # budgets from zero, so a few points read as a curve's start, not a zoom
            ax.set_ylim(bottom=0)
            ax.set_ylabel(ylabel + (" (%)" if scale == 100 else ""))
            ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def copy_records(runs: list[Path], labels: list[str], dest: Path) -> None:
    """Each scored point's records beside the table (dest/<label>/step<N>/...), so it can be recomputed."""
    for run, label in zip(runs, labels):
        for p in points(Path(run)):
            for name in ("eval/episodes.jsonl", "eval/summary.json", "action_error.json"):
                src = p.folder / name
                if src.exists():
                    target = dest / label / f"step{p.step}" / Path(name).name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, target)


def write_learning_curves(runs: list[Path], labels: list[str], out: Path, spec: CurveSpec,
                          provenance: dict) -> pd.DataFrame:
    """OUT.png, OUT.csv (the points), OUT.json (points, spec, provenance), OUT.md; records under OUT/."""
    from dataclasses import asdict

    table = curve_table(runs, labels)
    if table.empty:
        raise ValueError("no scored points yet: score the runs first (bench curves RUN ... --score)")
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out.with_suffix(".csv"), index=False)
    plot_learning_curves(table, out.with_suffix(".png"), title=f"{spec.suite}: " + ", ".join(labels))
    copy_records(runs, labels, out)
    out.with_suffix(".json").write_text(json.dumps({"spec": asdict(spec), "runs": dict(zip(labels, map(str, runs))),
                                                     "points": table.to_dict("records"), "provenance": provenance},
                                                    indent=1))
    shown = table.copy()
    shown["success %"] = [f"{pct(r.success_rate)} {interval(r.success_low, r.success_high)}" for r in shown.itertuples()]
    cols = ["label", "step", "samples", "cpu_hours", "episodes", "success %"]
    if "action_error" in shown:
        shown["action error"] = [f"{number(r.action_error)} [{number(r.action_error_low)}, {number(r.action_error_high)}]"
                                 if r.action_error == r.action_error else "" for r in shown.itertuples()]
        cols.append("action error")
    heldout = ", ".join(Path(h).name for h in spec.heldout) or "none"
    out.with_suffix(".md").write_text(
        f"# Learning curves on {spec.suite}\n\nEach point is a kept checkpoint of a training run, scored on one "
        f"fixed episode set ({spec.episodes} initial states of every task; success with 95% Wilson intervals) "
        f"and on {spec.windows} windows of held-out demos ({heldout}; action error with 95% cluster-bootstrap "
        f"intervals over demos). CPU-hours: the run's logged training seconds at the point times the cores of "
        f"the machine that trained it.\n\n{shown[cols].to_markdown(index=False, floatfmt='.3g')}\n\n"
        + ("\n".join(convergence_lines(convergence(table))) + "\n\n" if table["label"].nunique() > 1 else "")
        + with_provenance(f"![learning curves]({out.with_suffix('.png').name})\n\nRecords: "
                          f"`{out.name}/<run>/step<N>/`.", provenance), encoding="utf-8")
    return table
