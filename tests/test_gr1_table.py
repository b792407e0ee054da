"""The GR1 table: proxy results per official task beside the published numbers, pooled per group, and the
measured cost of a proxy episode."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.analysis.gr1_table import SUITE, episode_cost, mirrors, table


def _publish(folder, per_task: dict[str, tuple[int, int]], steps: int = 100):
    """A results folder as `bench run --publish` leaves it: the summary rows and the episode records."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"suite": SUITE, "task_id": i, "task": t, "episodes": n, "successes": k}
            for i, (t, (k, n)) in enumerate(per_task.items())]
    rows.append({"suite": SUITE, "task_id": None, "task": "ALL", "episodes": sum(n for _, n in per_task.values()),
                 "successes": sum(k for k, _ in per_task.values())})
    (folder / f"{SUITE}_summary.json").write_text(json.dumps({"provenance": {}, "rows": rows}))
    with open(folder / f"{SUITE}_episodes.jsonl", "w") as f:
        for t, (k, n) in per_task.items():
            for e in range(n):
                f.write(json.dumps({"key": f"{SUITE}/{t}/{e}", "task": t, "success": e < k, "steps": steps,
                                    "error": None, "wall_time_s": 4.0,
                                    "timing": {"episode_s": 3.0, "step_s": 2.0, "render_s": 0.5}}) + "\n")


def test_every_official_task_once_grouped_and_pooled(tmp_path):
    proxy = list(mirrors())
    assert len(proxy) == 24 and len(set(mirrors().values())) == 24
    a = tmp_path / "scripted"
    _publish(a, {t: (8 if t.startswith("proxy_PnP") else 4, 10) for t in proxy})
    b = tmp_path / "dit4dit"
    _publish(b, {t: (1, 10) for t in proxy[:-1]})  # one task not run
    t = table({"scripted": a, "dit4dit": b}).set_index("task")
    assert len(t) == 27
    arti = t.loc["average (articulated, 6 tasks)"]
    assert (arti["scripted_successes"], arti["scripted_episodes"]) == (48, 60)
    assert t.loc["average (rearrangement, 18 tasks)", "scripted_rate"] == pytest.approx(0.4)
    assert t.loc["average (all, 24 tasks)", "scripted_episodes"] == 240
    # a group with a task not run is not pooled (a partial pool would read as the group's number)
    assert pd.isna(t.loc["average (all, 24 tasks)", "dit4dit_episodes"])
    assert t.loc["average (articulated, 6 tasks)", "dit4dit_episodes"] == 60
    # published numbers as the CSV gives them, and its average
    assert t.loc["PnPCanToDrawerClose", "published_dit4dit"] == pytest.approx(0.74)
    assert t.loc["average (all, 24 tasks)", "published_dit4dit"] == pytest.approx(0.508, abs=0.002)
    lo, hi = t.loc["PnPCanToDrawerClose", ["scripted_ci_low", "scripted_ci_high"]]
    assert lo < 0.8 < hi


def test_episode_cost_from_records(tmp_path):
    a = tmp_path / "scripted"
    _publish(a, {"proxy_PnPCanToDrawerClose": (1, 4)}, steps=250)
    cost = episode_cost({"scripted": a}).iloc[0]
    assert cost["episodes"] == 4 and cost["mean_steps"] == 250 and cost["episodes_per_worker_hour"] == 900


def test_cli_and_report_section(tmp_path):
    from bench.report.gather import gr1_section

    a = tmp_path / "scripted"
    _publish(a, {t: (5, 10) for t in mirrors()})
    out = tmp_path / "gr1" / "gr1_tabletop_proxy"
    r = CliRunner().invoke(app, ["analyze", "gr1", "-r", str(a), "--out", str(out)])
    assert r.exit_code == 0, r.output
    md = out.with_suffix(".md").read_text()
    assert "not comparable" in md or "not the same tasks" in md
    assert "| PnPCanToDrawerClose | 50 [24, 76] |" in md and "episodes per worker-hour" in md
    assert out.with_suffix(".png").stat().st_size > 0
    sec = gr1_section(tmp_path)
    assert sec is not None and out.with_suffix(".json") in sec.sources
    r = CliRunner().invoke(app, ["analyze", "gr1", "-r", str(tmp_path / "nothing"), "--out", str(out)])
    assert r.exit_code == 2 and "gr1_tabletop_proxy_summary.json" in r.output
