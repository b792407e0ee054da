import json
import warnings

import pandas as pd
import pytest

from bench.core.records import EpisodeRecord, append_record, finished_keys, read_records
from bench.eval.results import aggregate, wilson, write_summary


def rec(task_id, init_id, success, error_kind=None, suite="libero_spatial"):
    return EpisodeRecord(key=f"{suite}/{task_id}/{init_id}", suite=suite, task_id=task_id, task=f"task{task_id}",
                         language="l", init_id=init_id, seed=7, policy="p", checkpoint=None, checkpoint_hash=None,
                         protocol_hash="h", success=success, steps=10, wall_time_s=1.0,
                         error="boom" if error_kind else None, error_kind=error_kind)


def test_wilson_matches_known_values():
    lo, hi = wilson(0, 10)
    assert lo == pytest.approx(0.0, abs=1e-9) and hi == pytest.approx(0.2775, abs=1e-3)
    lo, hi = wilson(45, 50)
    assert lo == pytest.approx(0.7864, abs=1e-3) and hi == pytest.approx(0.9565, abs=1e-3)


def test_records_roundtrip_skip_truncated_line_and_resume_keys(tmp_path):
    path = tmp_path / "episodes.jsonl"
    append_record(path, rec(0, 0, True))
    append_record(path, rec(0, 1, False, error_kind="worker_died"))
    append_record(path, rec(0, 2, False, error_kind="policy"))
    with open(path, "a") as f:
        f.write('{"key": "libero_spatial/0/3", "succ')  # a crash mid-write
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        records = read_records(path)
    assert len(records) == 3 and any("malformed" in str(x.message) for x in w)
    # worker deaths are retried on resume, policy failures are not
    assert finished_keys(records) == {"libero_spatial/0/0", "libero_spatial/0/2"}


def test_aggregate_counts_each_episode_once(tmp_path):
    records = [rec(0, 0, False, error_kind="timeout"), rec(0, 0, True), rec(0, 1, False),
               rec(1, 0, True), rec(1, 1, False, error_kind="policy")]
    records = [json.loads(r.to_json()) for r in records]
    table = aggregate(records)
    t0 = table[(table.task_id == 0)].iloc[0]
    assert t0.episodes == 2 and t0.successes == 1 and t0.errors == 0
    t1 = table[(table.task_id == 1)].iloc[0]
    assert t1.errors == 1 and t1.success_rate == 0.5
    allrow = table[table.task == "ALL"].iloc[0]
    assert allrow.episodes == 4 and allrow.successes == 2
    records.append(json.loads(rec(0, 0, True, suite="libero_goal").to_json()))
    assert "OVERALL" in set(aggregate(records).suite)
    write_summary(tmp_path, records, {"command": "bench run"})
    for ext in ("md", "csv", "json"):
        assert (tmp_path / f"summary.{ext}").stat().st_size > 0
    assert (tmp_path / "summary.png").read_bytes()[:4] == b"\x89PNG"
    assert "95% CI" in (tmp_path / "summary.md").read_text()
    payload = json.loads((tmp_path / "summary.json").read_text())
    assert payload["provenance"]["command"] == "bench run" and len(payload["rows"]) == 6
    assert payload["rows"][0]["task_id"] == 0 and isinstance(payload["rows"][0]["task_id"], int)


def test_summary_provenance_is_that_of_the_invocations(tmp_path):
    from bench.eval.results import record_invocation, summarize_dir

    append_record(tmp_path / "episodes.jsonl", rec(0, 0, True))
    record_invocation(tmp_path, {"command": "bench run A", "git": {"commit": "aaa", "dirty": False}})
    record_invocation(tmp_path, {"command": "bench run A --resume", "git": {"commit": "bbb", "dirty": False}})
    summarize_dir(tmp_path, {"command": "bench summarize", "git": {"commit": "ccc", "dirty": True}})
    prov = json.loads((tmp_path / "summary.json").read_text())["provenance"]
    assert prov["git"]["commit"] == "aaa" and [r["git"]["commit"] for r in prov["invocations"]] == ["aaa", "bbb"]
    assert prov["summarized"]["command"] == "bench summarize"


