"""`bench setup <simulator>`: make a simulator backend's own Python environment."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from bench.cli.common import app, console, fail, headless_gl


class Simulator(str, Enum):
    robocasa_gr1 = "robocasa-gr1"


@app.command()
def setup(
    simulator: Simulator = typer.Argument(..., help="The simulator whose environment to make."),
    assets: Optional[Path] = typer.Option(None, help="Directory of the downloaded object assets (RoboCasa's "
                                          "objaverse/, lightwheel/, ... registries) to point the simulator at."),
    standin: bool = typer.Option(False, "--standin", help="Write and use a generated stand-in asset pack "
                                 "(primitive shapes under the official file names; for trying the path offline: "
                                 "its results are not comparable to anyone's)."),
    venv: Optional[Path] = typer.Option(None, help="Where to make the environment (default: under "
                                        "~/.cache/dit4dit-bench/backends)."),
    python: Optional[str] = typer.Option(None, help="Base interpreter for the venv (default: this one)."),
):
    """Create the simulator's Python environment, install it, and record where it is (runs use it)."""
    from bench.sim.robocasa_gr1.assets import AssetsError
    from bench.sim.robocasa_gr1.setup import SetupError, setup as setup_gr1

    if assets is not None and not standin and not assets.is_dir():
        fail(f"--assets {assets}: no such directory (download RoboCasa's object assets first, or pass --standin)")
    try:
        record = setup_gr1(venv=venv, python=python, assets=assets, standin=standin,
                           say=lambda m: console.print(m, highlight=False))
    except (SetupError, AssetsError) as exc:
        fail(str(exc))
    if record["assets"] is None:
        console.print("[yellow]no assets yet:[/] the tasks need RoboCasa's object assets; download them and run "
                      "`bench setup robocasa-gr1 --assets DIR` (or `--standin` to try the path offline)")
    console.print(f"[green]ready:[/] bench run --suite robocasa_gr1 (python {record['python']})", highlight=False)


@app.command("init-states")
def init_states(
    suite: str = typer.Option(..., "--suite", "-s", help="One of our own LIBERO suites (bench list suites)."),
    n: int = typer.Option(50, min=1, help="Initial states per task."),
    seed: int = typer.Option(0, help="Base seed (task i samples from seed + i)."),
    tasks: Optional[str] = typer.Option(None, help="Task ids, e.g. 0,3-5 (default: all)."),
):
    """Sample, check (no interpenetration, at rest after the wait steps) and save a suite's initial states."""
    from bench.cli.common import load_suite, parse_tasks, progress_bar
    from bench.sim.libero.init_states import write_suite_init_states

    s = load_suite(suite)
    if s.backend != "libero" or not s.source.startswith("data:"):
        fail(f"--suite {s.name}: its initial states come with its simulator; init-states makes them for our own "
             "LIBERO suites (those whose source is data:...)")
    ids = parse_tasks(s, tasks)
    headless_gl()
    with progress_bar() as progress:
        bars: dict[str, int] = {}

        def tick(task: str, kept: int, tried: int) -> None:
            if task not in bars:
                bars[task] = progress.add_task(task[:50], total=n)
            progress.update(bars[task], completed=kept, description=f"{task[:40]} ({tried} tried)")

        try:
            report = write_suite_init_states(s, n, seed, ids, progress=tick)
        except RuntimeError as exc:
            fail(str(exc), code=1)
    for name, info in report["tasks"].items():
        console.print(f"{name}: {info['attempts']} candidates, rejected {info['rejected'] or 'none'}", highlight=False)
