"""`bench demos`: demonstrations in LIBERO's HDF5 format."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import TextColumn
from rich.table import Table

from bench.cli.common import (build_policy, console, demos_app, err, fail, headless_gl, load_suite, parse_tasks,
                              progress_bar)


@demos_app.command("generate")
def demos_generate(
    suite: str = typer.Option(..., "--suite", "-s"),
    tasks: Optional[str] = typer.Option(None, help="Task ids, e.g. 0,3-5 (default: all)."),
    per_task: int = typer.Option(50, min=1, help="Successful demos to keep per task."),
    out: Path = typer.Option(..., help="Output HDF5 file (appended to: a rerun tops it up)."),
    resolution: int = typer.Option(128, min=16, help="Image size of the recorded cameras."),
    workers: int = typer.Option(2, min=1),
    policy: str = typer.Option("scripted", help="The expert that acts."),
    pixel_path: str = typer.Option("render_resize_uint8", help="How frames are made: render_resize_uint8 (the "
                                   "policy's render, resized as models resize observations) or native_render "
                                   "(rendered at --resolution, as demos were before)."),
    frame_every: int = typer.Option(1, min=1, help="Record camera frames on every K-th step only (1: every step, "
                                    "LIBERO's layout). Rendering is most of a demo's cost on a CPU; states and "
                                    "actions are kept for every step."),
    first_attempt: int = typer.Option(0, min=0, help="Number attempts from N (a held-out set: demos a training set "
                                                     "generated from 0 cannot contain)."),
    retry_unsolved: bool = typer.Option(False, help="Attempt again the tasks an earlier run on this file kept no "
                                        "demo of (skipped otherwise: the same attempts fail the same way)."),
):
    """Run the scripted expert and keep its successful episodes as demos."""
    from bench.eval.demos import generate
    from bench.demos.libero_hdf5 import demo_counts, file_unsolved

    s = load_suite(suite)
    ids = parse_tasks(s, tasks)
    build_policy(policy)  # validate the name early
    headless_gl()
    progress = progress_bar(TextColumn("kept {task.fields[kept]}"))
    counts = {"kept": 0, "n": 0}

    def on_episode(rec):
        counts["kept"] += int(rec.success)
        counts["n"] += 1
        progress.update(bar, completed=counts["n"], kept=counts["kept"])

    with progress:
        have = demo_counts(out)  # a rerun tops the file up: the bar counts what is left
        skipped = set() if retry_unsolved else set(file_unsolved(out))
        left = sum(max(0, per_task - have.get(s.task(t).name, 0)) for t in ids if s.task(t).name not in skipped)
        bar = progress.add_task(f"{s.name} demos", total=left, kept=0)
        try:
            summary = generate(s, ids, per_task, out, resolution=resolution, workers=workers, policy_name=policy,
                               on_episode=on_episode, first_attempt=first_attempt, pixel_path=pixel_path,
                               frame_every=frame_every, retry_unsolved=retry_unsolved)
        except ValueError as exc:  # bad pixel path, or a file of another pixel path
            fail(str(exc))
    console.print_json(data=summary)
    if summary["unsolved"]:
        err.print(f"[yellow]warning:[/] the {policy} policy kept no demo of {', '.join(summary['unsolved'])} in a "
                  "whole round of attempts (in this run or an earlier one on this file); they were not topped up, so the "
                  "file has none of them (--retry-unsolved attempts them again)", highlight=False)


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
    from bench.demos.dataset import LiberoDemoDataset, WindowSpec

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:  # normalisation statistics are not needed here
        ds = LiberoDemoDataset([path], WindowSpec(n_future=0), stats_path=Path(tmp) / "stats.json")
        shares = ds.balance().set_index("task")
        ds.close()
    t = Table("task", "demos", "mean len", "min", "max", "windows", "share: windows", "share: tasks")
    for _, r in table.iterrows():
        b = shares.loc[r["task"]] if r["task"] in shares.index else None
        t.add_row(str(r["task"]), str(r["demos"]), f"{r['mean_len']:.0f}", str(r["min_len"]), str(r["max_len"]),
                  *((str(int(b["windows"])), f"{100 * b['share_windows']:.1f}%", f"{100 * b['share_tasks']:.1f}%")
                    if b is not None else ("", "", "")))
    console.print(t)
    console.print(f"{int(table['demos'].sum())} demos, {int(table['total_steps'].sum())} steps; contact sheet: {png}. "
                  "Training samples every window alike by default (bench train --balance tasks: every task alike).")


@demos_app.command("sets")
def demos_sets():
    """The named demo sets (what trainings, ablations and probes read): where each lives and what is left to make."""
    from bench.cli.common import name_table
    from bench.eval.demo_sets import SETS

    rows = [{"set": s.name, "demos left": s.left(), "about (min, 2 cores)": s.minutes, "file": str(s.path),
             "what": s.what} for s in SETS.values()]
    console.print(name_table(rows, names=("set",)))


@demos_app.command("make")
def demos_make(
    names: list[str] = typer.Argument(..., help="Demo sets to make or top up (bench demos sets lists them)."),
    workers: int = typer.Option(2, min=1, help="Sim worker processes."),
):
    """Make the named demo sets (a rerun tops a file up: a stopped one continues)."""
    from bench.eval.demo_sets import get_set

    try:
        sets = [get_set(n) for n in names]
    except ValueError as exc:
        fail(str(exc))
    for s in sets:
        make_with_progress(s.name, workers)


def make_with_progress(name: str, workers: int = 2) -> None:
    """One demo set made under a progress bar, after a line saying what and about how long."""
    from bench.eval.demo_sets import get_set, make_set
    from bench.sim.rendering import HeadlessGLError

    s = get_set(name)
    left = s.left()
    if not left:
        console.print(f"{s.name}: complete ({s.path})")
        return
    console.print(f"making demo set {s.name}: {left} demos left of {s.what} -> {s.path} (about "
                  f"{s.minutes * left / (s.per_task * _tasks(s.suite)):.0f} min on 2 cores; stop and rerun to continue)")
    progress = progress_bar(TextColumn("kept {task.fields[kept]}"))
    counts = {"kept": 0}

    def on_episode(rec):
        counts["kept"] += int(rec.success)
        progress.update(bar, completed=counts["kept"], kept=counts["kept"])

    with progress:
        bar = progress.add_task(f"{s.name} demos", total=left, kept=0)
        try:
            summary = make_set(s.name, workers, on_episode=on_episode)
        except HeadlessGLError as exc:
            fail(str(exc), code=1)
        except ValueError as exc:
            fail(str(exc))
    if summary["unsolved"]:
        err.print(f"[yellow]warning:[/] no demo of {', '.join(summary['unsolved'])} in a whole round of attempts",
                  highlight=False)


def _tasks(suite: str) -> int:
    from bench.sim.suites import get_suite

    return len(get_suite(suite).tasks())
