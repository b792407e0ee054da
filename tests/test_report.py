"""`bench report` from the committed results: the PDF's text carries the results files' numbers, every page
renders, and a broken results file is named while the rest of the report builds."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

RESULTS = Path("results")
pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
                                reason="needs poppler-utils (pdftotext, pdftoppm); .ci/run installs it")


def _text(pdf: Path) -> str:
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(out.split())


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from typer.testing import CliRunner

    from bench.cli import app

    out = tmp_path_factory.mktemp("report") / "report.pdf"
    result = CliRunner().invoke(app, ["report", "--results", str(RESULTS), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_the_pdf_carries_the_results_numbers(built):
    from bench.report.gather import pct_ci, policy_summaries

    text = _text(built)
    checked = 0
    for suite in ("libero_spatial", "libero_object", "libero_goal", "libero_10"):
        for label, path in policy_summaries(RESULTS, suite).items():
            for row in json.loads(path.read_text())["rows"]:
                assert pct_ci(row) in text, f"{path}: {row['task']} {pct_ci(row)} is not in the report"
                checked += 1
    assert checked >= 40
    published = pd.read_csv("bench/published/libero_published.csv", comment="#")
    for value in published["libero_spatial"]:
        assert str(value) in text
    # comparisons (one B or several): every row's paired difference and its interval
    compared = 0
    for csv in RESULTS.glob("**/*.csv"):
        if not any(c.startswith("vs_") for c in pd.read_csv(csv, nrows=0).columns):
            continue
        table = pd.read_csv(csv)
        for b in [c[3:-len(":diff")] for c in table.columns if c.startswith("vs_") and c.endswith(":diff")]:
            for _, r in table.dropna(subset=[f"vs_{b}:diff"]).iterrows():
                d, lo, hi = (100 * r[f"vs_{b}:{k}"] for k in ("diff", "diff_low", "diff_high"))
                assert f"{d:+.1f} [{lo:+.1f}, {hi:+.1f}]" in text, f"{csv}: {b} {r['task']}"
                compared += 1
    assert compared > 0
    # training: every committed run (a model's LIBERO run and its GR1-proxy run) under its own name
    for cfg in RESULTS.glob("**/train_config.json"):
        if (cfg.parent / "losses.png").exists():
            assert f"{cfg.parent.relative_to(RESULTS).as_posix()}: training losses" in text, cfg
    # demos replayed, throughput and latency
    for path in (RESULTS / "demos").glob("*_summary.json"):
        all_row = json.loads(path.read_text())["rows"][-1]
        assert f"{all_row['successes']}/{all_row['episodes']}" in text
    eval_perf = json.loads((RESULTS / "perf" / "eval.json").read_text())
    assert f"{eval_perf['ratio']:.2f}x" in text
    math = json.loads((RESULTS / "perf" / "math.json").read_text())
    assert f"{math['chunk_latency_ratio_portable_over_native']:.2f}x" in text
    micro = RESULTS / "perf" / "micro.json"
    if micro.exists():
        for bench in json.loads(micro.read_text())["benchmarks"]:
            assert f"{1e3 * bench['stats']['median']:.1f}" in text, bench["name"]
    for section in ("LIBERO: success per task", "Not run yet, and why", "Appendix: provenance"):
        assert section in text
    assert (built.with_suffix(".md")).read_text().count("|") > 100  # the markdown twin has the tables too


def test_every_page_renders(built, tmp_path):
    result = subprocess.run(["pdftoppm", "-r", "40", "-png", str(built), str(tmp_path / "page")],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "Error" not in result.stderr, result.stderr
    pages = sorted(tmp_path.glob("page-*.png"))
    info = subprocess.run(["pdfinfo", str(built)], capture_output=True, text=True).stdout
    assert len(pages) == int(next(ln.split()[-1] for ln in info.splitlines() if ln.startswith("Pages:"))) >= 5
    assert all(p.stat().st_size > 2000 for p in pages)


def test_a_broken_results_file_is_named_and_the_rest_builds(tmp_path):
    from bench.report.build import build

    results = tmp_path / "results"
    shutil.copytree(RESULTS, results, ignore=shutil.ignore_patterns("*.jsonl", "videos"))
    perf = json.loads((results / "perf" / "eval.json").read_text())
    del perf["ratio"]
    (results / "perf" / "eval.json").write_text(json.dumps(perf))
    data = build(results, tmp_path / "r.pdf")
    broken = {x["what"]: x["error"] for x in data["not_built"]}
    assert "eval.json" in broken["Throughput and latency"] and "'ratio'" in broken["Throughput and latency"]
    assert any(s["title"].startswith("LIBERO") for s in data["sections"])
    text = _text(tmp_path / "r.pdf")
    assert "Not built: a results file is broken" in text and "'ratio'" in text


def test_ablation_and_baseline_results_enter_the_report(tmp_path):
    """An ablation table as `bench ablate` writes it (in place of the committed ones, so its numbers are the
    only ones) and a comparison of several policies as `bench compare` writes it get their sections."""
    from bench.report.build import build

    results = tmp_path / "results"
    shutil.copytree(RESULTS, results, ignore=shutil.ignore_patterns("*.jsonl", "videos", "ablations"))
    (results / "ablations").mkdir()
    rows = [{"ablation": "feature_layer", "model": "dit4dit", "value": v, "successes": k, "episodes": 50,
             "action_error": e, "action_error_low": e - 0.01, "action_error_high": e + 0.01}
            for v, k, e in ((1, 2, 0.2345), (3, 7, 0.1234))]
    pd.DataFrame(rows).to_csv(results / "ablations" / "feature_layer.csv", index=False)
    data = build(results, tmp_path / "r.pdf")
    assert not data["not_built"], data["not_built"]
    text = _text(tmp_path / "r.pdf")
    assert "Ablations" in text and "0.2345 [0.2245, 0.2445]" in text and "7/50" in text
    assert not any(x["what"] == "Ablations" for x in data["not_run"])


def test_not_run_waits_for_the_result_files_not_their_folders(tmp_path):
    """A folder holding something else (smoke ablations, the expert's proxy table) is not the result."""
    from bench.report.gather import not_run

    (tmp_path / "ablations" / "smoke").mkdir(parents=True)
    (tmp_path / "ablations" / "smoke" / "gradient.csv").write_text("model,value\n")
    (tmp_path / "gr1").mkdir()
    (tmp_path / "gr1" / "gr1_tabletop_proxy.json").write_text("{}")
    missing = {x["what"] for x in not_run(tmp_path)}
    assert {"Ablations", "RoboCasa GR1 proxy, trained models", "Zero-shot splits, trained models"} <= missing
    (tmp_path / "ablations" / "gradient.csv").write_text("model,value\n")
    (tmp_path / "groot").mkdir()
    (tmp_path / "groot" / "libero_spatial_zeroshot_object_summary.json").write_text("{}")
    missing = {x["what"] for x in not_run(tmp_path)}
    assert "Ablations" not in missing and "Zero-shot splits, trained models" not in missing
    assert "RoboCasa GR1 proxy, trained models" in missing
    assert "RoboCasa GR1, the real suite" in {x["what"] for x in not_run(RESULTS)}  # no assets here: never run
