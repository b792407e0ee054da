"""The GR1 table: our policies on `gr1_tabletop_proxy` beside the published RoboCasa GR1 numbers, task by task.

Input: each policy's published summary and episodes (`results/<policy>/gr1_tabletop_proxy_summary.json`,
`..._episodes.jsonl`, written by `bench run --publish`) and the published per-task success on the real GR1
benchmark (`bench/published/gr1_published.csv`). Every proxy task names the official task it mirrors
(`mirrors` in its suite.json); rows are official tasks, grouped as the benchmark groups them (6 articulated,
18 rearrangement). The proxy is a different simulator, arm and object set: its numbers sit beside the
published ones for structure, they are not comparable measurements, and the table says so. The cost columns
(the measured cost of a proxy episode) come from the episodes' own timings.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from bench.analysis.format import pct

from bench.eval.results import wilson
from bench.core.artifacts import with_provenance

SUITE = "gr1_tabletop_proxy"
PUBLISHED = Path(__file__).resolve().parents[1] / "published" / "gr1_published.csv"
GROUPS = ("articulated", "rearrangement", "all")
CAVEAT = ("Ours: tiny models trained from scratch on CPU, evaluated on `gr1_tabletop_proxy` (LIBERO objects, "
          "the Panda arm; each task mirrors one official task). Published: full-scale models on the real "
          "RoboCasa GR1 tabletop benchmark (GR1 humanoid). Set side by side for structure only: the two are "
          "not the same tasks, so no difference between the columns is a measured one.")


def group_of(official: str) -> str:
    return "articulated" if official.startswith("PnP") else "rearrangement"


def mirrors() -> dict[str, str]:
    """Proxy task name -> the official GR1 task it mirrors."""
    from bench.sim.libero.data_suites import ROOT

    suite = json.loads((ROOT / SUITE / "suite.json").read_text())
    return {t["name"]: t["mirrors"] for t in suite["tasks"]}


def _task_rows(folder: Path) -> dict[str, tuple[int, int]] | None:
    path = folder / f"{SUITE}_summary.json"
    if not path.is_file():
        return None
    rows = json.loads(path.read_text())["rows"]
    return {r["task"]: (int(r["successes"]), int(r["episodes"])) for r in rows if r["task"] != "ALL"}


def table(results: dict[str, Path], published: Path = PUBLISHED) -> pd.DataFrame:
    """One row per official task (then one per group): each policy's proxy success and interval, and the
    published success of each published model."""
    pub = pd.read_csv(published, comment="#").set_index("task")
    pub_models = list(pub.columns)
    mirror = mirrors()
    measured = {label: _task_rows(Path(folder)) for label, folder in results.items()}
    rows = []
    for proxy, official in mirror.items():
        row = {"task": official, "proxy_task": proxy, "group": group_of(official)}
        for label, got in measured.items():
            k, n = (got or {}).get(proxy, (None, None))
            row[f"{label}_successes"], row[f"{label}_episodes"] = k, n
        for m in pub_models:
            row[f"published_{m}"] = float(pub.loc[official, m]) / 100 if official in pub.index else None
        rows.append(row)
    tasks = pd.DataFrame(rows)
    for group in GROUPS:
        part = tasks if group == "all" else tasks[tasks["group"] == group]
        row = {"task": f"average ({group}, {len(part)} tasks)", "proxy_task": None, "group": group}
        for label in measured:
            k, n = part[f"{label}_successes"], part[f"{label}_episodes"]
            done = n.notna()
            # a group is pooled only when every task in it was run (a partial pool would mislead)
            row[f"{label}_successes"] = int(k[done].sum()) if done.all() else None
            row[f"{label}_episodes"] = int(n[done].sum()) if done.all() else None
        for m in pub_models:
            row[f"published_{m}"] = float(part[f"published_{m}"].mean())
        rows.append(row)
    t = pd.DataFrame(rows)
    for label in measured:
        k, n = t[f"{label}_successes"], t[f"{label}_episodes"]
        ci = [wilson(int(a), int(b)) if pd.notna(b) and b else (None, None) for a, b in zip(k, n)]
        t[f"{label}_rate"] = [a / b if pd.notna(b) and b else None for a, b in zip(k, n)]
        t[f"{label}_ci_low"] = [c[0] for c in ci]
        t[f"{label}_ci_high"] = [c[1] for c in ci]
    return t


def episode_cost(results: dict[str, Path]) -> pd.DataFrame:
    """What one proxy episode costs, per policy, from its records: steps, seconds in the simulator step, the
    policy and rendering (summed per episode), and the wall time of one episode on one worker."""
    from bench.core.records import latest_by_key, read_records

    rows = []
    for label, folder in results.items():
        path = Path(folder) / f"{SUITE}_episodes.jsonl"
        if not path.is_file():
            continue
        recs = [r for r in latest_by_key(read_records(path)).values() if not r.get("error")]
        if not recs:
            continue
        steps = [r["steps"] for r in recs]
        timing = pd.DataFrame([r.get("timing") or {} for r in recs])
        wall = [r["wall_time_s"] for r in recs]
        rows.append({"policy": label, "episodes": len(recs), "mean_steps": sum(steps) / len(steps),
                     "episode_s": float(timing["episode_s"].mean()) if "episode_s" in timing else None,
                     "step_s": float(timing["step_s"].mean()) if "step_s" in timing else None,
                     "render_s": float(timing["render_s"].mean()) if "render_s" in timing else None,
                     "wall_s": sum(wall) / len(wall),
                     "episodes_per_worker_hour": 3600 * len(wall) / sum(wall)})
    return pd.DataFrame(rows)


def _cell(r: pd.Series, label: str) -> str:
    rate = r[f"{label}_rate"]
    if rate is None or (isinstance(rate, float) and math.isnan(rate)):
        return "not run"
    return f"{pct(rate, digits=0)} [{pct(r[f'{label}_ci_low'], digits=0)}, {pct(r[f'{label}_ci_high'], digits=0)}]"


def to_markdown(t: pd.DataFrame, labels: list[str], cost: pd.DataFrame) -> str:
    pub = [c.removeprefix("published_") for c in t.columns if c.startswith("published_")]
    head = ([f"{lab} (proxy) % [95% CI]" for lab in labels] + [f"{m} (published, real GR1) %" for m in pub])
    lines = ["# RoboCasa GR1 tabletop: our proxy beside the published benchmark", "", CAVEAT, "",
             "| GR1 task | " + " | ".join(head) + " |", "| --- |" + " --- |" * len(head)]
    for _, r in t.iterrows():
        name = f"**{r['task']}**" if r["proxy_task"] is None else r["task"]
        cells = [_cell(r, lab) for lab in labels] + [pct(r[f"published_{m}"], digits=0) for m in pub]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Proxy intervals are 95% Wilson intervals over the episodes; published numbers are as reported "
              "(50 episodes per task; sources in the CSV)."]
    if len(cost):
        lines += ["", "## Cost of a proxy episode (measured, one sim worker)", "",
                  "| policy | episodes | mean steps | simulator step s | render s | episode s | wall s "
                  "(with env creation) | episodes per worker-hour |", "| --- |" + " --- |" * 7]
        for r in cost.itertuples():
            lines.append(f"| {r.policy} | {r.episodes} | {r.mean_steps:.0f} | {r.step_s:.2f} | {r.render_s:.2f} | "
                         f"{r.episode_s:.2f} | {r.wall_s:.2f} | {r.episodes_per_worker_hour:.0f} |")
    return "\n".join(lines) + "\n"


def plot(t: pd.DataFrame, labels: list[str], path: Path) -> None:
    """Two panels on separate axes: ours on the proxy (with intervals), the published models on real GR1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = t[t["proxy_task"].notna()].reset_index(drop=True)
    pub = [c.removeprefix("published_") for c in t.columns if c.startswith("published_")]
    names = [n.removeprefix("PosttrainPnPNovel").removesuffix("SplitA") for n in tasks["task"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.28 * len(tasks) + 1.6), sharey=True)
    y = range(len(tasks))
    h = 0.8 / max(len(labels), 1)
    for j, lab in enumerate(labels):
        rate = tasks[f"{lab}_rate"].astype(float)
        done = rate.notna()
        ys = [i + (j - (len(labels) - 1) / 2) * h for i in y]
        err = [(100 * (rate - tasks[f"{lab}_ci_low"].astype(float)))[done],
               (100 * (tasks[f"{lab}_ci_high"].astype(float) - rate))[done]]
        left.barh([v for v, d in zip(ys, done) if d], 100 * rate[done], h * 0.9, xerr=err, capsize=2, label=lab)
    left.set_title("ours, gr1_tabletop_proxy (tiny, CPU)", fontsize=9)
    for j, m in enumerate(pub):
        ys = [i + (j - (len(pub) - 1) / 2) * (0.8 / len(pub)) for i in y]
        right.barh(ys, 100 * tasks[f"published_{m}"].astype(float), 0.8 / len(pub) * 0.9, label=m)
    right.set_title("published, real RoboCasa GR1 (full scale)", fontsize=9)
    for ax in (left, right):
        ax.set_xlim(0, 100)
        ax.set_xlabel("success %")
        ax.legend(fontsize=7, loc="lower right")
    left.set_yticks(list(y), names, fontsize=7)
    left.invert_yaxis()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def write(results: dict[str, Path], out: Path, provenance: dict, published: Path = PUBLISHED) -> pd.DataFrame:
    """out.md, out.csv, out.png, out.json (with provenance)."""
    labels = list(results)
    t = table(results, published)
    cost = episode_cost(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    t.to_csv(out.with_suffix(".csv"), index=False)
    md = with_provenance(to_markdown(t, labels, cost), provenance)
    out.with_suffix(".md").write_text(md)
    out.with_suffix(".json").write_text(json.dumps(
        {"provenance": provenance, "caveat": CAVEAT, "published": str(published),
         "sources": {k: str(v) for k, v in results.items()}, "rows": json.loads(t.to_json(orient="records")),
         "episode_cost": json.loads(cost.to_json(orient="records"))}, indent=2))
    plot(t, labels, out.with_suffix(".png"))
    return t
