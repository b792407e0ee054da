"""Our own LIBERO suites: the GR1 tabletop proxy's files, and the validity check of initial states."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from bench.sim.libero import data_suites, gr1_proxy
from bench.sim.suites import get_suite

PUBLISHED = Path(__file__).resolve().parent.parent / "bench" / "published" / "gr1_published.csv"


def test_the_proxy_mirrors_the_24_official_gr1_tasks_and_says_it_is_a_proxy():
    with open(PUBLISHED) as f:
        official = [r["task"] for r in csv.DictReader(f) if r["task"] != "AVERAGE"]
    meta = json.loads((data_suites.ROOT / gr1_proxy.NAME / "suite.json").read_text())
    assert [t["mirrors"] for t in meta["tasks"]] == official
    suite = get_suite("gr1_tabletop_proxy")
    assert "PROXY" in suite.description
    tasks = suite.tasks()
    assert len(tasks) == 24 and all("proxy" in t.tags for t in tasks)
    assert all(Path(t.env_id).is_file() and t.backend == "libero" for t in tasks)


def test_the_committed_bddl_files_are_what_the_generator_writes(tmp_path):
    out = gr1_proxy.write(tmp_path)
    ours = data_suites.ROOT / gr1_proxy.NAME
    for f in sorted(out.iterdir()):
        assert f.read_text() == (ours / f.name).read_text(), f"{f.name} differs: rerun python -m bench.sim.libero.gr1_proxy"


def test_the_generator_refuses_an_object_whose_model_file_is_not_installed(tmp_path, monkeypatch):
    # LIBERO registers a `mayo` class, but the asset package ships no mayo.xml: the env would fail at reset
    assert gr1_proxy.missing_assets() == []
    monkeypatch.setattr(gr1_proxy, "PAIRS", gr1_proxy.PAIRS[:-1] + [("Tray", "Plate", "mayo", "ketchup")])
    with pytest.raises(ValueError, match="mayo"):
        gr1_proxy.write(tmp_path)
    assert not (tmp_path / gr1_proxy.NAME).exists()


def test_initial_state_check_rejects_what_is_not_physically_valid(gl):
    from libero.libero.envs import OffScreenRenderEnv

    from bench.sim.libero.init_states import check_state

    suite = get_suite("gr1_tabletop_proxy")
    task = suite.task(18)  # plate to plate
    wait = np.asarray(suite.protocol.wait_action)
    with contextlib.redirect_stdout(io.StringIO()):
        env = OffScreenRenderEnv(bddl_file_name=task.env_id, camera_heights=32, camera_widths=32, use_camera_obs=False)
    try:
        env.seed(0)
        with contextlib.redirect_stdout(io.StringIO()):
            env.reset()
        start = np.array(env.get_sim_state())
        assert check_state(env, suite.protocol.wait_steps, wait) is None
        inner = env.env

        def move(obj: str, xyz) -> None:
            env.set_init_state(start)
            joint = inner.objects_dict[obj].joints[-1]
            qpos = inner.sim.data.get_joint_qpos(joint).copy()
            qpos[:3] = xyz
            inner.sim.data.set_joint_qpos(joint, qpos)
            inner.sim.forward()

        plate = inner.sim.data.body_xpos[inner.sim.model.body_name2id(inner.objects_dict["plate_2"].root_body)]
        move("orange_juice_1", plate + np.array([0.0, 0.0, 0.0]))  # sunk into the plate
        assert check_state(env, suite.protocol.wait_steps, wait).startswith("interpenetration")
        move("orange_juice_1", np.array([0.0, 1.5, 1.0]))  # beyond the table's edge
        assert check_state(env, suite.protocol.wait_steps, wait).startswith("fell off the table")
    finally:
        env.close()
