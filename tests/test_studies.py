"""Every committed result is a study: the committed tables equal what their committed records give, the plan
says they are up to date, and an edited summary is caught by both."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tree(tmp_path) -> Path:
    """A copy of the committed results (the studies read results/ relative to the working folder), beside the
    package's bundled checkpoints (their inputs)."""
    shutil.copytree(ROOT / "results", tmp_path / "results")
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "checkpoints").symlink_to(ROOT / "bench" / "checkpoints")
    return tmp_path


def test_every_committed_table_equals_what_its_records_give_and_is_locked():
    from bench.studies import check, plan, studies

    import os

    here = os.getcwd()
    os.chdir(ROOT)
    try:
        found = studies()
        diffs = check(found, log=lambda _: None)
        states = {s.study.name: s.state for s in plan(found)}
    finally:
        os.chdir(here)
    assert len(diffs) >= 60 and not {k: v for k, v in diffs.items() if v}
    built = {s.name for s in found if any(Path(o).exists() for o in s.outputs)}  # not built yet: "missing"
    assert {states[n] for n in built} == {"up to date"}, {k: v for k, v in states.items() if v != "up to date"}
    names = [s.name for s in found]
    assert len(names) == len(set(names)), "a study is declared twice"
    lock = json.loads((ROOT / "results" / "studies.lock.json").read_text())
    absolute = [p for e in lock.values() for p in (*e["inputs"], *e["outputs"]) if Path(p).is_absolute()]
    assert not absolute, f"the lock must name files from the checkout's root, not this machine's: {absolute[:3]}"


def test_an_edited_summary_fails_the_check_and_shows_as_stale(tree, bench_cmd):
    summary = tree / "results" / "groot" / "libero_spatial_summary.json"
    data = json.loads(summary.read_text())
    data["rows"][0]["successes"] += 1
    summary.write_text(json.dumps(data, indent=2))
    done = subprocess.run([*bench_cmd, "results", "--check", "--kind", "evaluation"], cwd=tree, capture_output=True,
                          text=True)
    assert done.returncode == 1
    assert "evaluations/groot/libero_spatial" in done.stderr and "successes" in done.stderr
    plan = subprocess.run([*bench_cmd, "results", "--plan", "--json"], cwd=tree, capture_output=True, text=True)
    rows = {r["study"]: r for r in json.loads(plan.stdout)}
    assert rows["evaluations/groot/libero_spatial"]["state"] == "stale"
    assert "output edited" in rows["evaluations/groot/libero_spatial"]["why"]
    assert rows["evaluations/flare/libero_spatial"]["state"] == "up to date"


def test_results_names_a_bad_study_and_a_missing_action(bench_cmd):
    done = subprocess.run([*bench_cmd, "results", "baselines/libero_spatial_comparisn"], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 2 and "baselines/libero_spatial_comparison" in " ".join(done.stderr.split())
    done = subprocess.run([*bench_cmd, "results"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and "--plan" in done.stderr


def test_a_comparison_rebuilds_to_the_committed_numbers(tree):
    import os

    import pandas as pd

    from bench.studies import studies

    here = os.getcwd()
    os.chdir(tree)
    try:
        study = next(s for s in studies() if s.name == "baselines/libero_spatial_groot_vs_flare")
        committed = pd.read_csv("results/baselines/libero_spatial_groot_vs_flare.csv")
        Path("results/baselines/libero_spatial_groot_vs_flare.csv").unlink()
        study.build(study, lambda _: None)
        rebuilt = pd.read_csv("results/baselines/libero_spatial_groot_vs_flare.csv")
    finally:
        os.chdir(here)
    pd.testing.assert_frame_equal(rebuilt, committed)


def test_every_committed_result_file_belongs_to_a_declared_study():
    """Declared once: a file under results/ is some study's output or input (or prose, or an ablation score)."""
    import os

    from bench.studies import LOCK, studies
    from bench.studies.catalog import NOTES

    here = os.getcwd()
    os.chdir(ROOT)
    try:
        owned = {p for s in studies() for p in (*s.outputs, *s.inputs)}
        files = [str(p) for p in Path("results").rglob("*") if p.is_file()]
    finally:
        os.chdir(here)
    stray = [f for f in files if f not in owned and not any(f.startswith(o + "/") for o in owned)
             and f not in NOTES and f != str(LOCK) and not f.startswith("results/ablations/scores/")]
    assert not stray, f"files no study declares: {stray}"


def test_the_data_fraction_table_is_recomputed_from_its_committed_scores(tmp_path):
    import pandas as pd

    from bench.studies.catalog import recompute_ablation_from_scores

    csv, scores = ROOT / "results/ablations/data_fraction.csv", ROOT / "results/ablations/scores"
    assert recompute_ablation_from_scores(csv, scores) == []
    table = pd.read_csv(csv)
    table.loc[0, "successes"] += 1
    table.to_csv(tmp_path / "data_fraction.csv", index=False)  # an edited copy: the name says which ablation
    diffs = recompute_ablation_from_scores(tmp_path / "data_fraction.csv", scores)
    assert len(diffs) == 1 and "successes" in diffs[0] and "recomputed" in diffs[0], diffs
