"""Evaluation commands: run, list, summarize, compare, verify."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from bench.cli.common import (MATH_HELP, app, console, err, fail, load_suite, name_table, print_table,
                               run_with_progress)
from bench.core.registry import UnknownNameError
from bench.core.mathmode import DEFAULT_MODE


@app.command()
def run(
    suite: str = typer.Option(..., "--suite", "-s", help="Suite name (bench list suites)."),
    policy: Optional[str] = typer.Option(None, "--policy", "-p", help="Policy name (bench list policies; default: "
                                                                      "the bundled checkpoint trained on --suite)."),
    tasks: Optional[str] = typer.Option(None, help="Task ids, e.g. 0,3-5 (default: all)."),
    episodes: Optional[int] = typer.Option(None, min=1, help="Episodes per task (default: the suite's, 50)."),
    workers: int = typer.Option(2, min=1, help="Sim worker processes."),
    out: Optional[Path] = typer.Option(None, help="Run directory (default: runs/<suite>/<policy>/<time>)."),
    resume: bool = typer.Option(False, help="Continue the run in --out (default: the latest run of suite+policy)."),
    video: int = typer.Option(0, min=0, help="Save an mp4 of the first N episodes of each task."),
    checkpoint: Optional[str] = typer.Option(None, help="Policy checkpoint path."),
    demos: Optional[str] = typer.Option(None, help="Demo file (LIBERO HDF5) for the replay policy."),
    policy_arg: list[str] = typer.Option([], "--policy-arg", help="NAME=VALUE for the policy (repeatable; bench "
                                                                  "list policies shows each policy's)."),
    seed: Optional[int] = typer.Option(None, help="Override the protocol's seed (changes the protocol hash)."),
    max_steps: Optional[int] = typer.Option(None, min=1, help="Override max steps (changes the protocol hash)."),
    episode_timeout: float = typer.Option(900.0, min=1.0, help="Seconds before an episode is abandoned."),
    publish: Optional[Path] = typer.Option(None, help="Also copy the summary and records to DIR/<suite>_*."),
    math: str = typer.Option(DEFAULT_MODE, "--math", help=MATH_HELP),
    executor: str = typer.Option("local", help="Where sim workers run: local (processes here) or ray (actors on a "
                                 "Ray cluster; in the checkout: pip install -e '.[ray]')."),
    address: Optional[str] = typer.Option(None, help="Ray cluster address for --executor ray (default: start a "
                                          "local one; 'auto': the cluster this machine belongs to)."),
    policy_gpus: Optional[float] = typer.Option(None, "--policy-gpus", min=0.0,
                                                help="With --executor ray: run the policy in a Ray actor asking for "
                                                "this many GPUs (0: an actor on a CPU node); it runs on cuda when "
                                                "above 0 (needs --math native)."),
    device: Optional[str] = typer.Option(None, help="Torch device of a trained policy (default cpu; e.g. cuda, "
                                         "which needs --math native)."),
    lint: bool = typer.Option(True, "--lint/--no-lint", help="First check the policy's conventions on the suite's "
                              "held-out demos when this machine has them (bench lint); problems print as warnings."),
):
    """Evaluate a policy on a suite on its simulator."""
    from bench.eval import EvalError, EvalRequest, prepare

    req = EvalRequest(suite=suite, policy=policy, checkpoint=checkpoint, tasks=tasks, episodes=episodes,
                      workers=workers, out=out, resume=resume, video=video, demos=demos, policy_args=policy_arg,
                      seed=seed, max_steps=max_steps, episode_timeout_s=episode_timeout, math=math,
                      executor=executor, address=address, policy_gpus=policy_gpus, device=device, publish=publish,
                      lint=lint)
    try:
        ev = prepare(req, log=lambda line: console.print(line, highlight=False))
    except (EvalError, UnknownNameError) as exc:  # the request: exit 2
        fail(str(exc))
    except ValueError as exc:  # the run folder holds another run, bad --episodes
        fail(str(exc))
    except RuntimeError as exc:  # this machine cannot run it (math mode, headless GL, a policy actor)
        fail(str(exc), code=1)
    console.print(ev.description, highlight=False)
    result = run_with_progress(len(ev.queue), ev.run, ev.suite.name)
    print_table(result.table)
    for note in result.notes:
        console.print(f"[bold yellow]{note}[/]")
    console.print(f"records: {result.out / 'episodes.jsonl'}; summary: {result.out / 'summary.md'}")
    if publish is not None:
        console.print(f"published to {publish}/{result.suite}_summary.*")


class ListWhat(str, Enum):
    suites = "suites"
    tasks = "tasks"
    policies = "policies"


@app.command("list")
def list_(what: ListWhat = typer.Argument(..., help="suites, tasks or policies"),
          suite: Optional[str] = typer.Option(None, "--suite", "-s", help="Suite whose tasks to list."),
          as_json: bool = typer.Option(False, "--json", help="One JSON list of records (for scripts).")):
    """List registered suites, a suite's tasks, or policies. Names are never cut: other columns wrap."""
    if what is ListWhat.suites:
        from bench.sim.splits import split_of
        from bench.sim.suites import SUITES

        rows = []
        for name in SUITES:
            st = SUITES.get(name)
            split = split_of(name)
            rows.append({"suite": name, "aliases": ", ".join(SUITES.aliases_of(name)), "simulator": st.backend,
                         "max steps": st.protocol.max_steps, "protocol": f"{st.protocol.name}#{st.protocol.hash()}",
                         "split": f"{split['kind']} of {split['trained_on']}" if split else "",
                         "description": st.description})
    elif what is ListWhat.tasks:
        if suite is None:
            fail("bench list tasks needs --suite (see bench list suites)")
        s = load_suite(suite)
        rows = [{"id": task.task_id, "task": task.name, "instruction": task.language, "tags": ", ".join(task.tags)}
                for task in s.tasks()]
    else:
        from bench.models.registry import load_models, parameter_count
        from bench.policies import load_all

        reg, models = load_all(), load_models()
        rows = []
        for name in reg:
            e = reg.get(name)
            params = ", ".join(f"{c} {parameter_count(name, c) / 1e6:.2f} M" for c in models.get(name).configs
                               ) if name in models else ""
            opts = " ".join(f"--{o}" for o in e.options)
            args = "\n".join(f"--policy-arg {a.describe()}" for a in e.args)
            rows.append({"policy": name, "options": "\n".join(x for x in (opts, args) if x),
                         "trainable parameters": params, "description": e.help})
    if as_json:
        import json as _json

        print(_json.dumps(rows, indent=2))
        return
    console.print(name_table(rows, names=("suite", "task", "policy")))


