"""The runner on the real LIBERO simulator: records, faults, resume, replay, rendering.

Episodes are cut short (--max-steps) to keep the suite fast; every test uses
libero_spatial task 0, whose env takes about 7 s to build.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from bench.policies.builtin import ZeroPolicy
from bench.policies.contract import PolicySpec, SpecMismatch
from bench.core.records import read_records
from bench.eval.runner import RunConfig, Runner
from bench.sim.suites import get_suite

SUITE = get_suite("libero_spatial")


def cfg(tmp_path, max_steps=16, episodes=2, workers=2, **kw):
    return RunConfig(suite=SUITE, policy_name=kw.pop("policy_name", "test"), task_ids=kw.pop("task_ids", [0]),
                     out=tmp_path, episodes=episodes, workers=workers,
                     protocol=SUITE.protocol.replace(max_steps=max_steps), **kw)


class FlakyPolicy(ZeroPolicy):
    """Returns NaN for init state 0 and a wrong shape for init state 1; fine otherwise."""

    def act(self, batch):
        out = super().act(batch)
        if any(k.endswith("/1") for k in batch.episode_keys):
            return out[:, :4]  # wrong shape: every episode in this call fails
        for i, k in enumerate(batch.episode_keys):
            if k.endswith("/0"):
                out[i, 2, 0] = np.nan
        return out


def test_bad_policy_output_fails_only_those_episodes(tmp_path, gl):
    Runner(cfg(tmp_path, episodes=3, workers=1), FlakyPolicy()).run()
    recs = {r["init_id"]: r for r in read_records(tmp_path / "episodes.jsonl")}
    assert set(recs) == {0, 1, 2}
    assert recs[0]["error_kind"] == "policy" and "non-finite" in recs[0]["error"] and not recs[0]["success"]
    assert recs[1]["error_kind"] == "policy" and "shape" in recs[1]["error"]
    assert recs[2]["error"] is None and recs[2]["steps"] == 16  # the run went on
    # each record names the simulator stack its worker ran, as the worker reported it
    from importlib import metadata

    assert recs[2]["sim"]["backend"] == "libero"
    assert recs[2]["sim"]["versions"]["mujoco"] == metadata.version("mujoco")


def test_spec_mismatch_fails_before_any_step(tmp_path):
    class WantsFrontview(ZeroPolicy):
        spec = PolicySpec(cameras=("frontview",), state_layout=ZeroPolicy.spec.state_layout, action_dim=7,
                          action_convention=ZeroPolicy.spec.action_convention, chunk_length=8)

    with pytest.raises(SpecMismatch, match="frontview"):
        Runner(cfg(tmp_path), WantsFrontview()).run()
    assert not (tmp_path / "episodes.jsonl").exists()


def test_killed_worker_is_replaced_and_its_episode_carries_the_error(tmp_path, gl):
    class Killer(ZeroPolicy):
        calls = 0

        def act(self, batch):
            Killer.calls += 1
            if Killer.calls == 3:  # midway through the first episodes
                os.kill(runner.workers[0].proc.pid, signal.SIGKILL)
            return super().act(batch)

    runner = Runner(cfg(tmp_path, episodes=3, workers=2), Killer())
    runner.run()
    recs = read_records(tmp_path / "episodes.jsonl")
    assert sorted(r["init_id"] for r in recs) == [0, 1, 2]
    died = [r for r in recs if r["error_kind"] == "worker_died"]
    assert len(died) == 1 and "exit code -9" in died[0]["error"] and died[0]["worker"] == 0
    assert all(r["error"] is None and r["steps"] == 16 for r in recs if r not in died)


def test_replay_reproduces_a_recorded_demo(tmp_path, gl):
    """Record random actions from init state 3 with the same env wrapper, write the
    LIBERO-layout file, replay it through the runner: the end effector follows."""
    from bench.demos.libero_hdf5 import Demo, read_demos, write_demos
    from bench.policies.replay import ReplayPolicy
    from bench.sim.libero.env import LiberoSim

    task = SUITE.task(0)
    sim = LiberoSim(task, SUITE.protocol)
    init = SUITE.initial_conditions(0)[3]
    sim.reset_to(init, seed=7)
    rng = np.random.default_rng(0)
    actions, states, ee = [], [], []
    for _ in range(24):
        a = np.concatenate([rng.uniform(-0.6, 0.6, 6), [rng.choice([-1.0, 1.0])]])
        states.append(sim.sim_state())
        ee.append(np.concatenate([sim.state()[:3], [0, 0, 0]]))
        sim.step(a)
        actions.append(a)
    sim.close()
    path = tmp_path / "demo.hdf5"
    write_demos(path, [Demo("demo_0", task.name, task.language, np.array(actions), np.array(states), init,
                            {"ee_states": np.array(ee)})],
                task.env_id, {"language_instruction": task.language, "problem_name": "libero_tabletop_manipulation"})
    assert read_demos(path)[0].actions.shape == (24, 7)

    policy = ReplayPolicy(str(path))
    Runner(cfg(tmp_path / "run", max_steps=24, episodes=5, workers=1, policy_name="replay", videos_per_task=1),
           policy).run()
    [rec] = read_records(tmp_path / "run" / "episodes.jsonl")  # one demo -> one episode
    # the budget of a replay is max_steps + the protocol's wait steps (demos start with them); this random
    # demo does not succeed, so the episode runs to the end of that budget, holding still after the demo
    budget = 24 + SUITE.protocol.wait_steps
    assert rec["steps"] == budget and rec["error"] is None
    assert policy.divergence[rec["key"]] < 1e-6, policy.divergence
    import imageio.v3 as iio

    frames = iio.imread(tmp_path / "run" / rec["video"])
    assert frames.shape[0] == budget + 1 and frames.shape[-1] == 3  # the start frame + one per step


def test_rendered_frames_are_fresh_and_upright(gl):
    from bench.sim.libero.env import LiberoSim

    sim = LiberoSim(SUITE.task(0), SUITE.protocol.replace(resolution=64))
    sim.reset_to(SUITE.initial_conditions(0)[0], seed=7)
    a = sim.render(("agentview", "eye_in_hand"))
    assert a["agentview"].shape == (64, 64, 3) and a["agentview"].dtype == np.uint8
    assert np.array_equal(a["agentview"], sim.render(("agentview",))["agentview"])  # deterministic
    for _ in range(10):
        sim.step(np.array([0, 0, 1.0, 0, 0, 0, -1]))  # lift the arm: the wrist view must change
    b = sim.render(("agentview", "eye_in_hand"))
    assert np.abs(a["eye_in_hand"].astype(int) - b["eye_in_hand"]).mean() > 2.0
    # upright: the table (bright, bottom) is below the dark background of the agent view's top
    img = b["agentview"].astype(float).mean(axis=(1, 2))
    assert img[-16:].mean() > img[:16].mean()
    sim.close()


def _wait_for_lines(path: Path, n: int, timeout: float) -> None:
    t = time.time()
    while time.time() - t < timeout:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"{path} did not reach {n} lines in {timeout} s")


def test_sigkill_then_resume_runs_only_missing_episodes(tmp_path, bench_cmd, gl):
    out = tmp_path / "run"
    args = [*bench_cmd, "run", "--suite", "libero_spatial", "--policy", "zero", "--tasks", "0", "--episodes", "6",
            "--workers", "1", "--max-steps", "64", "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for_lines(out / "episodes.jsonl", 2, timeout=240)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the main process and its workers, mid-run
        proc.wait()
    before = read_records(out / "episodes.jsonl")
    assert 2 <= len(before) < 6
    again = subprocess.run(args, capture_output=True, text=True)
    assert again.returncode == 2 and "--resume" in again.stderr  # no silent overwrite
    done = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    after = read_records(out / "episodes.jsonl")
    keys = [r["key"] for r in after]
    assert len(keys) == len(set(keys)) == 6  # only the missing episodes ran
    assert keys[: len(before)] == [r["key"] for r in before]
    summary = json.loads((out / "summary.json").read_text())
    allrow = [r for r in summary["rows"] if r["task"] == "ALL"][0]
    assert allrow["episodes"] == 6 and allrow["successes"] == 0
    assert summary["provenance"]["protocol_hash"] == after[0]["protocol_hash"]
    assert summary["provenance"]["versions"]["mujoco"] == "2.3.7"


def test_episode_timeout_kills_the_worker_and_the_run_goes_on(tmp_path, gl):
    class Stalls(ZeroPolicy):
        def act(self, batch):
            if any(k.endswith("/0") for k in batch.episode_keys) and batch.steps.max() >= 8:
                time.sleep(46)  # the worker sits on its chunk past the deadline
            return super().act(batch)

    # the deadline covers the replacement worker's env build too: generous, so a loaded machine passes
    Runner(cfg(tmp_path, episodes=2, workers=1, episode_timeout_s=45), Stalls()).run()
    recs = {r["init_id"]: r for r in read_records(tmp_path / "episodes.jsonl")}
    assert recs[0]["error_kind"] == "timeout" and "45 s timeout" in recs[0]["error"]
    assert recs[1]["error"] is None and recs[1]["steps"] == 16


@pytest.mark.parametrize("policy", ["dit4dit", "replay"])
def test_records_carry_the_hash_of_what_decides_the_actions(tmp_path, bench_cmd, gl, policy):
    """`--policy dit4dit` with no --checkpoint loads the bundled one, `--policy replay` a demo file: the
    records carry its path and hash, so a result names the exact weights or demos behind it."""
    from bench.policies.trained import BUNDLED
    from bench.core.provenance import file_hash

    out = tmp_path / "run"
    fixture = Path(__file__).parent / "fixtures" / "libero_object_t0_2demos_32.hdf5"
    args = (["--suite", "libero_spatial", "--policy", "dit4dit"] if policy == "dit4dit" else
            ["--suite", "libero_object", "--policy", "replay", "--demos", str(fixture)])
    done = subprocess.run([*bench_cmd, "run", *args, "--tasks", "0", "--episodes", "1", "--workers", "1",
                           "--max-steps", "8", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    (rec,) = read_records(out / "episodes.jsonl")
    if policy == "dit4dit":
        assert rec["checkpoint_hash"] == file_hash(BUNDLED)
        assert rec["checkpoint"] == "bench/checkpoints/dit4dit_tiny_libero_spatial"  # the same on every machine
    else:
        assert rec["checkpoint_hash"] == file_hash(fixture)
        assert rec["checkpoint"] == "tests/fixtures/libero_object_t0_2demos_32.hdf5"


def test_video_episodes_are_recorded_and_shown_on_a_contact_sheet(tmp_path, gl):
    from PIL import Image

    from bench.eval.results import write_summary

    Runner(cfg(tmp_path, episodes=2, workers=1, videos_per_task=1), ZeroPolicy()).run()
    recs = read_records(tmp_path / "episodes.jsonl")
    recorded = [r for r in recs if r["video"]]
    assert [r["init_id"] for r in recorded] == [0]  # only the first episode of the task
    assert (tmp_path / recorded[0]["video"]).stat().st_size > 1000
    write_summary(tmp_path, recs, {"command": "test"})
    sheet = Image.open(tmp_path / "videos.png")
    assert sheet.width > 400 and sheet.height > 100


def test_a_rerun_reproduces_episodes_bit_for_bit_whatever_the_workers(tmp_path, gl):
    """Same episodes with 1 and 2 workers end in the same simulator state: simulator, seeding and runner
    add no nondeterminism. (Over these 24 steps the old batched dit4dit passed too; the guard against
    batching is test_policy_adapter_acts_and_does_not_depend_on_batching_bit_for_bit.)"""
    from bench.policies import make_policy

    policy = make_policy("dit4dit")
    final = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        Runner(cfg(out, max_steps=24, episodes=2, workers=workers, policy_name="dit4dit"), policy).run()
        final[workers] = {r["key"]: r["final_state"] for r in read_records(out / "episodes.jsonl")}
    assert final[1] == final[2] and len(final[1]) == 2
    assert len(set(final[1].values())) == 2 and None not in final[1].values()  # two different episodes


def test_a_reference_episode_reruns_exact_on_this_cpu(bench_cmd, tmp_path, gl):
    """results/reference was recorded on an AVX2-only CPU; portable math and the workers' pinned BLAS kernels
    make its first episode come out bit for bit on any x86-64 CPU with AVX2 (AVX-512 ones included)."""
    import subprocess

    r = subprocess.run([*bench_cmd, "verify", "results/reference/libero_spatial_episodes.jsonl", "--episodes", "1",
                        "--out", str(tmp_path / "v")], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
