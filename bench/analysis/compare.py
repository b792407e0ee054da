"""Set run summaries side by side, per task, with Wilson 95% intervals, and test the first
(the reference) against each of the others.

Why tests and not just rates: at 50 episodes per task, 4/50 against 0/50 is
p = 0.06, not a clear win; the table says which differences the episodes support.
Two tests per row: a one-sided Fisher exact test of "the reference succeeds more
often" (treats the runs as independent samples), and, when both runs' episode
records are found and pair up (same task, init state and seed), the paired
statistics of `bench.analysis.paired`: McNemar's exact test, Holm's correction over the
tasks, a paired bootstrap interval of the difference and the minimum detectable
difference. Summaries must come from the same protocol (same hash), or the
comparison is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.analysis.format import interval, pct, pvalue
from scipy.stats import fisher_exact

from bench.core.mathmode import summary_line
from bench.analysis.paired import ALPHA, PAIR_KEY, holm, paired_compare
from bench.core.records import latest_by_key, read_records
from bench.eval.results import task_label
from bench.core.artifacts import with_provenance

KEY = ["suite", "task_id", "task"]


@dataclass
class Summary:
    label: str
    path: Path
    table: pd.DataFrame  # the rows of a summary.json (tasks, then 'ALL' per suite)
    protocol_hash: str | None
    command: str | None  # the bench command that ran its episodes
    commits: list[str]  # the git commits its episodes ran at, one per resumed invocation ("+dirty" if so)
    maths: list[dict | None]  # the float math of each distinct invocation (None: recorded before it was kept)
    episodes: pd.DataFrame | None = None  # one row per episode (PAIR_KEY + success), when its records are found


def episodes_path(summary_path: Path) -> Path:
    """Where a summary's episode records live: next to it, as `bench run` (episodes.jsonl) or
    `--publish` (<suite>_episodes.jsonl) writes them."""
    summary_path = Path(summary_path)
    if summary_path.name == "summary.json":
        return summary_path.with_name("episodes.jsonl")
    return summary_path.with_name(summary_path.name.replace("_summary.json", "_episodes.jsonl"))


def load_episodes(path: Path) -> pd.DataFrame | None:
    """Latest record per episode key, as PAIR_KEY columns + success (an errored episode is a failure)."""
    if not path.exists():
        return None
    rows = [{**{k: r.get(k) for k in PAIR_KEY}, "success": bool(r.get("success"))}
            for r in latest_by_key(read_records(path)).values()]
    return pd.DataFrame(rows, columns=[*PAIR_KEY, "success"]) if rows else None


def load_summary(path: Path, label: str | None = None) -> Summary:
    """A `summary.json` written by `bench run` / `bench summarize` (or published by --publish).
    The default label is the folder it was published to (results/<label>/...) or the run's policy."""
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        rows, prov = payload["rows"], payload["provenance"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a run summary.json ({e.__class__.__name__}: {e})") from e
    table = pd.DataFrame(rows)
    missing = [c for c in KEY + ["episodes", "successes", "success_rate", "ci_low", "ci_high"] if c not in table]
    if missing:
        raise ValueError(f"{path}: summary rows lack {', '.join(missing)}")
    table["task_id"] = table["task_id"].astype("Int64")
    return Summary(label=label or Path(path).resolve().parent.name, path=Path(path), table=table,
                   protocol_hash=prov.get("protocol_hash"), command=prov.get("command"),
                   commits=_commits(prov), maths=_maths(prov), episodes=load_episodes(episodes_path(path)))


def _commits(prov: dict) -> list[str]:
    out = []
    for run in prov.get("invocations") or [prov]:
        git = run.get("git") or {}
        name = (git.get("commit") or "?")[:7] + ("+dirty" if git.get("dirty") else "")
        if name not in out:
            out.append(name)
    return out


def _maths(prov: dict) -> list[dict | None]:
    out: dict[str | None, dict | None] = {}
    for run in prov.get("invocations") or [prov]:
        math = run.get("math")
        out.setdefault(math.get("id") if math else None, math)
    return list(out.values())


def math_warning(summaries: list[Summary]) -> str | None:
    """A warning when the runs' float math differs (or is unknown): their episodes are then not expected
    to match bit for bit, and only their rates compare, statistically."""
    ids = {s.label: sorted(str(m.get("id")) if m else "unknown" for m in s.maths) for s in summaries}
    if len({tuple(v) for v in ids.values()}) == 1 and "unknown" not in next(iter(ids.values())):
        return None
    lines = "\n".join(f"- `{s.label}`: " + "; ".join(summary_line(m) for m in s.maths) for s in summaries)
    return ("The runs' float math differs or is unknown, so the same episode need not end the same way in both: "
            "compare their rates (as the table does), not their episodes.\n" + lines)


def compare(summaries: list[Summary]) -> pd.DataFrame:
    """One row per (suite, task) present in any summary; per summary its successes, episodes, rate and
    interval; and for each summary B after the first (A), columns `vs_B:*` (see PAIR_COLUMNS)."""
    if len(summaries) < 2:
        raise ValueError("compare needs at least two summaries")
    labels = [s.label for s in summaries]
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels must differ, got {labels}; pass --labels")
    hashes = {s.label: s.protocol_hash for s in summaries}
    if len(set(hashes.values())) > 1:
        raise ValueError("summaries ran under different protocols, so their rates are not comparable: "
                         + ", ".join(f"{k}: {v}" for k, v in hashes.items()))
    merged = None
    for s in summaries:
        part = s.table[KEY + ["episodes", "successes", "success_rate", "ci_low", "ci_high"]].rename(
            columns={c: f"{s.label}:{c}" for c in ["episodes", "successes", "success_rate", "ci_low", "ci_high"]})
        merged = part if merged is None else merged.merge(part, on=KEY, how="outer", sort=False)
    # tasks in id order, each suite's ALL row after its tasks
    merged["_all"] = merged["task"].eq("ALL")
    merged = merged.sort_values(["suite", "_all", "task_id"], kind="stable").drop(columns="_all")
    merged = merged.reset_index(drop=True)
    for other in summaries[1:]:
        _add_pair_columns(merged, summaries[0], other)
    return merged


PAIR_COLUMNS = {
    "fisher_p": "one-sided Fisher exact p that A succeeds more often than B (the runs taken as independent)",
    "pairs": "episodes both ran (same task, init state and seed); 0 when the records do not pair up",
    "a_only": "paired episodes A succeeded and B failed",
    "b_only": "paired episodes B succeeded and A failed",
    "diff": "success rate of A minus B over the paired episodes",
    "diff_low": "paired bootstrap 95% interval of diff, low (resampled within each task)",
    "diff_high": "paired bootstrap 95% interval of diff, high",
    "mcnemar_p": "McNemar exact two-sided p",
    "holm_p": "McNemar p, Holm-adjusted over the suite's task rows (ALL rows: unadjusted)",
    "mdd": "minimum detectable difference: smallest difference these pairs detect with 80% power",
    "significant": f"holm_p < {ALPHA}: the difference is supported by the episodes",
}


def _add_pair_columns(table: pd.DataFrame, a: Summary, b: Summary) -> None:
    """Fill table's `vs_<b>:*` columns for reference `a` against `b`, in place."""
    pre = f"vs_{b.label}:"
    table[pre + "fisher_p"] = [
        _fisher_greater(r[f"{a.label}:successes"], r[f"{a.label}:episodes"],
                        r[f"{b.label}:successes"], r[f"{b.label}:episodes"]) for _, r in table.iterrows()]
    pairs = _pair(a.episodes, b.episodes)
    results = []
    for _, row in table.iterrows():
        sel = None if pairs is None else _row_pairs(pairs, row)
        if sel is None or sel.empty:
            results.append(None)
            continue
        strata = (sel["suite"] + "/" + sel["task_id"].astype(str)).to_numpy()  # the bootstrap resamples per task
        results.append(paired_compare(sel["success_a"].to_numpy(), sel["success_b"].to_numpy(), strata=strata))
    for col in ("pairs", "a_only", "b_only", "diff", "diff_low", "diff_high", "mcnemar_p", "mdd"):
        attr = {"mcnemar_p": "p_two_sided"}.get(col, col)
        table[pre + col] = [float("nan") if r is None else getattr(r, attr) for r in results]
    table[pre + "pairs"] = table[pre + "pairs"].fillna(0).astype(int)
    holm_p = table[pre + "mcnemar_p"].copy()
    for suite in table["suite"].unique():
        tasks = table["suite"].eq(suite) & table["task"].ne("ALL")
        holm_p[tasks] = holm(table.loc[tasks, pre + "mcnemar_p"].tolist())
    table[pre + "holm_p"] = holm_p
    table[pre + "significant"] = holm_p.lt(ALPHA)


def _row_pairs(pairs: pd.DataFrame, row) -> pd.DataFrame:
    sel = pairs if row["suite"] == "OVERALL" else pairs[pairs["suite"].eq(row["suite"])]
    return sel if row["task"] == "ALL" else sel[sel["task_id"].eq(row["task_id"])]


def _pair(a: pd.DataFrame | None, b: pd.DataFrame | None) -> pd.DataFrame | None:
    """Episodes both ran, with both outcomes; None unless every episode of one run has its pair in the other
    (a run on the first 10 initial states of each task pairs with one on the first 50, over those 10; two
    runs whose episode sets only overlap are compared as independent samples only)."""
    if a is None or b is None:
        return None
    key = list(PAIR_KEY)
    both = a.merge(b, on=key, how="inner", suffixes=("_a", "_b"))
    if len(both) != min(len(a), len(b)):
        return None
    return both


def _fisher_greater(k1, n1, k2, n2) -> float:
    if any(pd.isna(v) for v in (k1, n1, k2, n2)):
        return float("nan")
    k1, n1, k2, n2 = int(k1), int(n1), int(k2), int(n2)
    return float(fisher_exact([[k1, n1 - k1], [k2, n2 - k2]], alternative="greater").pvalue)


def _task_columns(table: pd.DataFrame) -> pd.DataFrame:
    show = table[KEY].copy()
    show["task_id"] = show["task_id"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    return show


def rates_markdown(table: pd.DataFrame, labels: list[str]) -> str:
    """Per-task successes of every run, with Wilson 95% intervals."""
    show = _task_columns(table)
    for lab in labels:
        show[lab] = [
            "—" if pd.isna(n) else f"{int(k)}/{int(n)} = {100 * r:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"
            for k, n, r, lo, hi in zip(*(table[f"{lab}:{c}"] for c in
                                         ["successes", "episodes", "success_rate", "ci_low", "ci_high"]))]
    return show.to_markdown(index=False)


def pair_markdown(table: pd.DataFrame, a: str, b: str) -> str:
    """The tests of reference `a` against `b`, one row per task."""
    pre = f"vs_{b}:"
    show = _task_columns(table).drop(columns="task")
    show["task"] = [task_label(r, width=40) for r in table.itertuples()]
    show[f"{a} − {b}, points [95% CI]"] = [
        "—" if pd.isna(d) else f"{pct(d, True)} {interval(lo, hi, True)}"
        for d, lo, hi in zip(table[pre + "diff"], table[pre + "diff_low"], table[pre + "diff_high"])]
    show["discordant (A only / B only)"] = [
        "—" if n == 0 else f"{int(x)} / {int(y)}"
        for n, x, y in zip(table[pre + "pairs"], table[pre + "a_only"], table[pre + "b_only"])]
    show["McNemar p"] = table[pre + "mcnemar_p"].map(pvalue)
    show["Holm p"] = table[pre + "holm_p"].map(pvalue)
    show[f"Fisher p({a} > {b})"] = table[pre + "fisher_p"].map(pvalue)
    show["MDD, points"] = table[pre + "mdd"].map(pct)
    show["verdict"] = [_verdict(r, pre, a, b) for _, r in table.iterrows()]
    return show.drop(columns=["task_id"]).to_markdown(index=False)


def _verdict(row, pre: str, a: str, b: str) -> str:
    if row[pre + "pairs"] == 0:
        return "unpaired: see Fisher p"
    if row[pre + "significant"]:
        return f"{a} better" if row[pre + "diff"] > 0 else f"{b} better"
    return "not significant"


def to_markdown(table: pd.DataFrame, labels: list[str]) -> str:
    parts = [rates_markdown(table, labels)]
    for b in labels[1:]:
        parts.append(f"### {labels[0]} against {b}\n\n{pair_markdown(table, labels[0], b)}")
    return "\n\n".join(parts)


TESTS_NOTE = (
    "How to read the tests (reference A = the first run, B = each other): the difference is A − B in "
    "percentage points over the paired episodes (the episodes both ran: same task, init state and seed; when "
    "one run ran more, its rate above covers all of its episodes and the difference only the shared ones), with a paired bootstrap 95% interval (resampled within each task, 10,000 resamples, seed 0). "
    "McNemar p: exact two-sided test on the discordant pairs. Holm p: McNemar p adjusted over the suite's "
    f"tasks (the ALL row: unadjusted); significant when below {ALPHA}. Fisher p: one-sided exact test that A "
    "succeeds more often than B, the runs taken as independent samples. MDD: the smallest true difference "
    "these pairs would detect with 80% power (exact McNemar power at the observed discordance), so a "
    "non-significant row says only that any difference is likely below it.")


def plot(table: pd.DataFrame, labels: list[str], path: Path, title: str = "") -> None:
    """Grouped horizontal bars per task, one colour per summary, Wilson 95% intervals as whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table.iloc[::-1].reset_index(drop=True)
    n, width = len(labels), 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(9, 0.3 * len(rows) * max(n, 2) + 1.4))
    colors = plt.get_cmap("tab10").colors
    for j, lab in enumerate(labels):
        rate = 100 * rows[f"{lab}:success_rate"].astype(float)
        err = [rate - 100 * rows[f"{lab}:ci_low"].astype(float), 100 * rows[f"{lab}:ci_high"].astype(float) - rate]
        y = [i + (n - 1 - j) * width - 0.4 + width / 2 for i in range(len(rows))]
        ax.barh(y, rate.fillna(0), height=width, xerr=[e.fillna(0).clip(lower=0) for e in err], color=colors[j % 10],
                label=lab, error_kw={"elinewidth": 0.8, "capsize": 1.5})
    names = [task_label(r, width=64) for r in rows.itertuples()]
    ax.set_yticks(range(len(rows)), names, fontsize=7)
    ax.set_xlim(0, 100)
    ax.set_xlabel("success % (whiskers: Wilson 95% interval)")
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=n, frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_comparison(summaries: list[Summary], out: Path, provenance: dict, note: str = "") -> pd.DataFrame:
    """Write OUT.md (table, where each summary came from, this command's provenance), OUT.csv, OUT.png."""
    table = compare(summaries)
    labels = [s.label for s in summaries]
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out.with_suffix(".csv"), index=False)
    plot(table, labels, out.with_suffix(".png"), title=" vs ".join(labels))
    sources = "\n".join(
        f"- `{s.label}`: `{s.path}` (produced by `{s.command}` at commit(s) {', '.join(s.commits)}); "
        + (f"{len(s.episodes)} episode records in `{episodes_path(s.path)}`" if s.episodes is not None
           else "no episode records beside it, so it is compared unpaired")
        for s in summaries)
    test = TESTS_NOTE + "\n\n"
    warning = math_warning(summaries)
    math = f"## Float math\n\n{warning}\n\n" if warning else "Float math: the same in every run.\n\n"
    out.with_suffix(".md").write_text(
        with_provenance(f"# {' vs '.join(labels)}\n\n{note + chr(10) * 2 if note else ''}{to_markdown(table, labels)}"
                        f"\n\n{test}{math}Protocol hash: `{summaries[0].protocol_hash}`.\n\n## Sources\n\n{sources}",
                        provenance), encoding="utf-8")
    return table
