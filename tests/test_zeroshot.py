"""Zero-shot splits: the suites are what their generator writes, no split shows what its training set holds,
result tables print the manifest, and every suite's tasks load on the real simulator."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.sim import splits
from bench.sim.libero import data_suites, zeroshot

SUITES = [zeroshot.suite_name(t, k) for t in zeroshot.TRAINING_SETS for k in zeroshot.KINDS]


def test_the_committed_suites_and_manifests_are_what_the_generator_writes(tmp_path):
    zeroshot.write(tmp_path / "suites", tmp_path / "training")
    for name in SUITES:
        for f in (tmp_path / "suites" / name).iterdir():
            assert f.read_text() == (data_suites.ROOT / name / f.name).read_text(), f"{name}/{f.name} is stale"
        assert len(json.loads((tmp_path / "suites" / name / "suite.json").read_text())["tasks"]) >= 10
    for t in zeroshot.TRAINING_SETS:
        assert (tmp_path / "training" / f"{t}.json").read_text() == (splits.TRAINING / f"{t}.json").read_text()


@pytest.mark.parametrize("suite", SUITES)
def test_no_zero_shot_suite_shows_what_its_training_set_holds(suite):
    assert splits.violations(suite) == []
    split = splits.split_of(suite)
    train = splits.training_manifest(split["trained_on"])
    for task, t in split["tasks"].items():  # the same facts, read off the BDDL file the simulator loads
        text = (data_suites.ROOT / suite / f"{task}.bddl").read_text()
        types = list(zeroshot.declared(text, "objects").values())
        if split["kind"] in ("object", "category"):
            assert t["change"]["to"] in types and t["change"]["to"] not in train["objects"]
        else:
            assert types.count(t["change"]["to"]) > train["objects"][t["change"]["to"]]["max_count"]


def test_a_split_that_reuses_a_training_object_is_caught(monkeypatch):
    real = splits.split_of("libero_spatial_zeroshot_object")
    task = next(iter(real["tasks"]))
    leaked = {**real, "tasks": {task: {**real["tasks"][task],
                                       "change": {**real["tasks"][task]["change"], "to": "akita_black_bowl"}}}}
    monkeypatch.setattr(splits, "split_of", lambda name: leaked)
    assert splits.violations("libero_spatial_zeroshot_object") == [f"{task}: akita_black_bowl is in the training set"]
    category = {**leaked, "kind": "category",
                "tasks": {task: {**real["tasks"][task], "change": {**real["tasks"][task]["change"],
                                                                   "to": "white_bowl", "to_category": "bowl"}}}}
    monkeypatch.setattr(splits, "split_of", lambda name: category)
    assert "category bowl" in splits.violations("x")[0]


def test_a_result_table_prints_the_split_it_was_measured_under(tmp_path):
    from bench.eval.results import write_summary

    rec = {"key": "libero_spatial_zeroshot_quantity/0/0", "suite": "libero_spatial_zeroshot_quantity", "task_id": 0,
           "task": "t", "language": "l", "init_id": 0, "seed": 7, "policy": "zero", "success": False, "steps": 3,
           "error": None, "error_kind": None, "protocol_hash": "x", "timing": {}, "final_state": "0"}
    write_summary(tmp_path, [rec], {"command": "test"})
    md = (tmp_path / "summary.md").read_text()
    assert "## Split" in md and "Zero-shot quantity split of libero_spatial" in md and "3 x akita_black_bowl" in md


def test_bench_list_suites_shows_the_splits(monkeypatch):
    from typer.testing import CliRunner

    from bench.cli import app
    from bench.cli.common import console

    monkeypatch.setattr(console, "_width", 400)  # one line per suite
    out = CliRunner().invoke(app, ["list", "suites"]).output
    assert "quantity of libero_object" in out and "category of libero_spatial" in out


@pytest.mark.parametrize("suite", SUITES)
def test_every_task_loads_from_its_committed_initial_states_on_the_real_simulator(suite, gl):
    """Each task of the suite builds, resets to its first committed initial state, and steps; every committed
    state was checked valid (no interpenetration, at rest) when it was made."""
    from bench.sim.libero.env import LiberoSim
    from bench.sim.suites import get_suite

    s = get_suite(suite)
    states = data_suites.init_states(suite.removeprefix(""))
    report = json.loads(data_suites.init_states_path(suite).with_suffix(".json").read_text())
    task = s.task(0)
    assert len(states[task.name]) >= 10 and task.name in report["tasks"]
    sim = LiberoSim(task, s.protocol)
    try:
        sim.reset_to(states[task.name][0], seed=0)
        for _ in range(5):
            sim.step(np.asarray(s.protocol.wait_action))
        objects = zeroshot.declared(open(task.env_id).read(), "objects")
        assert set(objects) <= set(sim.env.env.objects_dict)  # the changed objects are in the scene
    finally:
        sim.close()


@pytest.mark.parametrize("suite", SUITES + ["gr1_tabletop_proxy"])
def test_every_tasks_initial_states_were_made_from_its_bddl_file_as_committed(suite):
    """States of an edited BDDL problem are stale: the report beside them names the file's digest."""
    from bench.sim.libero.init_states import bddl_digest
    from bench.sim.suites import get_suite

    report = json.loads(data_suites.init_states_path(suite).with_suffix(".json").read_text())
    states = data_suites.init_states(suite)
    s = get_suite(suite)
    for task in s.tasks():
        assert len(states[task.name]) >= s.episodes_per_task, task.name
        assert report["tasks"][task.name]["bddl_sha256"] == bddl_digest(task.env_id), task.name