def test_bench_summarize_keeps_the_provenance_of_the_run(tmp_path):
    """`bench summarize` recomputes the tables and plot; the provenance stays that of the command that ran."""
    from typer.testing import CliRunner

    from bench.cli import app
    from bench.eval.results import record_invocation

    record_invocation(tmp_path, {"command": "bench run --policy p", "git": {"commit": "aaa", "dirty": False}})
    for r in (rec(0, 0, True), rec(0, 1, False)):
        append_record(tmp_path / "episodes.jsonl", r)
    result = CliRunner().invoke(app, ["summarize", str(tmp_path)])
    assert result.exit_code == 0, result.output
    prov = json.loads((tmp_path / "summary.json").read_text())["provenance"]
    assert prov["command"] == "bench run --policy p" and prov["summarized"]["command"].startswith("bench")
    assert (tmp_path / "summary.png").stat().st_size > 5000


def _published(tmp_path, name, outcomes, protocol_hash="h"):
    """A summary.json like `bench run --publish results/<name>` writes; outcomes[task] = successes of 50."""
    from bench.eval.results import record_invocation, summarize_dir

    run = tmp_path / name
    record_invocation(run, {"command": f"bench run --policy {name}", "protocol_hash": protocol_hash})
    for task_id, k in enumerate(outcomes):
        for i in range(50):
            append_record(run / "episodes.jsonl", rec(task_id, i, i < k))
    summarize_dir(run, {"command": "bench summarize"})
    return run / "summary.json"


def test_compare_sets_runs_side_by_side_with_a_one_sided_test(tmp_path):
    from typer.testing import CliRunner

    from bench.cli import app

    a, b = _published(tmp_path, "dit4dit", [4, 10]), _published(tmp_path, "random", [0, 0])
    out = tmp_path / "cmp" / "spatial"
    result = CliRunner().invoke(app, ["compare", str(a), str(b), "--out", str(out)])
    assert result.exit_code == 0, result.output
    import pandas as pd

    table = pd.read_csv(out.with_suffix(".csv"))
    assert list(table["task"]) == ["task0", "task1", "ALL"]
    # one-sided Fisher exact: 4/50 vs 0/50 is not significant at 5%, 10/50 vs 0/50 and 14/100 vs 0/100 are
    p = dict(zip(table["task"], table["vs_random:fisher_p"]))
    assert p["task0"] == pytest.approx(0.0587, abs=1e-3) and p["task1"] < 1e-3 and p["ALL"] < 1e-4
    assert table["dit4dit:successes"].tolist() == [4, 10, 14] and table["random:ci_high"].iloc[0] > 0.05
    # the same episodes ran in both, so they pair: McNemar 4 vs 0 discordant is p = 0.125; 10 vs 0 is 0.002,
    # which Holm doubles over the two tasks; the overall row is unadjusted
    assert table["vs_random:pairs"].tolist() == [50, 50, 100]
    assert table["vs_random:mcnemar_p"].tolist() == pytest.approx([0.125, 2 * 0.5**10, 2 * 0.5**14])
    assert table["vs_random:holm_p"].tolist() == pytest.approx([0.125, 4 * 0.5**10, 2 * 0.5**14])
    assert table["vs_random:significant"].tolist() == [False, True, True]
    assert table["vs_random:diff"].tolist() == pytest.approx([0.08, 0.2, 0.14])
    md = out.with_suffix(".md").read_text()
    assert "Fisher p(dit4dit > random)" in md and "bench run --policy random" in md and "dit4dit better" in md
    assert "at commit(s)" in md and "\"versions\"" in md  # where the sources ran; the comparison's own provenance
    assert out.with_suffix(".png").stat().st_size > 5000
    # reversed, the same data support nothing
    result = CliRunner().invoke(app, ["compare", str(b), str(a), "--out", str(out)])
    table = pd.read_csv(out.with_suffix(".csv"))
    assert table["vs_dit4dit:fisher_p"].min() == pytest.approx(1.0) and table["vs_dit4dit:diff"].max() < 0


