"""`bench`: the command line. Thin: parse, validate (exit 2 with the valid
choices on bad input), call the library, print."""

from __future__ import annotations

import sys
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from bench.registry import UnknownNameError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Benchmark and ablate robot manipulation policies.")
perf_app = typer.Typer(no_args_is_help=True, help="Throughput and latency benchmarks.")
app.add_typer(perf_app, name="perf")
demos_app = typer.Typer(no_args_is_help=True, help="Demonstrations in LIBERO's HDF5 format.")
app.add_typer(demos_app, name="demos")
console = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True)

RUNS_DIR = Path("runs")


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _suite(name: str):
    from bench.suites import get_suite

    try:
        return get_suite(name)
    except UnknownNameError as exc:
        fail(str(exc))


def _task_ids(suite, tasks: Optional[str]) -> list[int]:
    from bench.suites import parse_task_ids

    try:
        return parse_task_ids(tasks, len(suite.tasks()))
    except ValueError as exc:
        fail(f"{exc} (suite {suite.name})")


def _policy(name: str, **options):
    from bench.policies import make_policy

    try:
        return make_policy(name, **options)
    except UnknownNameError as exc:
        fail(str(exc))
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))


def _latest_run(base: Path) -> Optional[Path]:
    runs = sorted(p for p in base.glob("*") if (p / "episodes.jsonl").exists())
    return runs[-1] if runs else None


def print_table(table) -> None:
    t = Table(show_lines=False)
    for col in ("suite", "task", "episodes", "success %", "95% CI", "errors", "steps"):
        t.add_column(col, justify="right" if col not in ("suite", "task") else "left",
                     no_wrap=col != "task", overflow="ellipsis")
    for _, r in table.iterrows():
        label = r["task"] if r["task"] == "ALL" else f"{int(r['task_id'])}: {r['task']}"
        style = "bold" if r["task"] == "ALL" else None
        t.add_row(str(r["suite"]), label[:60], str(r["episodes"]), f"{100 * r['success_rate']:.1f}",
                  f"[{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}]", str(r["errors"]),
                  f"{r['mean_steps']:.0f}", style=style)
    console.print(t)


