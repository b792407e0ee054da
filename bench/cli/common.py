"""What every command group shares: the app, consoles, and argument checks that exit 2 naming the
valid choices."""

from __future__ import annotations

import sys
import time
from typing import Optional

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table

from bench.core.registry import UnknownNameError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Benchmark and ablate robot manipulation policies.")
perf_app = typer.Typer(no_args_is_help=True, help="Throughput and latency benchmarks.")
app.add_typer(perf_app, name="perf")
demos_app = typer.Typer(no_args_is_help=True, help="Demonstrations in LIBERO's HDF5 format.")
app.add_typer(demos_app, name="demos")
analyze_app = typer.Typer(no_args_is_help=True, help="Offline analyses of checkpoints on demonstrations.")
app.add_typer(analyze_app, name="analyze")
probe_app = typer.Typer(no_args_is_help=True, help="What a trained checkpoint relies on.")
app.add_typer(probe_app, name="probe")
console = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True)

def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def load_suite(name: str):
    from bench.sim.suites import get_suite

    try:
        return get_suite(name)
    except UnknownNameError as exc:
        fail(str(exc))


def parse_tasks(suite, tasks: Optional[str]) -> list[int]:
    from bench.sim.suites import parse_task_ids

    try:
        return parse_task_ids(tasks, len(suite.tasks()))
    except ValueError as exc:
        fail(f"{exc} (suite {suite.name})")


def build_policy(name: str, **options):
    """A registered policy, or exit 2 naming the valid choices."""
    from bench.eval.evaluate import EvalError, build_policy as build

    try:
        return build(name, **options)
    except EvalError as exc:
        fail(str(exc))


def name_table(rows: list[dict], names: tuple[str, ...]) -> Table:
    """A table whose name columns (what a user types) keep their full width and never wrap or get cut."""
    columns = list(rows[0]) if rows else list(names[:1])
    t = Table()
    for c in columns:
        if c in names:
            t.add_column(c, no_wrap=True, min_width=max(len(c), *(len(str(r[c])) for r in rows)))
        else:
            t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*(str(r[c]) for c in columns))
    return t


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


def canonical_policy(name: str) -> str:
    from bench.eval.evaluate import canonical_policy as canonical

    return canonical(name)


MATH_HELP = ("Float math of the policy: portable (the same bits on any x86-64 CPU with AVX2: ATen's AVX2 kernels, "
             "MKL's COMPATIBLE branch, one thread) or native (torch's defaults: fastest, exact reruns on the same "
             "CPU kind only).")


def headless_gl():
    """Set up headless rendering for the simulator (returns what was chosen), or exit 1 saying what is missing."""
    from bench.sim.rendering import HeadlessGLError, configure_headless_gl

    try:
        return configure_headless_gl()
    except HeadlessGLError as exc:
        fail(str(exc), code=1)


def check_executor(executor: str) -> None:
    """--executor names a known executor, and Ray is installed when it is ray (or exit 2 saying so)."""
    from bench.eval.evaluate import EvalError, check_executor as check

    try:
        check(executor)
    except EvalError as exc:
        fail(str(exc))


def set_math(mode: str) -> None:
    """Put a math mode in force for this process and its sim workers; call before torch is imported."""
    from bench.core.mathmode import MathModeError, apply

    try:
        apply(mode)
    except MathModeError as exc:
        fail(str(exc))


class LineProgress(Progress):
    """rich's Progress for output that is not a terminal (a `nohup ... > log` run), where rich would draw the
    bar only at the end: each task prints a plain line on its first update, then at most every `every_s`
    seconds, and once when it completes. A task restarted after completing (one bar reused for job after
    job, as `bench ablate` does) prints again."""

    def __init__(self, *columns, every_s: float = 60.0, **kwargs) -> None:
        super().__init__(*columns, disable=True, **kwargs)
        self.every_s = every_s
        self._printed: dict = {}  # task id -> monotonic time of its last line, or "done"
        self._origin: dict = {}  # task id -> (completed, elapsed) at its first update: a resumed task's start

    def add_task(self, *args, **kwargs):
        task_id = super().add_task(*args, **kwargs)
        self._origin[task_id] = (kwargs.get("completed", 0), 0.0)
        return task_id

    def reset(self, task_id, **kwargs) -> None:
        """Restart the task's clock (and its pace) from `completed`: a resumed training calls it on its first step."""
        super().reset(task_id, **kwargs)
        self._origin[task_id] = (self._tasks[task_id].completed, 0.0)
        self._printed.pop(task_id, None)

    def seconds_left(self, task) -> float | None:
        """From the mean pace since the task's first update, not rich's 30-second window: sim workers finish
        episodes in bursts, and a line a minute would swing with them. A task reset part done (a resumed
        training) is paced from there."""
        done0, elapsed0 = self._origin.get(task.id, (0, 0.0))
        done, spent = task.completed - done0, (task.elapsed or 0.0) - elapsed0
        if done <= 0 or task.total is None or spent <= 0:
            return None
        return spent * (task.total - task.completed) / done

    def update(self, task_id, **kwargs) -> None:
        super().update(task_id, **kwargs)
        task, now, last = self._tasks[task_id], time.monotonic(), self._printed.get(task_id)
        done = task.total is not None and task.completed >= task.total
        if last == "done" and not done:  # restarted: a new job on the same bar
            last = None
            self._origin[task_id] = (task.completed, task.elapsed or 0.0)  # the new job's pace starts here
        if last == "done" or not (done or last is None or now - last >= self.every_s):
            return
        self._printed[task_id] = "done" if done else now
        fields = "".join(f" {k} {v}" for k, v in task.fields.items())
        total = "?" if task.total is None else f"{task.total:g}"
        left = self.seconds_left(task)
        eta = "" if left is None or done else f", about {left / 60:.0f} min left"
        self.console.print(f"{task.description}: {task.completed:g}/{total}{fields} "
                           f"({(task.elapsed or 0) / 60:.1f} min{eta})", highlight=False, markup=False)


def progress_bar(*columns, console: Console = console) -> Progress:
    """The one progress bar of every long command: description, bar, done/total, then `columns`, elapsed and
    time left; a line a minute instead when the output goes to a file."""
    cols = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), *columns, TimeElapsedColumn(),
            TimeRemainingColumn())
    return Progress(*cols, console=console) if console.is_terminal else LineProgress(*cols, console=console)


def run_with_progress(total: int, run, label: str):
    """`run(on_episode)` with a progress bar over its `total` episodes (successes so far, time left); returns
    what `run` returns. A simulator that is not set up exits 2 naming the set-up step."""
    progress = progress_bar(TextColumn("success {task.fields[succ]}"))
    counts = {"succ": 0}

    def on_episode(rec):
        counts["succ"] += int(rec.success)
        progress.update(bar, advance=1, succ=counts["succ"])
        if rec.error:
            progress.console.print(f"[yellow]{rec.key}: {rec.error_kind}: {rec.error.splitlines()[0]}[/]")

    from bench.sim.backend import BackendNotReady

    with progress:
        bar = progress.add_task(label, total=total, succ=0)
        try:
            return run(on_episode)
        except BackendNotReady as exc:  # the simulator's environment or assets are missing: say which step
            progress.stop()
            fail(str(exc))