def test_compare_refuses_other_protocols_and_bad_files(tmp_path):
    from typer.testing import CliRunner

    from bench.cli import app

    a, b = _published(tmp_path, "x", [1], protocol_hash="h1"), _published(tmp_path, "y", [1], protocol_hash="h2")
    result = CliRunner().invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "different protocols" in " ".join(result.output.split()) and "h1" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    result = CliRunner().invoke(app, ["compare", str(a), str(bad), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "bad.json: not a run summary.json" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["compare", str(a), str(a), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "labels must differ" in " ".join(result.output.split())


def test_a_run_dir_refuses_episodes_of_another_checkpoint(tmp_path):
    """Resuming into a directory of another checkpoint's episodes (or of records from before hashes
    were kept) must fail and say what differs, not mix two models in one summary."""
    from bench.eval.runner import RunConfig, RunDirMismatch, _check_run_dir
    from bench.sim.suites import get_suite

    suite = get_suite("libero_spatial")
    cfg = RunConfig(suite=suite, policy_name="dit4dit", task_ids=[0], out=tmp_path, protocol=suite.protocol)
    old = {"suite": "libero_spatial", "policy": "dit4dit", "protocol_hash": suite.protocol.hash(),
           "checkpoint_hash": None}
    _check_run_dir(cfg, [old], None)  # same everything: fine
    with pytest.raises(RunDirMismatch, match="checkpoint_hash=None.*before checkpoint hashes.*another --out"):
        _check_run_dir(cfg, [old], "287d24f14b128a0f")
    with pytest.raises(RunDirMismatch, match="checkpoint_hash='aaaa'.*another --out"):
        _check_run_dir(cfg, [{**old, "checkpoint_hash": "aaaa"}], "287d24f14b128a0f")
    # one math mode per run dir (records from before math was kept ran native)
    cfg.math = "portable:12345678"
    with pytest.raises(RunDirMismatch, match="native float math.*--math native"):
        _check_run_dir(cfg, [old], None)
    _check_run_dir(cfg, [{**old, "math": "portable:87654321"}], None)  # the same mode on another machine: fine


def test_records_show_paths_the_same_on_every_machine(tmp_path, monkeypatch):
    """Project files project-relative, home files under ~ (the default demo folder), others absolute."""
    from pathlib import Path

    from bench.core.provenance import shown_path

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    demos = tmp_path / "home" / ".cache" / "dit4dit-bench" / "demos" / "libero_object_128.hdf5"
    assert shown_path(demos) == "~/.cache/dit4dit-bench/demos/libero_object_128.hdf5"
    assert shown_path(Path(__file__)) == "tests/test_results.py"
    assert shown_path(tmp_path / "elsewhere.hdf5") == (tmp_path / "elsewhere.hdf5").resolve().as_posix()
    assert shown_path(None) is None


def test_compare_warns_when_the_runs_float_math_differs(tmp_path):
    from typer.testing import CliRunner

    from bench.cli import app
    from bench.eval.results import record_invocation, summarize_dir

    def published(name, math):
        run = tmp_path / name
        record_invocation(run, {"command": f"bench run {name}", "protocol_hash": "h", "math": math})
        append_record(run / "episodes.jsonl", rec(0, 0, True))
        summarize_dir(run, {"command": "bench summarize"})
        return run / "summary.json"

    portable = {"id": "portable:11111111", "mode": "portable", "cpu": {"model": "A", "isa": ["avx2"]}}
    native = {"id": "native:22222222", "mode": "native", "cpu": {"model": "B", "isa": ["avx2", "avx512f"]}}
    a, b, c = published("a", portable), published("b", native), published("c", portable)
    out = tmp_path / "cmp"
    result = CliRunner().invoke(app, ["compare", str(a), str(b), "--out", str(out)])
    assert result.exit_code == 0 and "float math differs" in " ".join(result.output.split())
    md = out.with_suffix(".md").read_text()
    assert "## Float math" in md and "native on B (avx2, avx512f)" in md
    result = CliRunner().invoke(app, ["compare", str(a), str(c), "--out", str(out)])
    assert "float math differs" not in " ".join(result.output.split())
    assert "Float math: the same in every run." in out.with_suffix(".md").read_text()


def test_curves_sets_training_runs_side_by_side(tmp_path):
    from typer.testing import CliRunner

    from bench.cli import app

    for name, scale in (("a", 1.0), ("b", 2.0)):
        rows = ["step,loss,action,lr_action,grad_norm,samples_per_s,elapsed_s"]
        rows += [f"{s},{scale / s},{scale / s},1e-4,1.0,10.0,{s * 0.5}" for s in range(10, 310, 10)]
        (tmp_path / name).mkdir()
        (tmp_path / name / "losses.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "cmp" / "curves"
    result = CliRunner().invoke(app, ["curves", str(tmp_path / "a" / "losses.csv"), str(tmp_path / "b" / "losses.csv"),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out.with_suffix(".csv"))
    assert set(table["label"]) == {"a", "b"} and table["hours"].max() == pytest.approx(150 / 3600)
    assert "| a " in out.with_suffix(".md").read_text() and out.with_suffix(".png").stat().st_size > 5000
    result = CliRunner().invoke(app, ["curves", str(tmp_path / "a" / "losses.csv"), "--loss", "video",
                                      "--out", str(out)])
    assert result.exit_code == 2 and "no 'video' column" in " ".join(result.output.split()) and "action" in " ".join(result.output.split())


def test_failures_are_explained_in_the_policys_own_words():
    from bench.eval.results import failure_notes

    worded = json.loads(rec(0, 0, False).to_json())
    worded["policy_notes"] = {"where": "lost sight of the bowl"}
    mute = json.loads(rec(0, 1, False).to_json())  # notes, but no sentence in them
    mute["policy_notes"] = {"subgoals": ["on bowl_1 plate_1"], "subgoals_done": 1}
    ok = json.loads(rec(0, 2, True).to_json())
    ok["policy_notes"] = {"where": "never quoted: it succeeded"}
    md = failure_notes([worded, mute, ok])
    assert "lost sight of the bowl x1" in md and "notes say nothing of where it stood x1" in md
    assert "never quoted" not in md and "| 0 |" in md and "| 2 |" in md


def test_curves_say_what_the_runs_were_trained_on_and_what_differs(tmp_path):
    from bench.train.curves import training_facts

    def run(name, params, steps=3000, data="c6cb"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "losses.csv").write_text("step,action\n10,1.0\n")
        cfg = {"model": name, "parameters": params, "data_fingerprint": data, "num_demos": 500,
               "train": {"steps": steps, "batch_size": 16, "seed": 0, "demo_fraction": 1.0, "precision": "fp32",
                         "init_from": None}}
        (tmp_path / name / "train_config.json").write_text(json.dumps(cfg))
        return tmp_path / name / "losses.csv"

    a, b = run("a", 1_000_000), run("b", 1_050_000)
    facts, notes = training_facts([a, b], ["a", "b"])
    assert list(facts["trainable parameters"]) == [1_000_000, 1_050_000]
    assert notes == [n for n in notes if n.startswith("Every run here saw the same demos")] and len(notes) == 1
    c = run("c", 1_200_000, steps=1000, data="ffff")
    _, notes = training_facts([a, c], ["a", "c"])
    text = " ".join(notes)
    assert "steps differs: a 3000, c 1000" in text and "data differs" in text and "+20% of a's" in text
    assert "Every run" not in text
