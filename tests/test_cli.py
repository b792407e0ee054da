"""CLI input validation: bad names exit 2 and list the valid choices."""

import subprocess

import pytest
from typer.testing import CliRunner

from bench.cli import app

runner = CliRunner()


@pytest.mark.parametrize("args, expect", [
    (["run", "--suite", "libero_spatail"], ["unknown suite 'libero_spatail'", "Did you mean", "libero_spatial"]),
    (["run", "--suite", "libero_long", "--policy", "zro"], ["unknown policy 'zro'", "Did you mean 'zero'", "random"]),
    (["run", "--suite", "libero_long", "--tasks", "3,12"], ["task id 12 out of range", "0-9"]),
    (["run", "--suite", "libero_long", "--tasks", "x"], ["bad task id 'x'"]),
    (["run", "--suite", "libero_long", "--policy", "replay"], ["needs --demos"]),
    (["list", "tasks", "--suite", "nope"], ["unknown suite 'nope'"]),
    (["run", "--suite", "libero_spatial", "--math", "fast"], ["unknown math mode 'fast'", "portable, native"]),
    (["verify", "tests/fixtures", "--math", "native"], ["no episodes.jsonl"]),
    (["run", "--suite", "libero_spatial", "--policy", "dit4dit", "--checkpoint", "/nonexistent"],
     ["not a model checkpoint", "model.safetensors"]),
    (["train", "--data", "tests/fixtures/libero_object_t0_2demos_32.hdf5", "--out", "/tmp/x", "--config", "huge"],
     ["unknown config 'huge'", "tiny, full"]),
    (["train", "--data", "tests/fixtures/libero_object_t0_2demos_32.hdf5", "--out", "/tmp/x", "--policy", "gr00t"],
     ["unknown trainable policy 'gr00t'", "dit4dit"]),
    (["train", "--data", "missing.hdf5", "--out", "/tmp/x"], ["--data missing.hdf5: no such file"]),
    (["train", "--data", "tests/fixtures/libero_object_t0_2demos_32.hdf5", "--out", "/tmp/x", "--set",
      "gradient=sideways"], ["unknown gradient mode 'sideways'", "detached, joint, frozen_video"]),
    (["train", "--data", "tests/fixtures/libero_object_t0_2demos_32.hdf5", "--out", "/tmp/x", "--set", "video"],
     ["--set takes KEY=VALUE"]),
    (["train", "--data", "tests/fixtures/libero_object_t0_2demos_32.hdf5", "--out", "/tmp/x", "--precision", "fp16"],
     ["unknown precision 'fp16'", "fp32, bf16"]),
    (["perf", "policy", "--configs", "tiny,big"], ["unknown config(s) big", "tiny, full"]),
    (["perf", "policy", "--batches", "1,x"], ["--batches takes comma-separated integers"]),
])
def test_bad_input_exits_2_with_choices(args, expect):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())  # rich wraps long lines
    for part in expect:
        assert part in text


def test_list_commands():
    out = runner.invoke(app, ["list", "suites"])
    assert out.exit_code == 0 and "libero_long" in out.output and "libero_90" in out.output
    out = runner.invoke(app, ["list", "tasks", "--suite", "libero_long"])
    assert out.exit_code == 0 and "moka" in out.output
    out = runner.invoke(app, ["list", "policies"])
    assert out.exit_code == 0 and all(p in out.output for p in ("zero", "random", "replay"))


def test_console_script_is_installed(bench_cmd):
    proc = subprocess.run([*bench_cmd, "run", "--suite", "libero_lon"], capture_output=True, text=True)
    assert proc.returncode == 2 and "libero_long" in proc.stderr


