"""`bench train`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from bench.cli.common import app, console, fail


TRAINABLE = ("dit4dit",)


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
        model_cfg = make_config(config, **parse_overrides(set_))
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
