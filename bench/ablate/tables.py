"""An ablation's results: one table (CSV), its markdown with the tests, and a plot beside the published curve.

Each variant is compared with its model's default variant (the setting the bundled model uses), on the
same episodes and the same held-out windows, so both comparisons are paired:
- closed loop: McNemar's exact test on the episodes (bench.analysis.paired), Holm-corrected over the variants;
- offline: the mean paired difference in action error, with a cluster bootstrap interval over demos and
  its p, Holm-corrected over the variants.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from bench.analysis.format import number, pvalue
from bench.analysis.format import pct as format_pct

from bench.ablate import jobs
from bench.ablate.run import Plan
from bench.analysis.offline import paired_difference
from bench.analysis.paired import ALPHA, holm, paired_compare
from bench.eval.results import wilson
from bench.core.artifacts import with_provenance

PUBLISHED_DIR = Path(__file__).resolve().parents[1] / "published"  # bench/published/


def _episodes(plan: Plan, v) -> pd.DataFrame:
    from bench.core.records import latest_by_key, read_records

    recs = latest_by_key(read_records(jobs.eval_dir(v, plan.scoring, plan.scores_root) / "episodes.jsonl")).values()
    return pd.DataFrame([{"task_id": r["task_id"], "init_id": r["init_id"], "episode_seed": r["seed"],
                          "success": bool(r["success"])} for r in recs])


def _offline(plan: Plan, v) -> dict | None:
    path = jobs.offline_file(v, plan.scoring, plan.scores_root)
    return json.loads(path.read_text()) if path.exists() else None


def _train_hours(plan: Plan, v) -> float:
    """From the evaluation's done.json (kept with the scores), else from the training's losses.csv."""
    done = jobs.eval_dir(v, plan.scoring, plan.scores_root) / "done.json"
    hours = json.loads(done.read_text()).get("train_hours") if done.exists() else None
    if hours is None:
        hours = jobs.train_hours(v.train, v.step, plan.root)
    return float("nan") if hours is None else hours


def collect(plan: Plan) -> pd.DataFrame:
    """One row per variant (model, value, seed) with its scores, and its tests against the default."""
    rows, episodes, offline = [], {}, {}
    default = plan.spec.axis.default
    for v in plan.variants:
        ep = _episodes(plan, v) if jobs.evaluated(v, plan.scoring, plan.scores_root) else None
        off = _offline(plan, v)
        k, n = (int(ep["success"].sum()), len(ep)) if ep is not None else (0, 0)
        lo, hi = wilson(k, n) if n else (float("nan"), float("nan"))
        done = jobs.eval_dir(v, plan.scoring, plan.scores_root) / "done.json"
        rows.append({"ablation": plan.spec.name, "budget": plan.budget_name, "model": v.arm, "value": v.value,
                     "is_default": str(v.value) == str(default), "seed": v.seed, "step": v.step,
                     "train_job": v.train.key(), "successes": k, "episodes": n,
                     "success_rate": k / n if n else float("nan"), "ci_low": lo, "ci_high": hi,
                     "action_error": off["mean"] if off else float("nan"),
                     "action_error_low": off["ci_low"] if off else float("nan"),
                     "action_error_high": off["ci_high"] if off else float("nan"),
                     "windows": off["windows"] if off else 0,
                     "train_hours": _train_hours(plan, v),
                     "eval_hours": json.loads(done.read_text())["wall_s"] / 3600 if done.exists() else float("nan")})
        episodes[len(rows) - 1], offline[len(rows) - 1] = ep, off
    table = pd.DataFrame(rows)
    _add_tests(table, episodes, offline)
    return table


def _add_tests(table: pd.DataFrame, episodes: dict, offline: dict) -> None:
    """Columns success_diff/success_p/success_holm_p and error_diff/error_low/error_high/error_p/error_holm_p:
    each row against the default row of the same model and seed."""
    for col in ("success_diff", "success_p", "error_diff", "error_low", "error_high", "error_p"):
        table[col] = float("nan")
    for i, row in table.iterrows():
        ref = table[(table["model"] == row["model"]) & (table["seed"] == row["seed"]) & table["is_default"]]
        if row["is_default"] or ref.empty:
            continue
        j = ref.index[0]
        a, b = episodes.get(i), episodes.get(j)
        if a is not None and b is not None and len(a) and len(b):
            both = a.merge(b, on=["task_id", "init_id", "episode_seed"], suffixes=("_a", "_b"))
            if len(both) == len(a) == len(b):
                r = paired_compare(both["success_a"].to_numpy(), both["success_b"].to_numpy())
                table.loc[i, ["success_diff", "success_p"]] = [r.diff, r.p_two_sided]
        oa, ob = offline.get(i), offline.get(j)
        if oa and ob and oa.get("window_demos") == ob.get("window_demos"):
            d = paired_difference(np.asarray(oa["per_window"]), np.asarray(ob["per_window"]),
                                  np.asarray(oa["window_demos"]))
            table.loc[i, ["error_diff", "error_low", "error_high", "error_p"]] = [d["diff"], d["low"], d["high"], d["p"]]
    for prefix in ("success", "error"):
        table[f"{prefix}_holm_p"] = float("nan")
        for model in table["model"].unique():
            mask = (table["model"] == model) & table[f"{prefix}_p"].notna()
            if mask.any():
                table.loc[mask, f"{prefix}_holm_p"] = holm(table.loc[mask, f"{prefix}_p"].tolist())


def verdicts(table: pd.DataFrame, axis: str) -> list[str]:
    """One sentence per model: which settings differ significantly from the default, and which do not."""
    out = []
    for model, part in table.groupby("model", sort=False):
        default = part[part["is_default"]]["value"]
        name = f"{model}, against its default {axis} = {default.iloc[0] if len(default) else '?'}"
        others = part[~part["is_default"]]
        if others.empty:
            continue
        sig_err = others[others["error_holm_p"] < ALPHA]
        sig_ok = others[others["success_holm_p"] < ALPHA]
        lower = ", ".join(str(v) for v in sig_err[sig_err["error_diff"] < 0]["value"].unique())
        higher = ", ".join(str(v) for v in sig_err[sig_err["error_diff"] > 0]["value"].unique())
        same = ", ".join(str(v) for v in others[~others.index.isin(sig_err.index)]["value"].unique())
        parts = []
        if lower:
            parts.append(f"significantly lower action error at {lower}")
        if higher:
            parts.append(f"significantly higher action error at {higher}")
        if same:
            parts.append(f"no significant difference in action error at {same}")
        if sig_ok.empty:
            parts.append("no closed-loop success difference is significant at these episode counts")
        else:
            parts.append("closed-loop success differs significantly at "
                         + ", ".join(f"{r.value} ({100 * r.success_diff:+.0f} points)" for r in sig_ok.itertuples()))
        out.append(f"{name}: " + "; ".join(parts) + f" (Holm-corrected, alpha {ALPHA}).")
    return out


def pooled(table: pd.DataFrame) -> pd.DataFrame:
    """Seeds pooled per (model, value): successes summed, action errors averaged."""
    rows = []
    for (model, value), part in table.groupby(["model", "value"], sort=False):
        k, n = int(part["successes"].sum()), int(part["episodes"].sum())
        lo, hi = wilson(k, n) if n else (float("nan"), float("nan"))
        rows.append({"model": model, "value": value, "default": bool(part["is_default"].any()),
                     "seeds": len(part), "successes": k, "episodes": n, "success_rate": k / n if n else float("nan"),
                     "ci_low": lo, "ci_high": hi, "action_error": part["action_error"].mean(),
                     "action_error_low": part["action_error_low"].mean(),
                     "action_error_high": part["action_error_high"].mean(),
                     "error_diff": part["error_diff"].mean(), "error_low": part["error_low"].mean(),
                     "error_high": part["error_high"].mean(), "error_holm_p": part["error_holm_p"].max(),
                     "success_holm_p": part["success_holm_p"].max(), "train_hours": part["train_hours"].sum(),
                     "eval_hours": part["eval_hours"].sum()})
    return pd.DataFrame(rows)


def published_curve(spec) -> pd.DataFrame | None:
    """The published numbers this ablation sets ours beside (long: series, x, success %), if any."""
    pub = spec.published
    if not pub:
        return None
    path = PUBLISHED_DIR / pub["file"]
    if not path.exists():
        return None
    df = pd.read_csv(path, comment="#")
    for col, val in (pub.get("select") or {}).items():
        df = df[df[col].astype(str) == str(val)]
    rows = []
    for label, col in pub["series"].items():
        if col not in df:
            continue
        for x, y in zip(df[pub["x"]], df[col]):
            try:
                xv = float(x) * float(pub.get("x_scale", 1.0))
            except ValueError:
                continue  # a category such as "all": not on the curve
            rows.append({"series": label, "x": xv, "success": float(y)})
    return pd.DataFrame(rows) if rows else None


def plot(table: pd.DataFrame, spec, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    data = pooled(table)
    pub = published_curve(spec)
    values = list(dict.fromkeys(table["value"]))
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    xpos = {v: (float(v) if numeric else i) for i, v in enumerate(values)}
    panels = 3 if pub is not None else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 3.8))
    colors = dict(zip(data["model"].unique(), sns.color_palette("tab10")))
    for model, part in data.groupby("model", sort=False):
        x = [xpos[v] for v in part["value"]]
        for ax, y, lo, hi, scale in ((axes[0], "action_error", "action_error_low", "action_error_high", 1),
                                     (axes[1], "success_rate", "ci_low", "ci_high", 100)):
            yy = part[y] * scale
            err = [(yy - part[lo] * scale).clip(lower=0), (part[hi] * scale - yy).clip(lower=0)]
            ax.errorbar(x, yy, yerr=err, marker="o", capsize=3, label=model, color=colors[model])
            dflt = part[part["default"]]
            if len(dflt):
                ax.scatter([xpos[v] for v in dflt["value"]], dflt[y] * scale, s=110, facecolors="none",
                           edgecolors=colors[model], linewidths=1.5)
    axes[0].set_ylabel("held-out action error (95% CI over demos)")
    axes[1].set_ylabel("success % (Wilson 95% CI)")
    for ax in axes[:2]:
        ax.set_xlabel(f"{spec.axis.name} (ours; circled: default)")
        if not numeric:
            ax.set_xticks(range(len(values)), [str(v) for v in values], rotation=20)
        ax.legend(fontsize=7)
    if pub is not None:
        for series, part in pub.groupby("series", sort=False):
            axes[2].plot(part["x"], part["success"], marker="s", label=series)
        axes[2].set_xlabel(spec.published.get("x_label", "published setting"))
        axes[2].set_ylabel("success % (published, full-scale model)")
        axes[2].set_title("published (2B model; not ours)", fontsize=8)
        axes[2].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _fmt(v: float, pct: bool = False, signed: bool = False) -> str:
    return format_pct(v, signed) if pct else number(v, signed)


def _fmt_p(p: float) -> str:
    """A p value as read: a bootstrap or exact p below 0.001 is printed as a bound, never as 0."""
    return pvalue(p, bound=0.001)


def markdown(plan: Plan, table: pd.DataFrame, provenance: dict, wall_s: float | None) -> str:
    spec, b = plan.spec, plan.budget
    data = pooled(table)
    lines = [f"# Ablation: {spec.title}", "", spec.question, "",
             f"Budget `{plan.budget_name}`: {b.schedule.steps} training steps at batch {b.schedule.batch_size} "
             f"({b.schedule.precision}), "
             f"seeds {list(b.seeds)}; closed loop: {b.episodes} episodes on each of {plan.tasks} {spec.suite} "
             f"tasks ({plan.episodes_per_variant} per variant); offline: action error on {b.offline_windows} windows "
             f"of held-out demos (`{Path(plan.scoring.heldout).name}`). These are tiny models trained from scratch "
             "on a CPU, not the paper's 2B model: the published numbers below are a separate, full-scale "
             "measurement, set beside ours for the shape of the curve only.", "",
             "| model | " + spec.axis.name + " | action error [95% CI] | minus default [95% CI] | Holm p | "
             "success [95% CI] | Holm p (McNemar) | train h |", "|---|---|---|---|---|---|---|---|"]
    for r in data.itertuples():
        mark = " (default)" if r.default else ""
        lines.append(
            f"| {r.model} | {r.value}{mark} | {_fmt(r.action_error)} [{_fmt(r.action_error_low)}, "
            f"{_fmt(r.action_error_high)}] | {_fmt(r.error_diff, signed=True)}"
            f"{'' if pd.isna(r.error_diff) else f' [{_fmt(r.error_low, signed=True)}, {_fmt(r.error_high, signed=True)}]'} | "
            f"{_fmt_p(r.error_holm_p)} | "
            f"{r.successes}/{r.episodes} = {_fmt(r.success_rate, pct=True)}% [{_fmt(r.ci_low, pct=True)}, "
            f"{_fmt(r.ci_high, pct=True)}] | {_fmt_p(r.success_holm_p)} | "
            f"{r.train_hours:.2f} |")
    lines += ["", "**What is significant.** " + " ".join(verdicts(table, spec.axis.name)), ""]
    pub = published_curve(spec)
    if pub is not None:
        lines += ["## Published (full-scale, from `bench/published/" + spec.published["file"] + "`)", "",
                  pub.pivot_table(index="x", columns="series", values="success").to_markdown(), ""]
    lines += [f"![{spec.name}]({spec.name}.png)", ""]
    if wall_s is not None:
        lines += [f"Time: this invocation took {wall_s / 3600:.2f} h; the variants' training "
                  f"{table['train_hours'].sum():.2f} h and evaluation {table['eval_hours'].sum():.2f} h in all "
                  "(cached jobs count where they ran).", ""]
    kept = "" if plan.scores is None else f"; each variant's scores kept in `{plan.scores}/` (eval/, offline/)"
    lines += [f"Jobs (cached under `{plan.root}/`, by hash{kept}): trainings " + ", ".join(
        f"`{k}`" for k in dict.fromkeys(table["train_job"])) + "."]
    return with_provenance("\n".join(lines), provenance)


def write(plan: Plan, out: Path, provenance: dict, wall_s: float | None = None) -> pd.DataFrame:
    """OUT/<name>.csv, .md, .png."""
    table = collect(plan)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / plan.spec.name
    table.to_csv(stem.with_suffix(".csv"), index=False)
    plot(table, plan.spec, stem.with_suffix(".png"), f"{plan.spec.title} ({plan.budget_name} budget, tiny models)")
    stem.with_suffix(".md").write_text(markdown(plan, table, provenance, wall_s), encoding="utf-8")
    return table
