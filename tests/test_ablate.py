"""`bench ablate`: specs are data that parse and share their default training; a real smoke ablation
trains, scores and tabulates; a killed one resumes without redoing finished jobs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.ablate.run import check_configs, make_plan
from bench.ablate.spec import SpecError, available, load_budget, load_spec, parse_spec, variants

FIXTURE = "tests/fixtures/libero_object_t0_2demos_32.hdf5"
TWO = """
flag: two-timesteps
title: Two feature timesteps
question: does the pipeline run?
models: [dit4dit]
config: tiny
axis: {name: feature timestep, key: feature_timestep, values: [0.5, 0.995], default: 0.995}
"""


def test_every_spec_parses_and_default_variants_share_one_training():
    keys = {}
    for name in available():
        spec = load_spec(name)
        for budget in ("smoke", "small", "full"):
            assert load_budget(spec, budget).schedule.steps > 0
        vs = variants(spec, load_budget(spec, "small"), "data", "all data")
        check_configs(vs)  # every value builds
        assert len(vs) == len(spec.models) * len(spec.axis.values)
        labels = [v["label"] if isinstance(v, dict) else v for v in spec.axis.values]
        assert spec.axis.default in labels, f"{name}: its default is not one of its values"
        for v in vs:
            if v.arm == "dit4dit" and str(v.value) == str(spec.axis.default):
                keys[name] = v.train.key()
    # the bundled model's setting is one training, whichever ablation asks for it
    assert len(set(keys.values())) == 1, keys


def test_the_full_budget_trains_as_the_official_libero_launch_does(tmp_path):
    """80k steps at 256, 1e-5 video / 1e-4 action, 5k warm-up, cosine to 5e-7, weight decay 1e-8, uniform video
    timesteps; other models keep one rate; the small budget's training keys are what they were."""
    from bench.ablate.jobs import train_job
    from bench.models.dit4dit import full_config
    from bench.train.loop import TrainConfig

    spec = load_spec("data_fraction")
    full = {v.arm: v for v in variants(spec, load_budget(spec, "full"), "data")}
    job = train_job(full["dit4dit"].train, ["demos.hdf5"], tmp_path)["train"]
    cfg = TrainConfig(**job)
    assert (cfg.steps, cfg.batch_size, cfg.warmup, cfg.min_lr, cfg.betas) == (80000, 256, 5000, 5e-7, (0.9, 0.95))
    assert cfg.group_lr == {"video": 1e-5, "action": 1e-4} and cfg.weight_decay == 1e-8
    assert "group_lr" not in train_job(full["groot"].train, ["demos.hdf5"], tmp_path)["train"]
    # the official model size where this suite has one; the baselines keep the spec's
    assert (full["dit4dit"].train.config, full["groot"].train.config) == ("full", "tiny")
    assert full_config().video_timesteps.kind == "uniform"
    small = variants(spec, load_budget(spec, "small"), "data")[0].train
    assert "group_lr" not in small.schedule.key_fields() and "weight_decay" not in small.schedule.key_fields()


