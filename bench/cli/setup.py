"""`bench setup <simulator>`: make a simulator backend's own Python environment."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from bench.cli.common import app, console, fail


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
