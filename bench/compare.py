"""Set run summaries side by side, per task, with Wilson 95% intervals and, for two of them,
a one-sided Fisher exact test of "the first succeeds more often than the second".

Why a test and not just two rates: at 50 episodes per task, 4/50 against 0/50 is
p = 0.06, not a clear win; the table says which differences the episodes support.
Summaries must come from the same protocol (same hash), or the comparison is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from scipy.stats import fisher_exact

from bench.mathmode import summary_line
from bench.results import task_label

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
                   commits=_commits(prov), maths=_maths(prov))


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
    """One row per (suite, task) present in any summary; per summary its successes, episodes,
    rate and interval; with exactly two, `p_greater`: Fisher exact p that the first's rate
    exceeds the second's (small = the data support 'first is better')."""
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
    if len(summaries) == 2:
        a, b = labels
        merged["p_greater"] = [
            _fisher_greater(r[f"{a}:successes"], r[f"{a}:episodes"], r[f"{b}:successes"], r[f"{b}:episodes"])
            for _, r in merged.iterrows()]
    # tasks in id order, each suite's ALL row after its tasks
    merged["_all"] = merged["task"].eq("ALL")
    merged = merged.sort_values(["suite", "_all", "task_id"], kind="stable").drop(columns="_all")
    return merged.reset_index(drop=True)


def _fisher_greater(k1, n1, k2, n2) -> float:
    if any(pd.isna(v) for v in (k1, n1, k2, n2)):
        return float("nan")
    k1, n1, k2, n2 = int(k1), int(n1), int(k2), int(n2)
    return float(fisher_exact([[k1, n1 - k1], [k2, n2 - k2]], alternative="greater").pvalue)


def to_markdown(table: pd.DataFrame, labels: list[str]) -> str:
    show = table[KEY].copy()
    show["task_id"] = show["task_id"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    for lab in labels:
        show[lab] = [
            "—" if pd.isna(n) else f"{int(k)}/{int(n)} = {100 * r:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"
            for k, n, r, lo, hi in zip(*(table[f"{lab}:{c}"] for c in
                                         ["successes", "episodes", "success_rate", "ci_low", "ci_high"]))]
    if "p_greater" in table:
        show[f"p({labels[0]} > {labels[1]})"] = table["p_greater"].map(lambda p: "—" if pd.isna(p) else f"{p:.2g}")
    return show.to_markdown(index=False)


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


def write_comparison(summaries: list[Summary], out: Path, provenance: dict) -> pd.DataFrame:
    """Write OUT.md (table, where each summary came from, this command's provenance), OUT.csv, OUT.png."""
    table = compare(summaries)
    labels = [s.label for s in summaries]
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out.with_suffix(".csv"), index=False)
    plot(table, labels, out.with_suffix(".png"), title=" vs ".join(labels))
    sources = "\n".join(f"- `{s.label}`: `{s.path}` (produced by `{s.command}` at commit(s) {', '.join(s.commits)})"
                        for s in summaries)
    test = (f"p({labels[0]} > {labels[1]}): one-sided Fisher exact test that {labels[0]} succeeds more often "
            f"than {labels[1]} on that row's episodes.\n\n" if len(labels) == 2 else "")
    warning = math_warning(summaries)
    math = f"## Float math\n\n{warning}\n\n" if warning else "Float math: the same in every run.\n\n"
    out.with_suffix(".md").write_text(
        f"# {' vs '.join(labels)}\n\n{to_markdown(table, labels)}\n\n{test}{math}"
        f"Protocol hash: `{summaries[0].protocol_hash}`.\n\n## Sources\n\n{sources}\n\n"
        f"## Provenance\n\n```json\n{json.dumps(provenance, indent=2)}\n```\n",
        encoding="utf-8")
    return table
