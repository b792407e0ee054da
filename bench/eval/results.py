"""Aggregate episode records into per-task, per-suite and overall success tables.

Success rates carry Wilson 95% intervals (scipy's binomtest). Episodes that ended
in an error count as failures (conservative) and are counted in an `errors`
column, so nothing is hidden.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from scipy.stats import binomtest

from bench.core.records import latest_by_key, read_records
from bench.eval.videos import contact_sheet
from bench.core.artifacts import with_provenance

COLUMNS = ["suite", "task_id", "task", "episodes", "successes", "success_rate", "ci_low", "ci_high", "errors",
           "mean_steps"]


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def records_frame(records: list[dict]) -> pd.DataFrame:
    """One row per episode key (latest record wins)."""
    df = pd.DataFrame(list(latest_by_key(records).values()))
    if df.empty:
        return df
    df["success"] = df["success"].astype(bool)
    df["errored"] = df["error"].notna()
    return df


def _row(group: pd.DataFrame, **labels) -> dict:
    n, k = len(group), int(group["success"].sum())
    lo, hi = wilson(k, n)
    return {**labels, "episodes": n, "successes": k, "success_rate": k / n if n else float("nan"),
            "ci_low": lo, "ci_high": hi, "errors": int(group["errored"].sum()),
            "mean_steps": float(group["steps"].mean())}


def aggregate(records: list[dict]) -> pd.DataFrame:
    """Rows per task, then one 'ALL' row per suite, then 'OVERALL' when several suites are present."""
    df = records_frame(records)
    if df.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    for suite, sdf in df.groupby("suite", sort=False):
        for (task_id, task), tdf in sdf.groupby(["task_id", "task"], sort=True):
            rows.append(_row(tdf, suite=suite, task_id=int(task_id), task=task))
        rows.append(_row(sdf, suite=suite, task_id=None, task="ALL"))
    if df["suite"].nunique() > 1:
        rows.append(_row(df, suite="OVERALL", task_id=None, task="ALL"))
    return pd.DataFrame(rows, columns=COLUMNS).astype({"task_id": "Int64"})


def to_markdown(table: pd.DataFrame) -> str:
    show = table.copy()
    show["task_id"] = show["task_id"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    show["success %"] = (100 * show["success_rate"]).map("{:.1f}".format)
    show["95% CI"] = [f"[{100 * lo:.1f}, {100 * hi:.1f}]" for lo, hi in zip(show["ci_low"], show["ci_high"])]
    show["mean_steps"] = show["mean_steps"].map("{:.0f}".format)
    cols = ["suite", "task_id", "task", "episodes", "successes", "success %", "95% CI", "errors", "mean_steps"]
    return show[cols].to_markdown(index=False)


def task_label(row, width: int = 72) -> str:
    """How a table row is named on a plot axis: '<suite> (all)' or '<id>: <task words>'."""
    if row.task == "ALL":
        return f"{row.suite} (all)"
    return f"{int(row.task_id)}: {str(row.task).replace('_', ' ')[:width]}"


def plot_summary(table: pd.DataFrame, path: Path, title: str = "") -> None:
    """Per-task success with Wilson 95% intervals as horizontal bars (suite rows in a darker colour):
    fifty task names read faster as a picture than as a table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if table.empty:
        return
    rows = table.iloc[::-1]  # first task at the top
    labels = [task_label(r) for r in rows.itertuples()]
    rate = 100 * rows["success_rate"].to_numpy(dtype=float)
    err = [rate - 100 * rows["ci_low"].to_numpy(dtype=float), 100 * rows["ci_high"].to_numpy(dtype=float) - rate]
    colors = ["#1f4e79" if t == "ALL" else "#7fa7d0" for t in rows["task"]]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(rows) + 1.2))
    ax.barh(range(len(rows)), rate, xerr=err, color=colors, error_kw={"elinewidth": 1, "capsize": 2})
    for i, r in enumerate(rows.itertuples()):
        ax.text(101, i, f"{r.successes}/{r.episodes}", va="center", fontsize=7)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.set_xlim(0, 110)
    ax.set_xlabel("success % (bars: Wilson 95% interval)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def simulator_stacks(records: list[dict]) -> list[dict]:
    """The distinct simulator stacks (backend, python, versions) the episodes ran on, as workers reported them."""
    seen: dict[str, dict] = {}
    for r in records:
        if r.get("sim"):
            seen.setdefault(json.dumps(r["sim"], sort_keys=True), r["sim"])
    return list(seen.values())


def stack_notes(stacks: list[dict]) -> list[str]:
    """Warnings a reader must see beside the numbers."""
    notes = []
    if len(stacks) > 1:
        notes.append(f"These episodes ran on {len(stacks)} different simulator stacks (see Simulator).")
    if any((s.get("versions") or {}).get("assets") == "standin" for s in stacks):
        notes.append("Stand-in assets: these episodes ran on generated primitive shapes, not the benchmark's "
                     "objects; the numbers measure the harness, not a policy, and compare with nobody's.")
    return notes


def split_manifests(records: list[dict]) -> list[str]:
    """The split manifest of each zero-shot suite among the records (bench.sim.splits), to print beside the table."""
    from bench.sim.splits import describe

    out = []
    for suite in sorted({str(r.get("suite")) for r in records if r.get("suite")}):
        try:
            text = describe(suite)
        except (KeyError, ValueError, OSError):  # a suite this version does not know
            text = None
        if text:
            out.append(text)
    return out


def failure_reason(notes: dict) -> str:
    """Why a failed episode failed, in the policy's own words (its notes' `where`)."""
    return str(notes.get("where") or "notes say nothing of where it stood")


def failure_notes(records: list[dict]) -> str | None:
    """Per task, why its failed episodes failed, from the policy's own notes (records without notes, or with an
    error, are left out); None when no failure has notes."""
    rows = []
    for r in latest_by_key(records).values():
        if r.get("success") or r.get("error") or not r.get("policy_notes"):
            continue
        rows.append({"task_id": r["task_id"], "task": r["task"], "reason": failure_reason(r["policy_notes"])})
    if not rows:
        return None
    df = pd.DataFrame(rows)
    lines = ["| task_id | task | failures | why (as the policy saw it at the end) |", "| --- | --- | --- | --- |"]
    for (tid, task), g in df.groupby(["task_id", "task"], sort=True):
        why = "; ".join(f"{reason} x{n}" for reason, n in g["reason"].value_counts().items())
        lines.append(f"| {tid} | {task} | {len(g)} | {why} |")
    return "\n".join(lines)


def write_summary(out_dir: Path, records: list[dict], provenance: dict) -> pd.DataFrame:
    """Write summary.{md,csv,json,png} (and videos.png if episodes were recorded) next to episodes.jsonl
    and return the table."""
    table = aggregate(records)
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "summary.csv", index=False)
    policies = sorted({str(r.get("policy")) for r in records if r.get("policy")})
    plot_summary(table, out_dir / "summary.png", title=f"{', '.join(policies)} ({provenance.get('command', '')})")
    sims = simulator_stacks(records)
    notes = "".join(f"\n\n**{n}**" for n in stack_notes(sims))
    notes += "".join(f"\n\n## Split\n\n{m}" for m in split_manifests(records))
    why = failure_notes(records)
    notes += f"\n\n## Why episodes failed\n\n{why}" if why else ""
    (out_dir / "summary.md").write_text(
        with_provenance(f"# Results\n\n{to_markdown(table)}{notes}\n\n## Simulator\n\n```json\n"
                        f"{json.dumps(sims, indent=2)}\n```\n", provenance, sort_keys=True), encoding="utf-8"
    )
    payload = {"provenance": provenance, "simulators": sims, "rows": json.loads(table.to_json(orient="records"))}
    (out_dir / "summary.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    git = provenance.get("git") or {}
    caption = f"{provenance.get('command', '')}  (commit {(git.get('commit') or '?')[:7]}{' dirty' if git.get('dirty') else ''})"
    contact_sheet(out_dir, records, caption=caption)  # videos.png, when episodes were recorded
    return table


def record_invocation(out_dir: Path, provenance: dict) -> None:
    """Note, before any episode runs, the code and command that produce this run's episodes
    (a resumed run appends another line)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "invocations.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(provenance, sort_keys=True) + "\n")


class EmptyRunDir(ValueError):
    """A run directory with no episode records to summarize."""


def summarize_dir(out_dir: Path, provenance: dict) -> pd.DataFrame:
    """Summary of a run directory. Its provenance is that of the invocations that ran the
    episodes (the first one's fields at the top level, all of them under 'invocations');
    `provenance` (now) is kept as 'summarized'. Raises EmptyRunDir when it holds no episode records."""
    records = read_records(out_dir / "episodes.jsonl")
    if not records:
        raise EmptyRunDir(f"{out_dir / 'episodes.jsonl'} holds no episode records")
    path = out_dir / "invocations.jsonl"
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    prov = {**runs[0], "invocations": runs, "summarized": provenance} if runs else provenance
    return write_summary(out_dir, records, prov)
