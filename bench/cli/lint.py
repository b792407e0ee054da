"""`bench lint`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from bench.cli.common import app, console, fail, load_suite


@app.command()
def lint(
    policy: str = typer.Option(..., "--policy", "-p", help="Policy name (bench list policies)."),
    checkpoint: Optional[str] = typer.Option(None, help="Policy checkpoint path."),
    policy_arg: list[str] = typer.Option([], "--policy-arg", help="NAME=VALUE for the policy (repeatable)."),
    suite: str = typer.Option("libero_spatial", "--suite", "-s", help="The suite whose protocol and demos to use."),
    demos: list[Path] = typer.Option([], "--demos", help="Demo file(s) to replay (default: the suite's held-out "
                                                         "demo set; bench demos sets)."),
    windows: int = typer.Option(24, min=4, help="Demo windows to ask the policy about."),
    camera: bool = typer.Option(True, "--camera/--no-camera", help="Also ask on frames rotated 180 degrees (the "
                                                                   "camera check; twice the calls)."),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
):
    """Check a policy's conventions against the suite's demos before running episodes: camera orientation,
    gripper sign and range, action scale, rotations a turn off, chunk length and layouts. Exit 1 on a problem."""
    from bench.eval import EvalError
    from bench.eval.evaluate import build_policy
    from bench.eval.lint import lint_policy

    load_suite(suite)
    for d in demos:
        if not d.exists():
            fail(f"--demos {d}: no such file")
    if not demos:
        from bench.eval.demo_sets import SETS

        held = SETS.get(f"{suite}_heldout")
        if held is None or not held.path.exists():
            fail(f"no held-out demos of {suite} on this machine: pass --demos FILE"
                 + (f" or make them with `bench demos make {held.name}`" if held else ""))
        demos = [held.path]
    try:
        pol = build_policy(policy, checkpoint=checkpoint, policy_args=list(policy_arg))
    except EvalError as exc:
        fail(str(exc))
    report = lint_policy(pol, policy, suite, demos, windows=windows, camera=camera)
    if as_json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        marks = {True: "[green]ok[/]", False: "[bold red]problem[/]", None: "[yellow]unsure[/]"}
        console.print(f"{policy} on {report.windows} windows of {', '.join(d.name for d in demos)}:")
        for f in report.findings:
            console.print(f"  {marks[f.ok]} {f.check}: {f.detail}" + (f"\n      fix: {f.fix}" if f.ok is False else ""))
    if report.problems:
        raise typer.Exit(1)
