"""RoboCasa GR1: the suite without its environment, the 29-d layout, and (slow) the real env in its own venv."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.sim.robocasa_gr1 import layout
from bench.sim.suites import get_suite

PUBLISHED = Path(__file__).resolve().parent.parent / "bench" / "published" / "gr1_published.csv"


def test_the_suite_lists_the_24_official_tasks_without_the_gr1_environment():
    code = ("import sys; from bench.sim.suites import get_suite; s = get_suite('robocasa_gr1'); "
            "print('\\n'.join(t.name for t in s.tasks())); "
            "assert not any(m.split('.')[0] in ('robosuite', 'robocasa_gr1', 'mujoco', 'libero') for m in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    with open(PUBLISHED) as f:
        official = [r["task"] for r in csv.DictReader(f) if r["task"] != "AVERAGE"]
    assert out == official and len(out) == 24
    tasks = get_suite("robocasa_gr1").tasks()
    assert sum("articulated" in t.tags for t in tasks) == 6 and sum("rearrangement" in t.tags for t in tasks) == 18
    assert all(t.env_id == f"gr1_unified/{t.name}_GR1ArmsAndWaistFourierHands_Env" for t in tasks)
    splitb = get_suite("robocasa_gr1_splitb").tasks()
    assert [t.name.replace("EvalPnPNovel", "PosttrainPnPNovel").replace("SplitB", "SplitA") for t in splitb] == official[6:]
    assert all("held-out-objects" in t.tags for t in splitb)


def test_the_protocol_is_the_published_one():
    p = get_suite("gr1").protocol
    assert (p.max_steps, p.executed_chunk, p.action_dim, p.resolution, p.render_size) == (720, 12, 29, 256, (1280, 800))
    assert get_suite("robocasa_gr1").episodes_per_task == 50
    assert p.hash() != get_suite("libero_spatial").protocol.hash()


def test_the_29d_layout_is_the_published_one():
    # DiT4DiT / GR00T: left_arm 7, right_arm 7, left_hand 6, right_hand 6, waist 3, in that order
    s = layout.slices()
    assert [(k, v.start, v.stop) for k, v in s.items()] == [
        ("left_arm", 0, 7), ("right_arm", 7, 14), ("left_hand", 14, 20), ("right_hand", 20, 26), ("waist", 26, 29)]
    vec = np.arange(29, dtype=np.float32)
    parts = layout.unpack(vec, "action")
    assert set(parts) == {"action.left_arm", "action.right_arm", "action.left_hand", "action.right_hand",
                          "action.waist"}
    assert parts["action.waist"].tolist() == [26, 27, 28] and parts["action.left_hand"].tolist() == list(range(14, 20))
    obs = {k.replace("action.", "state."): v for k, v in parts.items()} | {"video.ego_view": np.zeros((2, 2, 3))}
    assert np.array_equal(layout.pack(obs, "state"), vec)
    chunk = np.arange(16 * 29).reshape(16, 29)
    assert layout.unpack(chunk, "action")["action.right_arm"].shape == (16, 7)
    with pytest.raises(ValueError, match="29 values"):
        layout.unpack(np.zeros(28), "action")
    with pytest.raises(KeyError, match="state.waist missing"):
        layout.pack({k: v for k, v in obs.items() if k != "state.waist"}, "state")
    with pytest.raises(ValueError, match="has 6 values"):
        layout.pack(dict(obs, **{"state.left_arm": np.zeros(6)}), "state")


# ----------------------------------------------------------------------------- the real env, its own venv
@pytest.fixture(scope="module")
def gr1_env(tmp_path_factory):
    """`bench setup robocasa-gr1 --standin` into a fresh BENCH_HOME: a venv with praxis-robocasa-gr1 (numpy 2,
    MuJoCo 3.3; about a minute of installing) and a generated stand-in asset pack.
    BENCH_TEST_GR1_VENV reuses an existing venv (installs are then a no-op)."""
    import os

    home = tmp_path_factory.mktemp("bench_home")
    env = dict(os.environ, BENCH_HOME=str(home))
    cmd = [str(Path(sys.executable).parent / "bench"), "setup", "robocasa-gr1", "--standin"]
    if os.environ.get("BENCH_TEST_GR1_VENV"):
        cmd += ["--venv", os.environ["BENCH_TEST_GR1_VENV"]]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout + r.stderr
    return env


def _run(bench_cmd, env, out, workers):
    cmd = [*bench_cmd, "run", "--suite", "robocasa_gr1", "--policy", "hold", "--tasks", "2,15", "--episodes", "1",
           "--max-steps", "6", "--workers", str(workers), "--out", str(out)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    from bench.core.records import read_records

    return {rec["key"]: rec for rec in read_records(out / "episodes.jsonl")}, r.stdout


@pytest.mark.slow
def test_gr1_tasks_run_in_their_own_environment_and_rerun_exactly(gr1_env, bench_cmd, tmp_path, gl):
    """One articulated and one rearrangement official task construct (on stand-in assets), reset, step with
    29-d actions, and report their success flag through `bench run`, in a worker whose numpy is not ours;
    a rerun with another worker count reproduces every episode's final simulator state."""
    first, stdout = _run(bench_cmd, gr1_env, tmp_path / "a", workers=1)
    again, _ = _run(bench_cmd, gr1_env, tmp_path / "b", workers=2)
    assert set(first) == {"robocasa_gr1/2/0", "robocasa_gr1/15/0"}
    for key, rec in first.items():
        assert rec["error"] is None and rec["steps"] == 6 and rec["success"] is False
        sim = rec["sim"]
        assert sim["backend"] == "robocasa_gr1" and sim["versions"]["mujoco"] == "3.3.1"
        assert sim["versions"]["numpy"].startswith("2.") and np.__version__.startswith("1.")  # two environments
        assert sim["versions"]["assets"] == "standin"
        assert rec["final_state"] == again[key]["final_state"]
    assert first["robocasa_gr1/2/0"]["final_state"] != first["robocasa_gr1/15/0"]["final_state"]
    assert "Stand-in assets" in stdout and "Stand-in assets" in (tmp_path / "a" / "summary.md").read_text()


def test_gr1_without_its_environment_is_a_clear_error(bench_cmd, tmp_path):
    import os

    env = dict(os.environ, BENCH_HOME=str(tmp_path / "empty"))
    r = subprocess.run([*bench_cmd, "run", "--suite", "robocasa_gr1", "--policy", "hold", "--episodes", "1",
                        "--tasks", "0", "--out", str(tmp_path / "run")], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "bench setup robocasa-gr1" in r.stderr and "Traceback" not in r.stderr + r.stdout