@app.command()
def summarize(run_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="A run directory.")):
    """Recompute summary.{md,csv,json,png} of a run directory from its episodes.jsonl (the provenance
    stays that of the commands that ran the episodes)."""
    from bench.core.provenance import provenance
    from bench.eval.results import EmptyRunDir, summarize_dir

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
    note: str = typer.Option("", help="A paragraph printed under the title (what the runs are, what they share)."),
):
    """Per-task success of several runs side by side with 95% intervals; for two, a one-sided
    Fisher exact p that the first beats the second."""
    from bench.analysis.compare import load_summary, math_warning, to_markdown, write_comparison
    from bench.core.provenance import provenance

    names = [x.strip() for x in labels.split(",")] if labels else [None] * len(summaries)
    if len(names) != len(summaries):
        fail(f"--labels has {len(names)} names for {len(summaries)} summaries")
    try:
        loaded = [load_summary(p, n) for p, n in zip(summaries, names)]
        table = write_comparison(loaded, out, provenance(), note)
    except ValueError as e:
        fail(str(e))
    typer.echo(to_markdown(table, [s.label for s in loaded]))
    warning = math_warning(loaded)
    if warning:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print(f"wrote {out.with_suffix('.md')}, .csv, .png")


@app.command()
def verify(
    source: Path = typer.Argument(..., exists=True, help="A run directory, or an episodes .jsonl file."),
    episodes: int = typer.Option(10, min=1, help="Episodes to rerun, spread over tasks (init 0 of each task first)."),
    all_: bool = typer.Option(False, "--all", help="Rerun every recorded episode."),
    workers: int = typer.Option(2, min=1, help="Sim worker processes."),
    out: Optional[Path] = typer.Option(None, help="Where the reruns and verify.{md,json} go "
                                                  "(default: runs/verify/<time>)."),
    math: Optional[str] = typer.Option(None, "--math", help="Float math of the rerun (default: the records' mode). "
                                                           + MATH_HELP),
    checkpoint: Optional[Path] = typer.Option(None, help="The checkpoint (or demo file) the records used, when it "
                                              "is no longer at the path they name; its hash must match theirs."),
):
    """Rerun recorded episodes and report, per episode, exact (same final state), same outcome only, or
    different. Exit code: 0 all exact, 1 some only the same outcome, 3 some different, 4 some errored."""
    from bench.core.mathmode import MathModeError
    from bench.eval.verify import EXIT_CODES, VerifyError, VerifyRequest, prepare_verify

    req = VerifyRequest(source=source, episodes=None if all_ else episodes, workers=workers, out=out, math=math,
                        checkpoint=checkpoint)
    try:
        ver = prepare_verify(req)
    except VerifyError as exc:
        fail(str(exc))
    except MathModeError as exc:
        fail(str(exc), code=1)
    console.print(f"verifying {len(ver.queue)} of {len(ver.source.records)} episodes of {source} "
                  f"({ver.source.suite.name} x {ver.source.policy}) -> {ver.out}\n{ver.expect}")
    verdicts, report = run_with_progress(len(ver.queue), ver.run, "verify")
    t = Table("episode", "verdict", "success rec/rerun", "steps rec/rerun", "final state rec/rerun", "note")
    colour = {"exact": "green", "outcome": "yellow", "different": "red", "error": "red"}
    for v in verdicts:
        t.add_row(v.key, f"[{colour[v.verdict]}]{v.verdict}[/]", f"{v.recorded_success}/{v.rerun_success}",
                  f"{v.recorded_steps}/{v.rerun_steps}", f"{v.recorded_state}/{v.rerun_state}", v.note)
    console.print(t)
    counts = ", ".join(f"{n} {c}" for n, c in report["counts"].items())
    console.print(f"[bold]{report['overall']}[/]: {counts}. Report: {ver.out / 'verify.md'}")
    raise typer.Exit(EXIT_CODES[report["overall"]])