def test_summarize_an_empty_run_dir_exits_2_naming_the_file(tmp_path):
    (tmp_path / "episodes.jsonl").write_text("")
    result = runner.invoke(app, ["summarize", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "holds no episode records" in " ".join(result.output.split())
    assert not (tmp_path / "summary.md").exists()


def test_a_suite_finds_its_bundled_checkpoint():
    from bench.policies.trained import BUNDLED, bundled_for

    assert bundled_for("libero_spatial") == ("dit4dit", BUNDLED)
    assert bundled_for("libero_10") is None and bundled_for("libero_object") is None


def test_a_model_shipped_for_two_suites_runs_each_suite_with_its_own(tmp_path, monkeypatch):
    """With a libero_spatial and a GR1-proxy checkpoint of one model shipped, `--policy groot` with no
    --checkpoint loads the libero_spatial one (zero-shot variants included), not the first folder by name, and
    `bench run --suite gr1_tabletop_proxy` the proxy one."""
    import json

    from bench.eval.evaluate import suite_checkpoint
    from bench.policies import trained

    for folder, suite in [("groot_tiny_gr1_tabletop_proxy", "gr1_tabletop_proxy"),
                          ("groot_tiny_libero_spatial", "libero_spatial"), ("flare_tiny_gr1_tabletop_proxy", None)]:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "config.json").write_text(json.dumps({"model": folder.split("_")[0], "suite": suite}))
    monkeypatch.setattr(trained, "CHECKPOINTS", tmp_path)
    assert trained.shipped_checkpoint("groot") == tmp_path / "groot_tiny_libero_spatial"
    assert trained.shipped_checkpoint("groot", "libero_spatial_zeroshot_object") == tmp_path / "groot_tiny_libero_spatial"
    assert trained.shipped_checkpoint("groot", "gr1_tabletop_proxy") == tmp_path / "groot_tiny_gr1_tabletop_proxy"
    assert trained.shipped_checkpoint("flare", "gr1_tabletop_proxy") == tmp_path / "flare_tiny_gr1_tabletop_proxy"
    assert trained.shipped_checkpoint("pi05") is None
    assert suite_checkpoint("groot", "gr1_tabletop_proxy") == str(tmp_path / "groot_tiny_gr1_tabletop_proxy")
    assert suite_checkpoint("groot", "libero_spatial") is None  # the policy's own default: records unchanged
    assert suite_checkpoint("random", "gr1_tabletop_proxy") is None


def test_progress_in_a_log_prints_plain_lines_throttled_and_the_end_once():
    """Output to a file (nohup ... > log) gets a line on the first update, none within `every_s`, one at the end."""
    import io

    from rich.console import Console
    from rich.progress import TextColumn

    from bench.cli.common import LineProgress, progress_bar

    out = io.StringIO()
    progress = progress_bar(TextColumn("kept {task.fields[kept]}"), console=Console(file=out, width=200))
    assert isinstance(progress, LineProgress)
    progress.every_s = 3600
    with progress:
        bar = progress.add_task("demos", total=4, kept=0)
        for i in range(4):
            progress.update(bar, advance=1, kept=i)
        progress.update(bar, completed=4, kept=3)  # updates after the end print nothing more
        progress.update(bar, description="next job", completed=0, total=2, kept=0)  # the bar reused: prints again
        progress.update(bar, completed=2, kept=1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4, lines
    assert lines[0].startswith("demos: 1/4 kept 0") and lines[1].startswith("demos: 4/4 kept 3")
    assert lines[2].startswith("next job: 0/2") and lines[3].startswith("next job: 2/2 kept 1")


def _clocked_progress():
    """A line-per-update progress on a clock the test sets: (progress, its output, the clock)."""
    import io

    from rich.console import Console

    from bench.cli.common import LineProgress

    now, out = [0.0], io.StringIO()
    return LineProgress(console=Console(file=out, width=200), get_time=lambda: now[0], every_s=0), out, now


def test_progress_in_a_log_estimates_time_left_from_the_mean_pace():
    """Episodes that finish in a burst after a slow stretch do not make the estimate jump."""
    progress, out, now = _clocked_progress()
    with progress:
        bar = progress.add_task("episodes", total=10)
        now[0] = 120.0
        progress.update(bar, advance=2)  # 60 s an episode: 8 left, 8 min
        now[0] = 150.0
        progress.update(bar, advance=2)  # a burst: 37.5 s an episode over the whole run, 6 left, about 4 min
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("(2.0 min, about 8 min left)"), lines
    assert lines[1].endswith("(2.5 min, about 4 min left)"), lines


def test_list_never_cuts_a_name_and_offers_json():
    import json as _json

    from typer.testing import CliRunner

    from bench.cli import app
    from bench.sim.suites import SUITES

    res = CliRunner().invoke(app, ["list", "suites"])
    assert res.exit_code == 0, res.output
    shown = set(res.output.replace("│", " ").split())
    assert set(SUITES) <= shown, f"cut or missing: {sorted(set(SUITES) - shown)}"
    rows = _json.loads(CliRunner().invoke(app, ["list", "suites", "--json"]).output)
    assert [r["suite"] for r in rows] == list(SUITES)
    tasks = _json.loads(CliRunner().invoke(app, ["list", "tasks", "--suite", "libero_spatial", "--json"]).output)
    assert [t["id"] for t in tasks] == list(range(10))


def test_a_resumed_task_is_paced_from_where_it_was_reset():
    """A training resumed at step 2000 of 20000 must not count the first 2000 steps as done in no time."""
    progress, out, now = _clocked_progress()
    with progress:
        bar = progress.add_task("train", total=100)
        now[0] = 10.0
        progress.reset(bar, completed=50, total=100)
        now[0] = 70.0
        progress.update(bar, completed=60)  # 10 steps in 60 s: 40 left, 4 min
    assert out.getvalue().splitlines()[-1].endswith("about 4 min left)"), out.getvalue()


def test_a_suite_without_its_own_checkpoint_runs_the_bundled_dit4dit_and_says_what_that_measures(tmp_path, gl,
                                                                                                   bench_cmd):
    """`bench run --suite libero_long` on a fresh clone runs (no dead end), and says its number is not a model
    trained on those tasks. (A process of its own: portable math must be set before torch loads.)"""
    import json
    import subprocess

    done = subprocess.run([*bench_cmd, "run", "--suite", "libero_long", "--tasks", "0", "--episodes", "1",
                           "--max-steps", "16", "--workers", "1", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    text = " ".join((done.stdout + done.stderr).split())
    assert "No bundled checkpoint is trained on libero_10 yet" in text and "dit4dit_tiny_libero_spatial" in text
    record = json.loads((tmp_path / "run" / "episodes.jsonl").read_text().splitlines()[0])
    assert record["policy"] == "dit4dit" and record["suite"] == "libero_10"
    assert record["checkpoint"].endswith("dit4dit_tiny_libero_spatial")
