"""The zero-shot table from published summaries: rates, intervals, drops and their significance."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.analysis.zeroshot_table import newcombe, table


def _summary(folder, suite, k, n):
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"suite": suite, "task_id": None, "task": "ALL", "episodes": n, "successes": k}]
    (folder / f"{suite}_summary.json").write_text(json.dumps({"provenance": {}, "rows": rows}))


def test_drops_intervals_and_significance(tmp_path):
    a = tmp_path / "a"
    _summary(a, "libero_spatial", 150, 200)
    _summary(a, "libero_spatial_zeroshot_object", 140, 200)  # a small drop: noise at n = 200
    _summary(a, "libero_spatial_zeroshot_category", 40, 200)  # a large one
    t = table({"a": a}, "libero_spatial").set_index("split")
    assert t.loc["in-distribution", "success_rate"] == 0.75 and pd.isna(t.loc["in-distribution", "drop"])
    assert t.loc["zero-shot object", "drop"] == pytest.approx(0.05)
    assert not t.loc["zero-shot object", "significant"] and t.loc["zero-shot category", "significant"]
    assert pd.isna(t.loc["zero-shot quantity", "episodes"])  # not run, listed anyway
    lo, hi = t.loc["zero-shot category", ["drop_low", "drop_high"]]
    assert lo < 0.55 < hi and 0.4 < lo
    assert t.loc["zero-shot object", "p_holm"] >= t.loc["zero-shot object", "p"]


def test_newcombe_matches_the_published_example():
    # Newcombe (1998), Table II, example (a): 56/70 vs 48/80 -> 0.0524 to 0.3339
    lo, hi = newcombe(56, 70, 48, 80)
    assert lo == pytest.approx(0.0524, abs=5e-4) and hi == pytest.approx(0.3339, abs=5e-4)


def test_cli_writes_the_table_and_names_bad_input(tmp_path):
    a = tmp_path / "dit4dit"
    _summary(a, "libero_spatial", 10, 50)
    _summary(a, "libero_spatial_swap", 2, 50)
    r = CliRunner().invoke(app, ["analyze", "zeroshot", "-r", str(a), "--out", str(tmp_path / "zs")])
    assert r.exit_code == 0, r.output
    md = (tmp_path / "zs.md").read_text()
    assert "| dit4dit | LIBERO-PRO swap | 4.0 [1.1, 13.5] | 50 |" in md and (tmp_path / "zs.png").stat().st_size > 0
    # the table prints the manifest it was measured under: every zero-shot suite's changes
    assert "## Manifests" in md and "Training manifest: bench/sim/splits/training/libero_spatial.json" in md
    assert md.count("| task | varies | change |") == 3
    r = CliRunner().invoke(app, ["analyze", "zeroshot", "-r", str(a), "--training", "libero_goal", "--out", "x"])
    assert r.exit_code == 2 and "libero_spatial" in r.output


def test_the_report_section_shows_the_table_and_the_published_results(tmp_path):
    from bench.report.gather import zeroshot_section
    from bench.analysis.zeroshot_table import write

    a = tmp_path / "dit4dit"
    _summary(a, "libero_spatial", 47, 500)
    _summary(a, "libero_spatial_zeroshot_quantity", 9, 200)
    write({"dit4dit": a}, "libero_spatial", tmp_path / "results" / "zeroshot" / "libero_spatial", {"command": "t"})
    sec = zeroshot_section(tmp_path / "results")
    ours, published = [b for b in sec.blocks if b["kind"] == "table"]
    quantity = next(r for r in ours["rows"] if r[1] == "zero-shot quantity")
    assert quantity[2] == "4.5 [2.4, 8.3]" and quantity[3] == "200" and quantity[4].startswith("4.9 [")
    assert ["dit4dit", "zero-shot object", "not run", "—", "—", "—"] in ours["rows"]
    assert "Stack Cup (4 cups instead of 3)" in str(published["rows"])
