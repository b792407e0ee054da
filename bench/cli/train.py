"""`bench train`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import TextColumn

from bench.cli.common import app, console, fail, progress_bar
from bench.core.artifacts import without_provenance


def parse_overrides(items: list[str]) -> dict:
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
    policy: str = typer.Option("dit4dit", "--policy", "-p", help="Trainable model (bench list policies: every "
                                                                 "registered model)."),
    config: str = typer.Option("tiny", "--config", "-c", help="The model's named config (dit4dit: tiny or full)."),
    data: list[str] = typer.Option(..., "--data", "-d", help="Demo file(s): LIBERO HDF5 or a LeRobot folder."),
    steps: int = typer.Option(1000, min=1, help="Optimizer steps."),
    out: Path = typer.Option(..., help="Run folder (checkpoint/, losses.csv, losses.png, train_state.pt)."),
    batch_size: int = typer.Option(16, min=1, help="Samples per step (per process)."),
    lr: float = typer.Option(3e-4, help="Peak learning rate of every parameter group."),
    group_lr: list[str] = typer.Option([], "--group-lr", help="NAME=LR for one parameter group (dit4dit: action, "
                                                               "video); repeatable."),
    warmup: int = typer.Option(100, min=0, help="Linear warmup steps."),
    checkpoint_every: int = typer.Option(250, min=1, help="Steps between checkpoints."),
    seed: int = typer.Option(0, help="Seed of the weights and of the batch order."),
    workers: int = typer.Option(0, min=0, help="DataLoader worker processes."),
    threads: Optional[int] = typer.Option(None, min=1, help="torch CPU threads (default: torch's choice)."),
    precision: str = typer.Option("fp32", help="fp32, or bf16 (autocast; fp32 weights): faster on CPUs and GPUs "
                                               "with bf16 units."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the model's repeated blocks (faster "
                                                          "steps after a few seconds of compiling; needs a C++ "
                                                          "compiler)."),
    attention: str = typer.Option("default", help="Attention kernel of the video DiT in training: default, or "
                                                  "math (the same function; faster backward in bf16 on CPU)."),
    frame_cache: bool = typer.Option(False, "--frame-cache", help="Read frames from a decoded, memory-mapped copy "
                                                                  "beside the demo file (built on first use)."),
    balance: str = typer.Option("windows", help="Sample every training window alike (windows) or every task alike "
                                "(tasks): bench demos inspect FILE shows each task's share under both."),
    demo_fraction: float = typer.Option(1.0, min=0.0, max=1.0, help="Train on this fraction of each task's demos "
                                                                     "(smaller fractions are subsets of larger)."),
    keep_checkpoints: str = typer.Option("", help="Steps whose checkpoints are also kept, as checkpoint_step<N> "
                                                 "(e.g. 2000,4000)."),
    init_from: Optional[Path] = typer.Option(None, help="A checkpoint whose --init-modules weights start this "
                                                         "training (e.g. a video-pretrained DiT4DiT)."),
    init_modules: str = typer.Option("video_dit", help="Comma-separated submodules --init-from sets."),
    log_with: Optional[str] = typer.Option(None, help="Also log to tensorboard or wandb (offline; under "
                                                        "<out>/trackers)."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its train state."),
    until: Optional[int] = typer.Option(None, min=1, help="Stop after this step with a checkpoint (the schedule "
                                        "stays --steps long; --resume continues it, as if never stopped)."),
    set_: list[str] = typer.Option([], "--set", help="Model config override KEY=VALUE (dotted keys reach nested "
                                                      "configs, e.g. video.feature_layer=2, gradient=joint)."),
):
    """Train a policy on demonstrations (runs on several GPUs under `accelerate launch`)."""
    import torch

    from bench.models.registry import load_models, model_config
    from bench.core.registry import UnknownNameError
    from bench.train.loop import TrainConfig, train as run_training

    models = load_models()
    try:
        entry = models.get(policy)
    except UnknownNameError:
        fail(f"unknown trainable policy {policy!r}; valid: {', '.join(models)}")
    if config not in entry.configs:
        fail(f"unknown config {config!r}; valid: {', '.join(entry.configs)}")
    for path in data:
        if not Path(path).exists():
            fail(f"--data {path}: no such file or folder")
    try:
        model_cfg = model_config(policy, config, **parse_overrides(set_))
    except (ValueError, KeyError, TypeError) as exc:
        fail(str(exc))
    lrs = {}
    for item in group_lr:
        name, _, value = item.partition("=")
        try:
            lrs[name] = float(value)
        except ValueError:
            fail(f"--group-lr takes NAME=LR (e.g. video=1e-4), got {item!r}")
    if threads:
        torch.set_num_threads(threads)
    try:
        keep = tuple(int(x) for x in keep_checkpoints.split(",") if x.strip())
    except ValueError:
        fail(f"--keep-checkpoints takes comma-separated steps, got {keep_checkpoints!r}")
    cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, group_lr=lrs, keep_checkpoints=keep,
                      warmup=min(warmup, steps), checkpoint_every=checkpoint_every, seed=seed, num_workers=workers,
                      precision=precision, compile=compile, attention=attention,
                      frame_cache=frame_cache, demo_fraction=demo_fraction, balance=balance,
                      init_from=str(init_from) if init_from else None, log_with=log_with,
                      init_modules=tuple(m.strip() for m in init_modules.split(",") if m.strip()))
    if init_from is not None and not (init_from / "model.safetensors").exists():
        fail(f"--init-from {init_from}: not a checkpoint folder (no model.safetensors)")
    if balance not in ("windows", "tasks"):
        fail(f"--balance {balance!r}: valid windows, tasks")
    if not 0 < demo_fraction <= 1:
        fail(f"--demo-fraction {demo_fraction} must be in (0, 1]")
    progress = progress_bar(TextColumn("{task.fields[losses]} {task.fields[rate]} samples/s"))

    first = {"step": None}

    def on_log(step: int, row: dict) -> None:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k != "samples_per_s")
        if first["step"] is None:  # time left is paced from the first logged step (a resumed run starts part done)
            first["step"] = step
            progress.reset(bar, completed=step, total=steps)
        progress.update(bar, completed=step, losses=shown, rate=f"{row['samples_per_s']:.1f}")

    with progress:
        bar = progress.add_task("train", total=steps, losses="loss -", rate="-")
        try:
            ckpt = run_training(model_cfg, data, out, cfg, resume=resume, on_log=on_log, until=until)
        except (FileExistsError, FileNotFoundError, ValueError) as exc:
            fail(str(exc))
    console.print(f"checkpoint: {ckpt}  (losses: {out / 'losses.csv'}, {out / 'losses.png'})")


@app.command()
def curves(
    sources: list[Path] = typer.Argument(..., exists=True, help="Training run folders (learning curves from their "
                                         "kept checkpoints), or losses.csv files (loss curves only)."),
    out: Path = typer.Option(..., help="Output prefix. Run folders: PREFIX.{md,csv,png,json} (success and action "
                                       "error), PREFIX/ (their records), PREFIX_losses.*; files: PREFIX.* (losses)."),
    labels: Optional[str] = typer.Option(None, help="Comma-separated names, one per source (default: folder names)."),
    loss: str = typer.Option("action", help="The loss column to plot (every model logs its action loss as "
                                            "'action')."),
    score: bool = typer.Option(False, "--score", help="First score the runs' kept checkpoints not scored yet "
                                                      "(cached under RUN/curve/; resumes)."),
    suite: str = typer.Option("libero_spatial", "--suite", "-s", help="Suite of the fixed episode set."),
    episodes: int = typer.Option(10, min=1, help="Episodes per task in the fixed set (its first initial states)."),
    tasks: Optional[str] = typer.Option(None, help="Task ids of the fixed set, e.g. 0,3-5 (default: all)."),
    heldout: list[Path] = typer.Option([], "--heldout", exists=True, dir_okay=False,
                                       help="Held-out demo file(s) for the action error (repeatable)."),
    windows: int = typer.Option(200, min=1, help="Held-out windows per point."),
    workers: int = typer.Option(2, min=1, help="Sim worker processes while scoring."),
):
    """Learning curves side by side: closed-loop success and held-out action error of each run's kept
    checkpoints against training samples and CPU-hours (with 95% intervals); or, given losses.csv files,
    one loss against step and training time."""
    from bench.train.curves import write_curves
    from bench.core.provenance import provenance

    runs = [p for p in sources if p.is_dir()]
    if runs and len(runs) != len(sources):
        fail("give either training run folders or losses.csv files, not both")
    names = [x.strip() for x in labels.split(",")] if labels else [
        (p if p.is_dir() else p.resolve().parent).resolve().name for p in sources]
    if len(names) != len(sources):
        fail(f"--labels has {len(names)} names for {len(sources)} sources")
    if len(set(names)) != len(names):
        fail(f"labels must differ, got {names}; pass --labels")
    for run in runs:
        if not (run / "train_config.json").exists() or not (run / "losses.csv").exists():
            fail(f"{run} is not a training run folder (no train_config.json and losses.csv)")
    losses = [r / "losses.csv" for r in runs] or sources
    loss_out = out.with_name(out.name + "_losses") if runs else out
    try:
        write_curves(losses, names, loss, loss_out, provenance())
    except ValueError as e:
        fail(str(e))
    console.print(f"wrote {loss_out.with_suffix('.png')}, .csv, .md")
    if not runs:
        console.print(without_provenance(loss_out.with_suffix(".md").read_text()))
        return
    from bench.analysis.learning import CurveSpec, write_learning_curves

    spec = CurveSpec(suite=suite, episodes=episodes, tasks=tasks, heldout=tuple(str(h) for h in heldout),
                     windows=windows, workers=workers)
    if score:
        _score_runs(runs, names, spec)
    try:
        write_learning_curves(runs, names, out, spec, provenance())
    except ValueError as e:
        fail(str(e))
    console.print(without_provenance(out.with_suffix(".md").read_text()))
    console.print(f"wrote {out.with_suffix('.png')}, .csv, .json, .md and the records under {out}/")


def _score_runs(runs: list[Path], names: list[str], spec) -> None:
    """Score every run's unscored points (each in a worker process), with a progress bar per point."""
    from bench.ablate.jobs import JobFailed
    from bench.studies.catalog import score_runs

    progress = progress_bar()
    bars: dict[str, int] = {}

    def on_progress(what: str, done: int, total: int) -> None:
        if what not in bars:
            bars[what] = progress.add_task(what, total=total)
        progress.update(bars[what], completed=done)

    for run, name in zip(runs, names):
        from bench.analysis.learning import points

        if not points(run):
            console.print(f"[yellow]{run}: no kept checkpoints yet (bench train --keep-checkpoints)[/]")
    with progress:
        try:
            score_runs(runs, names, spec, log=lambda line: progress.console.print(line, highlight=False),
                       on_progress=on_progress)
        except JobFailed as e:
            fail(str(e))



@app.command()
def bundle(run: Path = typer.Argument(..., exists=True, file_okay=False, help="A finished training run folder.")):
    """Ship a trained model: its checkpoint into the package (what bench run loads by default for its suite),
    its loss curve and training config into results/<model>/."""
    from bench.train.loop import bundle_run

    try:
        dst, curves = bundle_run(run)
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))
    console.print(f"bundled {dst}; curves and config in {curves}. Its evaluations are now stale: bench results --plan")


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., exists=True, file_okay=False, help="A checkpoint folder."),
    out: Path = typer.Option(..., help="Folder for the copy (must not exist or be empty)."),
    dtype: str = typer.Option("bf16", help="Weight storage: bf16 (half the size) or fp32."),
):
    """Copy a checkpoint with its weights stored as DTYPE (how small baselines ship inside the package)."""
    from bench.train.loop import export_checkpoint

    try:
        dst = export_checkpoint(checkpoint, out, dtype)
    except (ValueError, FileExistsError, FileNotFoundError) as e:
        fail(str(e))
    size = sum(f.stat().st_size for f in dst.iterdir()) / 2**20
    console.print(f"wrote {dst} ({size:.1f} MiB, {dtype} weights)")
