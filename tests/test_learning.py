"""Learning curves: a run's kept checkpoints are scored once each (closed loop on the real simulator and
held-out action error), cached, and drawn against samples and CPU-hours."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "libero_object_t0_2demos_32.hdf5"
SMALL = {"image_size": 32, "video.num_layers": 2, "video.feature_layer": 1, "video.head_dim": 16,
         "video.num_heads": 2, "video.adaln_lora_dim": 16, "action.num_layers": 2, "action.num_heads": 2,
         "action.head_dim": 16, "action.cross_dim": 32}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    from bench.models.registry import model_config
    from bench.train.loop import TrainConfig, train

    out = tmp_path_factory.mktemp("curves") / "run"
    cfg = TrainConfig(steps=6, batch_size=2, warmup=2, checkpoint_every=3, keep_checkpoints=(3,))
    train(model_config("dit4dit", "tiny", **SMALL), [str(FIXTURE)], out, cfg)
    return out


def test_training_in_stages_gives_the_uninterrupted_runs_weights(run, tmp_path):
    """train(until=N) stops at N with a checkpoint (a curve point can be scored there) and resumes to the
    weights of the run that never stopped."""
    import torch
    from safetensors.torch import load_file

    from bench.models.registry import model_config
    from bench.train.loop import TrainConfig, train

    cfg = TrainConfig(steps=6, batch_size=2, warmup=2, checkpoint_every=3, keep_checkpoints=(3,))
    staged = tmp_path / "staged"
    for until in (3, 3, 5, None):  # a repeated stage is a no-op
        train(model_config("dit4dit", "tiny", **SMALL), [str(FIXTURE)], staged, cfg, resume=True, until=until)
        if until == 3:
            assert json.loads((staged / "checkpoint" / "config.json").read_text())["trained_steps"] == 3
    a = load_file(str(run / "checkpoint" / "model.safetensors"))
    b = load_file(str(staged / "checkpoint" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert sorted(p.name for p in staged.glob("train_config*.json")) == [
        "train_config.json", "train_config.resume3.json", "train_config.resume5.json"]


def test_a_packed_run_resumes_on_another_machine_to_the_uninterrupted_runs_weights(run, tmp_path):
    """A run packed part way (bench.train.carry: state, logs and configs, no weights it no longer needs) and
    unpacked elsewhere trains on to the weights of the run that never stopped; a pack of other demos is refused."""
    import torch
    from safetensors.torch import load_file

    from bench.analysis.learning import points
    from bench.models.registry import model_config
    from bench.train.carry import CARRIED, pack_run, unpack_run
    from bench.train.loop import TrainConfig, train

    cfg = TrainConfig(steps=6, batch_size=2, warmup=2, checkpoint_every=3, keep_checkpoints=(3,))
    here, pack, there = tmp_path / "here", tmp_path / "pack", tmp_path / "there"
    train(model_config("dit4dit", "tiny", **SMALL), [str(FIXTURE)], here, cfg, until=3)
    (here / "curve" / "step3" / "eval").mkdir(parents=True)
    (here / "curve" / "step3" / "eval" / "summary.json").write_text("{}")  # point 3 scored: its weights stay
    assert pack_run(here, pack, weights_needed=lambda folder: False) == 3
    assert not list(pack.rglob("*.safetensors")) and (pack / "train_state.pt").exists()
    assert (pack / "checkpoint_step3" / "config.json").exists() and (pack / "losses.csv").exists()
    assert [p.step for p in points(pack)] == [3]  # scored, weightless: still a point

    assert unpack_run(pack, there, [FIXTURE]) == 3
    assert unpack_run(pack, there, [FIXTURE]) == 0  # already as far
    train(model_config("dit4dit", "tiny", **SMALL), [str(FIXTURE)], there, cfg, resume=True)
    a = load_file(str(run / "checkpoint" / "model.safetensors"))
    b = load_file(str(there / "checkpoint" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    carried = json.loads((pack / CARRIED).read_text())
    (pack / CARRIED).write_text(json.dumps({**carried, "data_digest": "0" * 16}))
    with pytest.raises(ValueError, match="0000000000000000.*cannot resume here"):
        unpack_run(pack, tmp_path / "elsewhere", [FIXTURE])


def test_sigterm_inside_a_study_is_an_interrupt_that_finally_blocks_see():
    """What lets the learning study pack its run when the machine is handed back (SIGTERM), as on Ctrl-C."""
    import os
    import signal
    import time

    from bench.ablate.jobs import stop_on_sigterm

    before, packed = signal.getsignal(signal.SIGTERM), []
    with pytest.raises(KeyboardInterrupt):
        with stop_on_sigterm():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the handler interrupts this at once
            finally:
                packed.append(True)
    assert packed and signal.getsignal(signal.SIGTERM) is before


def test_points_are_the_kept_checkpoints_and_the_finished_final_one(run):
    from bench.analysis.learning import points

    assert [(p.step, p.checkpoint.name) for p in points(run)] == [(3, "checkpoint_step3"), (6, "checkpoint")]
    config = json.loads((run / "train_config.json").read_text())
    config["train"]["steps"] = 12  # still training: its checkpoint/ moves on, so it is not a point yet
    unfinished = run.parent / "unfinished"
    shutil.copytree(run, unfinished)
    (unfinished / "train_config.json").write_text(json.dumps(config))
    assert [p.step for p in points(unfinished)] == [3]


def test_bench_curves_scores_each_point_once_and_writes_the_curves(run, tmp_path, bench_cmd, gl):
    from bench.analysis.learning import points

    out = tmp_path / "learning_curves"
    cmd = [*bench_cmd, "curves", str(run), "--out", str(out), "--score", "--suite", "libero_object", "--tasks", "0",
           "--episodes", "1", "--heldout", str(FIXTURE), "--windows", "4", "--workers", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    table = json.loads(out.with_suffix(".json").read_text())["points"]
    assert [(p["step"], p["samples"], p["episodes"]) for p in table] == [(3, 6, 1), (6, 12, 1)]
    assert all(0 <= p["success_low"] <= p["success_rate"] <= p["success_high"] <= 1 for p in table)
    assert all(p["action_error_low"] <= p["action_error"] <= p["action_error_high"] for p in table)
    assert all(p["cpu_hours"] > 0 and p["windows"] == 4 for p in table)
    for step in (3, 6):
        assert (out / "run" / f"step{step}" / "episodes.jsonl").exists()
        assert (out / "run" / f"step{step}" / "action_error.json").exists()
    assert out.with_suffix(".png").stat().st_size > 0 and Path(f"{out}_losses.png").exists()

    stamps = {p.step: ((p.folder / "action_error.json").stat().st_mtime_ns,
                       (p.folder / "eval" / "episodes.jsonl").read_text()) for p in points(run)}
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-2000:]
    assert {p.step: ((p.folder / "action_error.json").stat().st_mtime_ns,
                     (p.folder / "eval" / "episodes.jsonl").read_text()) for p in points(run)} == stamps, \
        "a scored point is not scored again"


def test_curves_refuse_a_folder_that_is_not_a_run(tmp_path, bench_cmd):
    done = subprocess.run([*bench_cmd, "curves", str(tmp_path), "--out", str(tmp_path / "c")], capture_output=True,
                          text=True)
    assert done.returncode == 2 and "not a training run folder" in " ".join(done.stderr.split())


def test_bundle_ships_a_finished_run_and_refuses_an_unfinished_one(run, tmp_path):
    from bench.train.loop import bundle_run

    dst, curves = bundle_run(run, checkpoints=tmp_path / "checkpoints", results=tmp_path / "results")
    assert dst == tmp_path / "checkpoints" / "dit4dit_tiny_libero_object"
    assert json.loads((dst / "config.json").read_text())["weights_dtype"] == "fp32"
    assert curves == tmp_path / "results" / "dit4dit" / "libero_object_train"
    assert (curves / "losses.csv").read_text() == (run / "losses.csv").read_text()
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run, unfinished)
    config = json.loads((unfinished / "train_config.json").read_text())
    config["train"]["steps"] = 12
    (unfinished / "train_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="trained 6 of its 12 steps"):
        bundle_run(unfinished, checkpoints=tmp_path / "c2", results=tmp_path / "r2")


def test_samples_to_reach_and_their_ratio_with_intervals():
    import numpy as np
    import pandas as pd

    from bench.analysis.learning import convergence, convergence_lines, samples_to_reach

    assert samples_to_reach(np.array([10.0, 20.0]), np.array([0.2, 0.6]), 0.4) == 15.0
    assert samples_to_reach(np.array([10.0, 20.0]), np.array([0.2, 0.3]), 0.4) == float("inf")
    rows = []
    for label, rates in (("fast", (0.30, 0.60, 0.70, 0.70)), ("slow", (0.05, 0.10, 0.20, 0.40))):
        for i, r in enumerate(rates):
            rows.append({"label": label, "samples": 1000 * (i + 1), "episodes": 400, "successes": int(400 * r),
                         "success_rate": r})
    conv = convergence(pd.DataFrame(rows))
    assert conv["target"] == 0.2 and conv["reference"] == "fast"
    fast, slow = conv["rows"]
    assert abs(fast["samples"] - 2000 / 3) < 1e-6 and slow["samples"] == 3000.0
    assert fast["low"] < fast["samples"] < fast["high"] and slow["low"] <= slow["samples"] <= slow["high"]
    assert slow["ratio_low"] > 1 and abs(slow["ratio"] - 4.5) < 1e-6  # slower, and the interval says so
    assert "| slow | 3,000 |" in "\n".join(convergence_lines(conv))
    none = pd.DataFrame([{**r, "successes": 0, "success_rate": 0.0} for r in rows])
    assert "not stated" in convergence_lines(convergence(none))[0]