@app.command()
def run(
    suite: str = typer.Option(..., "--suite", "-s", help="Suite name (bench list suites)."),
    policy: str = typer.Option("zero", "--policy", "-p", help="Policy name (bench list policies)."),
    tasks: Optional[str] = typer.Option(None, help="Task ids, e.g. 0,3-5 (default: all)."),
    episodes: Optional[int] = typer.Option(None, min=1, help="Episodes per task (default: the suite's, 50)."),
    workers: int = typer.Option(2, min=1, help="Sim worker processes."),
    out: Optional[Path] = typer.Option(None, help="Run directory (default: runs/<suite>/<policy>/<time>)."),
    resume: bool = typer.Option(False, help="Continue the run in --out (default: the latest run of suite+policy)."),
    video: int = typer.Option(0, min=0, help="Save an mp4 of the first N episodes of each task."),
    checkpoint: Optional[str] = typer.Option(None, help="Policy checkpoint path."),
    demos: Optional[str] = typer.Option(None, help="Demo file (LIBERO HDF5) for the replay policy."),
    seed: Optional[int] = typer.Option(None, help="Override the protocol's seed (changes the protocol hash)."),
    max_steps: Optional[int] = typer.Option(None, min=1, help="Override max steps (changes the protocol hash)."),
    episode_timeout: float = typer.Option(900.0, min=1.0, help="Seconds before an episode is abandoned."),
    publish: Optional[Path] = typer.Option(None, help="Also copy the summary and records to DIR/<suite>_*."),
):
    """Evaluate a policy on a suite on the real LIBERO simulator."""
    from bench.provenance import provenance
    from bench.results import record_invocation, summarize_dir
    from bench.runner import RunConfig, Runner, RunDirMismatch
    from bench.sim.rendering import HeadlessGLError, configure_headless_gl

    s = _suite(suite)
    task_ids = _task_ids(s, tasks)
    pol = _policy(policy, checkpoint=checkpoint, demos=demos, seed=seed)
    canonical = _canonical_policy(policy)
    loaded = getattr(pol, "checkpoint_path", None)
    checkpoint = checkpoint or (str(loaded) if loaded is not None else None)
    base = RUNS_DIR / s.name / canonical
    if out is None:
        out = (_latest_run(base) if resume else None) or base / datetime.now().strftime("%Y%m%d-%H%M%S")
    protocol = s.protocol
    if seed is not None:
        protocol = protocol.replace(seed=seed)
    if max_steps is not None:
        protocol = protocol.replace(max_steps=max_steps)
    cfg = RunConfig(suite=s, policy_name=canonical, task_ids=task_ids, out=out, episodes=episodes, workers=workers,
                    resume=resume, videos_per_task=video, checkpoint=checkpoint, protocol=protocol,
                    episode_timeout_s=episode_timeout)
    try:
        gl = configure_headless_gl()
    except HeadlessGLError as exc:
        fail(str(exc), code=1)

    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("success {task.fields[succ]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=console)
    counts = {"succ": 0}

    def on_episode(rec):
        counts["succ"] += int(rec.success)
        progress.update(bar, advance=1, succ=counts["succ"])
        if rec.error:
            progress.console.print(f"[yellow]{rec.key}: {rec.error_kind}: {rec.error.splitlines()[0]}[/]")

    runner = Runner(cfg, pol, on_episode=on_episode)
    try:
        queue = runner.pending()
    except RunDirMismatch as exc:
        fail(str(exc))
    except ValueError as exc:  # spec mismatch, bad --episodes
        fail(str(exc))
    console.print(f"[bold]{s.name}[/] x [bold]{canonical}[/]: {len(queue)} episodes to run on {len(task_ids)} "
                  f"tasks, {workers} workers, GL={gl}, protocol {protocol.name}#{protocol.hash()} -> {out}")
    if queue:
        record_invocation(out, provenance(protocol))
    with progress:
        bar = progress.add_task(s.name, total=len(queue), succ=0)
        runner.run(queue)
    table = summarize_dir(out, provenance(protocol))
    print_table(table)
    console.print(f"records: {out / 'episodes.jsonl'}; summary: {out / 'summary.md'}")
    if publish is not None:
        import shutil

        publish.mkdir(parents=True, exist_ok=True)
        for name in ("summary.json", "summary.md", "summary.csv", "summary.png", "episodes.jsonl", "videos.png"):
            if (out / name).exists():  # videos.png only with --video
                shutil.copyfile(out / name, publish / f"{s.name}_{name}")
        console.print(f"published to {publish}/{s.name}_summary.*")


def _canonical_policy(name: str) -> str:
    from bench.policies import load_all

    return load_all().canonical(name)


class ListWhat(str, Enum):
    suites = "suites"
    tasks = "tasks"
    policies = "policies"


TRAINABLE = ("dit4dit",)


def _parse_overrides(items: list[str]) -> dict:
    import json as _json

    out = {}
    for item in items:
        if "=" not in item:
            fail(f"--set takes KEY=VALUE (e.g. video.feature_layer=2), got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key] = _json.loads(value)
        except ValueError:
            out[key] = value
    return out


@app.command()
def train(
    policy: str = typer.Option("dit4dit", "--policy", "-p", help=f"Trainable policy: {', '.join(TRAINABLE)}."),
    config: str = typer.Option("tiny", "--config", "-c", help="Model config: tiny or full."),
    data: list[str] = typer.Option(..., "--data", "-d", help="Demo file(s): LIBERO HDF5 or a LeRobot folder."),
    steps: int = typer.Option(1000, min=1, help="Optimizer steps."),
    out: Path = typer.Option(..., help="Run folder (checkpoint/, losses.csv, losses.png, train_state.pt)."),
    batch_size: int = typer.Option(16, min=1, help="Samples per step (per process)."),
    lr_video: float = typer.Option(3e-4, help="Peak learning rate of the video DiT."),
    lr_action: float = typer.Option(3e-4, help="Peak learning rate of the action DiT."),
    warmup: int = typer.Option(100, min=0, help="Linear warmup steps."),
    checkpoint_every: int = typer.Option(250, min=1, help="Steps between checkpoints."),
    seed: int = typer.Option(0, help="Seed of the weights and of the batch order."),
    workers: int = typer.Option(0, min=0, help="DataLoader worker processes."),
    threads: Optional[int] = typer.Option(None, min=1, help="torch CPU threads (default: torch's choice)."),
    precision: str = typer.Option("fp32", help="fp32, or bf16 (autocast; fp32 weights): faster on CPUs and GPUs "
                                               "with bf16 units."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its train state."),
    set_: list[str] = typer.Option([], "--set", help="Model config override KEY=VALUE (dotted keys reach nested "
                                                      "configs, e.g. video.feature_layer=2, gradient=joint)."),
):
    """Train a policy on demonstrations (runs on several GPUs under `accelerate launch`)."""
    import torch

    from bench.models.dit4dit import CONFIGS, make_config
    from bench.training import TrainConfig, train as run_training

    if policy not in TRAINABLE:
        fail(f"unknown trainable policy {policy!r}; valid: {', '.join(TRAINABLE)}")
    if config not in CONFIGS:
        fail(f"unknown config {config!r}; valid: {', '.join(CONFIGS)}")
    for path in data:
        if not Path(path).exists():
            fail(f"--data {path}: no such file or folder")
    try:
        model_cfg = make_config(config, **_parse_overrides(set_))
    except (ValueError, KeyError, TypeError) as exc:
        fail(str(exc))
    if threads:
        torch.set_num_threads(threads)
    cfg = TrainConfig(steps=steps, batch_size=batch_size, lr_video=lr_video, lr_action=lr_action,
                      warmup=min(warmup, steps), checkpoint_every=checkpoint_every, seed=seed, num_workers=workers,
                      precision=precision)
    progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("loss {task.fields[loss]} (action {task.fields[action]}, video {task.fields[video]})"
                                   " {task.fields[rate]} samples/s"),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=console)

    def on_log(step: int, row: dict) -> None:
        progress.update(bar, completed=step, loss=f"{row['loss']:.4f}", action=f"{row['action']:.4f}",
                        video=f"{row['video']:.4f}", rate=f"{row['samples_per_s']:.1f}")

    with progress:
        bar = progress.add_task("train", total=steps, loss="-", action="-", video="-", rate="-")
        try:
            ckpt = run_training(model_cfg, data, out, cfg, resume=resume, on_log=on_log)
        except (FileExistsError, FileNotFoundError, ValueError) as exc:
            fail(str(exc))
    console.print(f"checkpoint: {ckpt}  (losses: {out / 'losses.csv'}, {out / 'losses.png'})")


@app.command("list")
def list_(what: ListWhat = typer.Argument(..., help="suites, tasks or policies"),
          suite: Optional[str] = typer.Option(None, "--suite", "-s", help="Suite whose tasks to list.")):
    """List registered suites, a suite's tasks, or policies."""
    if what is ListWhat.suites:
        from bench.suites import SUITES

        t = Table("suite", "aliases", "max steps", "protocol", "description")
        for name in SUITES:
            st = SUITES.get(name)
            t.add_row(name, ", ".join(SUITES.aliases_of(name)), str(st.protocol.max_steps),
                      f"{st.protocol.name}#{st.protocol.hash()}", st.description)
        console.print(t)
    elif what is ListWhat.tasks:
        if suite is None:
            fail("bench list tasks needs --suite (see bench list suites)")
        s = _suite(suite)
        t = Table("id", "task", "instruction")
        for task in s.tasks():
            t.add_row(str(task.task_id), task.name, task.language)
        console.print(t)
    else:
        from bench.policies import load_all

        reg = load_all()
        t = Table("policy", "options", "description")
        for name in reg:
            e = reg.get(name)
            t.add_row(name, " ".join(f"--{o}" for o in e.options), e.help)
        console.print(t)


@app.command()
def summarize(run_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="A run directory.")):
    """Recompute summary.{md,csv,json,png} of a run directory from its episodes.jsonl (the provenance
    stays that of the commands that ran the episodes)."""
    from bench.provenance import provenance
    from bench.results import EmptyRunDir, summarize_dir

    try:
        table = summarize_dir(run_dir, provenance())
    except EmptyRunDir as e:
        fail(str(e))
    print_table(table)


@app.command()
def compare(
    summaries: list[Path] = typer.Argument(..., exists=True, dir_okay=False,
                                           help="Two or more summary.json files (same protocol)."),
    out: Path = typer.Option(..., help="Output prefix: writes PREFIX.md, PREFIX.csv, PREFIX.png."),
    labels: Optional[str] = typer.Option(None, help="Comma-separated names, one per summary "
                                                    "(default: each file's folder name)."),
):
    """Per-task success of several runs side by side with 95% intervals; for two, a one-sided
    Fisher exact p that the first beats the second."""
    from bench.compare import load_summary, to_markdown, write_comparison
    from bench.provenance import provenance

    names = [x.strip() for x in labels.split(",")] if labels else [None] * len(summaries)
    if len(names) != len(summaries):
        fail(f"--labels has {len(names)} names for {len(summaries)} summaries")
    try:
        loaded = [load_summary(p, n) for p, n in zip(summaries, names)]
        table = write_comparison(loaded, out, provenance())
    except ValueError as e:
        fail(str(e))
    typer.echo(to_markdown(table, [s.label for s in loaded]))
    console.print(f"wrote {out.with_suffix('.md')}, .csv, .png")


@perf_app.command("eval")
def perf_eval(
    suite: str = typer.Option("libero_spatial", "--suite", "-s"),
    tasks: str = typer.Option("0,1", help="Task ids both loops run."),
    episodes: int = typer.Option(2, min=1, help="Episodes per task for both loops."),
    workers: int = typer.Option(2, min=1),
    max_steps: Optional[int] = typer.Option(None, min=1, help="Override max steps (both loops)."),
    out: Path = typer.Option(Path("results/perf/eval.json"), help="Where to write the measurements."),
):
    """Episodes/hour and env steps/s of our runner vs a naive peer-style loop, measured in one run."""
    from bench.perf import run_eval_benchmark
    from bench.sim.rendering import HeadlessGLError, configure_headless_gl

    s = _suite(suite)
    ids = _task_ids(s, tasks)
    try:
        configure_headless_gl()
    except HeadlessGLError as exc:
        fail(str(exc), code=1)
    result = run_eval_benchmark(s, ids, episodes, workers, max_steps, out, console=console)
    console.print_json(data={k: result[k] for k in ("ours_episodes_per_hour", "naive_episodes_per_hour", "ratio",
                                                     "ours_env_steps_per_s", "naive_env_steps_per_s")})
    console.print(f"written to {out}")


@perf_app.command("policy")
def perf_policy(
    configs: str = typer.Option("tiny,full", help="DiT4DiT configs to measure (random weights)."),
    batches: str = typer.Option("1,8", help="Batch sizes for the latency of one action chunk."),
    repeats: int = typer.Option(3, min=1, help="Timed repeats per measurement (median reported)."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    threads: Optional[int] = typer.Option(None, min=1, help="torch CPU threads."),
    out: Path = typer.Option(Path("results/perf/policy.json"), help="Where to write the measurements."),
):
    """Latency per action chunk, early exit vs a full video pass, and training samples/s."""
    import json as _json

    import torch

    from bench.models.dit4dit import CONFIGS
    from bench.models.perf import run_policy_benchmark

    names = [c.strip() for c in configs.split(",") if c.strip()]
    bad = [c for c in names if c not in CONFIGS]
    if bad:
        fail(f"unknown config(s) {', '.join(bad)}; valid: {', '.join(CONFIGS)}")
    try:
        sizes = [int(b) for b in batches.split(",")]
    except ValueError:
        fail(f"--batches takes comma-separated integers, got {batches!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        fail(f"--device {device}: no CUDA device here; valid: cpu")
    if threads:
        torch.set_num_threads(threads)
    result = run_policy_benchmark(names, sizes, repeats=repeats, device=device, log=console.print)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_json.dumps(result, indent=2))
    console.print(f"written to {out}")


@demos_app.command("generate")
def demos_generate(
    suite: str = typer.Option(..., "--suite", "-s"),
    tasks: Optional[str] = typer.Option(None, help="Task ids, e.g. 0,3-5 (default: all)."),
    per_task: int = typer.Option(50, min=1, help="Successful demos to keep per task."),
    out: Path = typer.Option(..., help="Output HDF5 file (appended to: a rerun tops it up)."),
    resolution: int = typer.Option(128, min=16, help="Image size of the recorded cameras."),
    workers: int = typer.Option(2, min=1),
    policy: str = typer.Option("scripted", help="The expert that acts."),
):
    """Run the scripted expert and keep its successful episodes as demos."""
    from bench.demos.generate import generate
    from bench.sim.rendering import HeadlessGLError, configure_headless_gl

    s = _suite(suite)
    ids = _task_ids(s, tasks)
    _policy(policy)  # validate the name early
    try:
        configure_headless_gl()
    except HeadlessGLError as exc:
        fail(str(exc), code=1)
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("kept {task.fields[kept]}"), TimeElapsedColumn(), console=console)
    counts = {"kept": 0, "n": 0}

    def on_episode(rec):
        counts["kept"] += int(rec.success)
        counts["n"] += 1
        progress.update(bar, completed=counts["n"], kept=counts["kept"])

    with progress:
        bar = progress.add_task(f"{s.name} demos", total=per_task * len(ids), kept=0)
        summary = generate(s, ids, per_task, out, resolution=resolution, workers=workers, policy_name=policy,
                           on_episode=on_episode)
    console.print_json(data=summary)


@demos_app.command("inspect")
def demos_inspect(
    path: Path = typer.Argument(..., help="A LIBERO-format HDF5 demo file."),
    sheet: Optional[Path] = typer.Option(None, help="Contact-sheet PNG (default: next to the file)."),
):
    """Counts, lengths and tasks of a demo file, and a contact sheet of first/last frames."""
    from bench.demos.inspect import contact_sheet, describe
    from bench.demos.libero_hdf5 import DemoFileError

    try:
        table = describe(path)
        png = contact_sheet(path, sheet or path.with_suffix(".png"))
    except DemoFileError as exc:
        fail(str(exc))
    t = Table("task", "demos", "mean len", "min", "max")
    for _, r in table.iterrows():
        t.add_row(str(r["task"])[:70], str(r["demos"]), f"{r['mean_len']:.0f}", str(r["min_len"]), str(r["max_len"]))
    console.print(t)
    console.print(f"{int(table['demos'].sum())} demos, {int(table['total_steps'].sum())} steps; contact sheet: {png}")


def main() -> None:  # pragma: no cover
    app(prog_name="bench")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