def test_a_full_budget_plan_prints_gpu_hours_for_every_spec_and_runs_nothing(tmp_path):
    """On a machine without demos: every spec's plan at the official scale, with its GPU-hours and how a Ray
    cluster spreads them; no demo is made and nothing trains."""
    flags = [f"--{load_spec(n).flag}" for n in available()]
    env = {**os.environ, "DIT4DIT_BENCH_DATA": str(tmp_path / "data"), "COLUMNS": "200"}
    run = subprocess.run([sys.executable, "-m", "bench.cli", "ablate", *flags, "--budget", "full", "--plan",
                          "--root", str(tmp_path / "runs"), "--cluster-gpus", "16"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert run.stdout.count("GPU-hours in all") == len(flags), run.stdout[-3000:]
    assert run.stdout.count("on a Ray cluster of 16 GPUs") == len(flags)
    totals = [line for line in run.stdout.splitlines() if line.startswith("GPU-hours in all")]
    assert "unknown" not in run.stdout and not any("?" in line for line in totals), totals
    assert "feature block (0-based, of 28)" in run.stdout  # the full-size video DiT's blocks
    assert not (tmp_path / "runs" / "train").exists() and not (tmp_path / "data").exists()


def test_gpu_hours_come_from_the_measured_rates_and_the_cluster_spreads_them(tmp_path):
    from bench.ablate.costs import JobCost, load_gpu_perf, plan_cost, spread
    from bench.ablate.run import unmade_inputs

    spec = load_spec("feature_layer")
    plan = make_plan(spec, "full", "d.hdf5", "h.hdf5", tmp_path, inputs=unmade_inputs(spec, "d.hdf5", "h.hdf5"))
    assert plan.spec.axis.default == 17 and len(plan.spec.axis.values) == 14
    perf = load_gpu_perf()
    cost = plan_cost(plan, cluster_gpus=8, perf=perf)
    trains = [j for j in cost.jobs if j.kind == "train"]
    assert len(trains) == 14 * 3
    assert trains[0].gpu_hours == pytest.approx(80000 * 256 / perf["full"]["train_samples_per_s_bf16"] / 3600)
    assert cost.wall_hours == pytest.approx(6 * trains[0].gpu_hours)  # 42 equal trainings on 8 GPUs: 6 rounds
    assert all(j.gpus == 0 for j in cost.jobs if j.kind != "train")  # evaluations run the policy on the CPU
    # by hand: a and b at once; c waits for a; d asks for both GPUs, so it halves its hours
    jobs = [JobCost("train", "a", 10, 1), JobCost("train", "b", 10, 1), JobCost("train", "c", 10, 1, after="a"),
            JobCost("train", "d", 8, 2)]
    assert spread(jobs, 2) == 10 + 10 + 4
    # a job waiting for another holds no GPU meanwhile: p1, p2 then the long x; w (after p1) takes p1's GPU
    jobs = [JobCost("train", "p1", 1, 1), JobCost("train", "w", 1, 1, after="p1"), JobCost("train", "p2", 1, 1),
            JobCost("train", "x", 5, 1)]
    assert spread(jobs, 2) == 1 + 5  # holding a GPU for w from the start would give 7
    with pytest.raises(ValueError, match="asks for 4 GPUs; the cluster has 2"):
        spread([JobCost("train", "e", 1, 4)], 2)
    blind = plan_cost(plan, 8, perf={})  # nothing measured: no hours, and the plan says why
    assert blind.gpu_hours() is None and blind.wall_hours is None
    assert all(r.source.startswith("unknown") for k, r in blind.rates.items() if "training" in k)


def test_spec_errors_name_the_problem():
    with pytest.raises(SpecError, match="unknown ablation 'nope'.*feature_timestep"):
        load_spec("nope")
    with pytest.raises(SpecError, match="missing axis"):
        parse_spec({"flag": "x", "title": "x", "question": "x", "models": ["dit4dit"], "config": "tiny"})
    bad = {"flag": "x", "title": "x", "question": "x", "models": ["dit4dit"], "config": "tiny",
           "axis": {"target": "progress", "values": [0.3]}}
    with pytest.raises(SpecError, match="kept checkpoints"):
        parse_spec(bad)


def test_an_axis_value_the_model_rejects_fails_before_any_job(tmp_path):
    """A sweep used to train five variants and then fail at its sixth; now it fails up front, naming the value."""
    spec = tmp_path / "layers.yaml"
    spec.write_text(TWO.replace("key: feature_timestep, values: [0.5, 0.995], default: 0.995",
                                "key: video.feature_layer, values: [3, 6], default: 3"))
    with pytest.raises(SpecError, match=r"at 6: feature_layer 6 is outside the video DiT's blocks 0\.\.5"):
        make_plan(load_spec(spec), "smoke", FIXTURE, FIXTURE, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def _ablate(tmp_path: Path, spec: Path, demos: str | Path = FIXTURE) -> list[str]:
    return [sys.executable, "-m", "bench.cli", "ablate", "--spec", str(spec), "--budget", "smoke", "--data", str(demos),
            "--heldout", str(demos), "--root", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]


def test_resume_reads_the_last_ablation_of_its_own_job_cache(tmp_path):
    """--resume finds the last `bench ablate` through --root, so a test or a second cache never redirects it."""
    cache = tmp_path / "cache"
    missing = subprocess.run([sys.executable, "-m", "bench.cli", "ablate", "--resume", "--root", str(cache)],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "last.json is missing" in " ".join(missing.stderr.split())
    spec = tmp_path / "two.yaml"
    spec.write_text(TWO)
    planned = subprocess.run(_ablate(tmp_path, spec) + ["--plan"], capture_output=True, text=True, timeout=120)
    assert planned.returncode == 0, planned.stdout[-3000:] + planned.stderr[-3000:]
    again = subprocess.run([sys.executable, "-m", "bench.cli", "ablate", "--resume", "--plan", "--root", str(cache)],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "Two feature timesteps" in " ".join(again.stdout.split())


def test_a_killed_ablation_resumes_without_redoing_finished_jobs(tmp_path, gl):
    spec = tmp_path / "two.yaml"
    spec.write_text(TWO)
    from bench.ablate.jobs import demo_fingerprint

    smoke = load_budget(load_spec(spec), "smoke")
    first, second = (v.train.key() for v in variants(load_spec(spec), smoke, demo_fingerprint(FIXTURE)))
    cache = tmp_path / "cache"
    proc = subprocess.Popen(_ablate(tmp_path, spec), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 600
    # kill everything once the second variant is under way (the first is trained, scored and evaluated)
    while time.time() < deadline and not list((cache / "eval").glob("*/done.json")):
        assert proc.poll() is None, "the ablation ended before it could be interrupted"
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "out" / "two.csv").exists()
    result = subprocess.run(_ablate(tmp_path, spec), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    logs = {k: (cache / "train" / f"{k}.log").read_text() for k in (first, second)}
    assert logs[first].count("\n$ ") == 1, "a finished training was run again"
    table = pd.read_csv(tmp_path / "out" / "two.csv")
    assert list(table["value"]) == [0.5, 0.995] and table["episodes"].tolist() == [1, 1]
    assert table["windows"].tolist() == [4, 4] and table["action_error"].notna().all()
    md = (tmp_path / "out" / "two.md").read_text()
    assert "What is significant" in md and "not the paper's 2B model" in md
    assert (tmp_path / "out" / "two.png").stat().st_size > 5000


@pytest.mark.slow
def test_kept_scores_carry_finished_variants_to_a_machine_without_the_job_cache(tmp_path, gl):
    """--scores keeps eval/ and offline/ apart from the checkpoints: with the job cache gone (a new machine),
    the same ablation retrains and rescores nothing and writes the same table; with the demos gone too,
    --from-scores rebuilds that table from the scores and their recorded inputs alone."""
    import shutil

    spec = tmp_path / "two.yaml"
    spec.write_text(TWO)
    kept, demos = tmp_path / "kept", tmp_path / "demos.hdf5"
    shutil.copy(FIXTURE, demos)
    first = subprocess.run(_ablate(tmp_path, spec, demos) + ["--scores", str(kept)], capture_output=True, text=True,
                           timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert len(list(kept.glob("eval/*/done.json"))) == 2 and len(list(kept.glob("offline/*/action_error.json"))) == 2
    assert not list(kept.rglob("*.safetensors")) and not list(kept.rglob("*.log")), "checkpoints and logs stay in --root"
    table = (tmp_path / "out" / "two.csv").read_text()
    shutil.rmtree(tmp_path / "cache")
    (tmp_path / "out" / "two.csv").unlink()
    again = subprocess.run(_ablate(tmp_path, spec, demos) + ["--scores", str(kept)], capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "not needed (scored)" in again.stdout
    assert not (tmp_path / "cache" / "train").exists(), "a scored variant was trained again"
    assert (tmp_path / "out" / "two.csv").read_text() == table

    demos.unlink()
    shutil.rmtree(tmp_path / "out")
    rebuilt = subprocess.run([sys.executable, "-m", "bench.cli", "ablate", "--spec", str(spec), "--budget", "smoke",
                              "--from-scores", "--scores", str(kept), "--out", str(tmp_path / "out")],
                             capture_output=True, text=True, timeout=120)
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:] + rebuilt.stderr[-3000:]
    assert (tmp_path / "out" / "two.csv").read_text() == table
    next(kept.glob("offline/*/action_error.json")).unlink()
    short = subprocess.run([sys.executable, "-m", "bench.cli", "ablate", "--spec", str(spec), "--budget", "smoke",
                            "--from-scores", "--scores", str(kept), "--out", str(tmp_path / "out")],
                           capture_output=True, text=True, timeout=120)
    assert short.returncode != 0 and "1 of 2 variants have no kept scores" in " ".join(short.stderr.split())


@pytest.mark.slow
@pytest.mark.parametrize("name", list(available()))
def test_every_ablation_runs_end_to_end_at_smoke(name, tmp_path, gl):
    cmd = [sys.executable, "-m", "bench.cli", "ablate", "--" + load_spec(name).flag, "--budget", "smoke",
           "--data", FIXTURE, "--heldout", FIXTURE, "--root", str(tmp_path / "cache"), "--out", str(tmp_path)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    table = pd.read_csv(tmp_path / f"{name}.csv")
    assert len(table) == len(variants(load_spec(name), load_budget(load_spec(name), "smoke"), "x", "y"))
    assert table["action_error"].notna().all() and (table["episodes"] > 0).all()


def test_p_values_below_a_thousandth_print_as_a_bound():
    from bench.ablate.tables import _fmt_p

    assert [_fmt_p(p) for p in (0.0, 0.0004, 0.068, float("nan"))] == ["<0.001", "<0.001", "0.068", "—"]


def test_on_a_fresh_machine_the_plan_says_which_demos_it_would_make_first(tmp_path, bench_cmd):
    """No demo files: `bench ablate --plan` names the demo sets it would make and about how long, and runs nothing."""
    import os
    import subprocess

    env = {**os.environ, "DIT4DIT_BENCH_DATA": str(tmp_path / "data")}
    done = subprocess.run([*bench_cmd, "ablate", "--feature-timestep", "--plan", "--root", str(tmp_path / "root")],
                          env=env, capture_output=True, text=True, timeout=300)
    text = " ".join(done.stdout.split())
    assert done.returncode == 0, done.stderr
    assert "would first make demo set libero_spatial (500 demos, about" in text
    assert "would first make demo set libero_spatial_heldout (20 demos" in text
    assert not (tmp_path / "data").exists(), "--plan makes nothing"
    bad = subprocess.run([*bench_cmd, "ablate", "--feature-timestep", "--plan", "--data", str(tmp_path / "no.hdf5")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "no.hdf5: no such file" in " ".join(bad.stderr.split())


def test_demo_sets_name_their_files_and_a_bad_set_names_the_valid_ones(tmp_path, monkeypatch):
    from bench.eval.demo_sets import SETS, get_set, set_of_file

    monkeypatch.setenv("DIT4DIT_BENCH_DATA", str(tmp_path))
    s = get_set("libero_spatial")
    assert s.path == tmp_path / "demos" / "libero_spatial_128_from224.hdf5" and set_of_file(s.path) is s
    assert s.left() == 500 and SETS["libero_spatial_heldout"].left() == 20
    with pytest.raises(ValueError, match="'libero_spatail'.*libero_spatial, libero_spatial_heldout"):
        get_set("libero_spatail")
