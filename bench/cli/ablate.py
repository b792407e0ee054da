"""`bench ablate`: run the paper's ablations (specs in ablations/*.yaml) into tables."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Optional

import typer

from bench.cli.common import app, check_executor, console, fail, progress_bar

LAST = "last.json"  # in the job cache (--root): the ablations of the last `bench ablate` on that cache
COMMITTED_SCORES = Path("results/ablations/scores")


def _flags() -> dict[str, str]:
    """--flag -> spec name, from the spec files (a new spec file is a new flag)."""
    from bench.ablate.spec import available, load_spec

    return {"--" + load_spec(p).flag: name for name, p in available().items()}


def _help() -> str:
    try:
        flags = ", ".join(sorted(_flags()))
    except Exception as exc:  # a broken spec file must not break `bench --help`
        flags = f"(specs unreadable: {exc})"
    return ("Run ablations into tables: each flag is one spec in ablations/ (" + flags + "). Prints the plan, "
            "the variant count and the estimated time first; every job is cached by its hash, so a stopped "
            "ablation continues where it stopped when run again.")


@app.command(help=_help(), context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def ablate(
    ctx: typer.Context,
    spec: list[Path] = typer.Option([], "--spec", help="A spec file (YAML, as in ablations/); repeatable."),
    list_: bool = typer.Option(False, "--list", help="List the ablations and exit."),
    budget: str = typer.Option("small", help="smoke (seconds, proves the pipeline), small (about six hours of "
                                             "a 2-core CPU per ablation) or full (the official scale, GPUs: "
                                             "with --plan, its GPU-hours)."),
    out: Optional[Path] = typer.Option(None, help="Where <name>.csv/.md/.png go (default: results/ablations, "
                                                  "runs/ablations/smoke for the smoke budget)."),
    resume: bool = typer.Option(False, help="Run the ablations of the last `bench ablate` on this --root again, "
                                            "with its budget and folders (jobs already done are reused either "
                                            "way)."),
    data: Optional[Path] = typer.Option(None, help="Training demos (default: the suite's named demo set, made "
                                                   "first if missing: bench demos sets)."),
    heldout: Optional[Path] = typer.Option(None, help="Held-out demos for the offline score (default: the suite's "
                                                      "held-out demo set, made first if missing)."),
    plan_only: bool = typer.Option(False, "--plan", help="Print the plan and estimate, run nothing."),
    cluster_gpus: int = typer.Option(64, min=1, help="GPUs of the Ray cluster a GPU budget's plan is spread on "
                                                     "(the official recipe trains on 64)."),
    root: Path = typer.Option(Path("runs/ablations"), help="The job cache (on storage every node sees, with "
                                                           "--executor ray)."),
    scores: Optional[Path] = typer.Option(None, help="Keep each variant's scores (eval/, offline/: kB) here "
                                          "instead of in --root: commit this folder and any machine reuses the "
                                          "finished variants without their checkpoints."),
    executor: str = typer.Option("local", help="Where jobs run: local (one after another, here) or ray (each a "
                                 "Ray task with the resources its budget names; in the checkout: pip install -e '.[ray]')."),
    address: Optional[str] = typer.Option(None, help="Ray cluster address for --executor ray (default: start a "
                                          "local one; 'auto': the cluster this machine belongs to)."),
    from_scores: bool = typer.Option(False, "--from-scores", help="Rebuild the table from its kept scores alone "
                                     f"(--scores, default {COMMITTED_SCORES}): seconds, with no demos, checkpoints or "
                                     "simulator; fails, naming them, if any variant's scores are missing."),
):
    from bench.ablate.spec import BUDGETS, SpecError, available, load_spec

    flags = _flags()
    if list_:
        _list()
        return
    chosen: list[str] = []
    for arg in ctx.args:
        if arg not in flags:
            fail(f"unknown option {arg!r}; ablation flags: {', '.join(sorted(flags))} (or --spec FILE, --list)")
        chosen.append(flags[arg])
    if resume:
        if not (root / LAST).exists():
            fail(f"--resume: no earlier `bench ablate` to resume ({root / LAST} is missing; pass the --root it used)")
        last = json.loads((root / LAST).read_text())
        chosen, spec, budget = last["specs"], [], last["budget"]
        out, data, heldout = (Path(last[k]) if last.get(k) else None for k in ("out", "data", "heldout"))
        root = Path(last.get("root", root))
        scores = Path(last["scores"]) if last.get("scores") else None
    if budget not in BUDGETS:
        fail(f"unknown budget {budget!r}; valid: {', '.join(BUDGETS)}")
    check_executor(executor)
    try:
        specs = [load_spec(n) for n in chosen] + [load_spec(p) for p in spec]
    except SpecError as exc:
        fail(str(exc))
    if not specs:
        fail(f"name an ablation: {', '.join(sorted(flags))}, or --spec FILE (--list shows them: "
             f"{len(available())} specs)")
    out = out or (root / "smoke" if budget == "smoke" else Path("results/ablations"))
    if from_scores:
        for s in specs:
            _rebuild_one(s, budget, out, root, scores or COMMITTED_SCORES)
        return
    root.mkdir(parents=True, exist_ok=True)
    (root / LAST).write_text(json.dumps({"specs": [str(s.path) for s in specs], "budget": budget, "out": str(out),
                                "data": str(data) if data else None, "heldout": str(heldout) if heldout else None,
                                "root": str(root), "scores": str(scores) if scores else None}, indent=2))
    for s in specs:
        _run_one(s, budget, out, data, heldout, root, plan_only, executor, address, scores, cluster_gpus)


def _list() -> None:
    from rich.table import Table

    from bench.ablate.spec import available, load_spec

    t = Table()
    for col in ("flag", "title", "models", "axis", "values", "published beside"):
        t.add_column(col)
    for _name, path in available().items():
        s = load_spec(path)
        values = [v["label"] if isinstance(v, dict) else v for v in s.axis.values]
        t.add_row("--" + s.flag, s.title, ", ".join(a.label for a in s.models), s.axis.name, ", ".join(map(str, values)),
                  s.published["file"] if s.published else "")
    console.print(t)


def _data_files(suite: str, data: Optional[Path], heldout: Optional[Path], plan_only: bool) -> tuple[Path, Path]:
    """The training and held-out demos: given, or the suite's named demo sets, which are made first when they
    are missing (saying what and about how long; with --plan only said)."""
    from bench.cli.demos import make_with_progress
    from bench.eval.demo_sets import SETS

    wanted = []
    for given, name, flag in ((data, suite, "--data"), (heldout, f"{suite}_heldout", "--heldout")):
        if given is not None:
            if not given.exists():
                fail(f"{flag} {given}: no such file")
            wanted.append(given)
            continue
        if name not in SETS:
            fail(f"no named demo set {name!r} to default {flag} to: pass {flag}")
        s = SETS[name]
        if s.left():
            if plan_only:
                console.print(f"would first make demo set {s.name} ({s.left()} demos, about {s.minutes:.0f} min on "
                              f"2 cores) -> {s.path}")
            else:
                make_with_progress(s.name)
        wanted.append(s.path)
    return wanted[0], wanted[1]


def _run_one(spec, budget: str, out: Path, data: Optional[Path], heldout: Optional[Path], root: Path,
             plan_only: bool, executor: str = "local", address: Optional[str] = None,
             scores: Optional[Path] = None, cluster_gpus: int = 64) -> None:
    from bench.ablate.run import estimate, make_plan, status, unmade_inputs
    from bench.ablate.spec import SpecError

    data, heldout = _data_files(spec.suite, data, heldout, plan_only)
    made = data.exists() and heldout.exists()  # else (--plan only) the job keys are provisional
    try:
        plan = make_plan(spec, budget, data, heldout, root, scores,
                         inputs=None if made else unmade_inputs(spec, data, heldout))
    except (SpecError, ValueError, KeyError) as exc:
        fail(f"{spec.path}: {exc}")
    _print_plan(plan, status(plan))
    if plan.budget.train_gpus:
        _print_gpu_cost(plan, cluster_gpus)
        if plan_only:
            return
    est = estimate(plan, probe=None if budget == "smoke" or not made else _probe(plan))
    for what, (rate, source) in est["rates"].items():
        console.print(f"  {what}: {'?' if rate is None else f'{rate:.2f}'} ({source})")
    if est.get("train_unknown"):
        console.print("  (training time unknown: no rate is cached and no probe ran, so it is left out below)")
    console.print(f"[bold]estimated time left[/]: {est['total_s'] / 3600:.2f} h (training {est['train_s'] / 3600:.2f} h, "
                  f"evaluation {est['eval_s'] / 3600:.2f} h, offline {est['offline_s'] / 3600:.2f} h)")
    if plan_only:
        return
    from bench.ablate.run import ablate

    progress = progress_bar()
    with progress:
        bar = progress.add_task(spec.name, total=None)

        def on_job(label: str) -> None:
            progress.update(bar, description=f"{spec.name}: {label}", completed=0, total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(bar, completed=done, total=total)

        result = ablate(plan, out, executor, address, on_job=on_job, on_progress=on_progress)
    console.print((out / f"{spec.name}.md").read_text().split("![")[0])
    console.print(f"wrote {out / spec.name}.csv, .md, .png ({len(result.table)} variants)")
    if result.failures:
        for f in result.failures:
            console.print(f"[red]failed:[/] {f}")
        raise typer.Exit(1)


def _rebuild_one(spec, budget: str, out: Path, root: Path, scores: Path) -> None:
    from bench.ablate.run import plan_from_scores, rebuild_from_scores
    from bench.ablate.spec import SpecError

    try:
        result = rebuild_from_scores(plan_from_scores(spec, budget, scores, root), out)
    except SpecError as exc:
        fail(str(exc))
    console.print((out / f"{spec.name}.md").read_text().split("![")[0])
    console.print(f"rebuilt {out / spec.name}.csv, .md, .png from the scores in {scores} ({len(result.table)} variants, "
                  f"{result.wall_s:.1f} s)")


def _print_gpu_cost(plan, cluster_gpus: int) -> None:
    from rich.table import Table

    from bench.ablate.costs import plan_cost

    try:
        cost = plan_cost(plan, cluster_gpus)
    except ValueError as exc:
        fail(str(exc))
    t = Table(title=f"{plan.spec.title} at the {plan.budget_name} budget: GPU-hours")
    for col in ("jobs", "count", "GPUs each", "hours each", "hours"):
        t.add_column(col)
    groups: dict[tuple, list] = {}
    for j in cost.jobs:
        groups.setdefault((j.kind, j.model, j.gpus), []).append(j)
    for (kind, model, gpus), js in groups.items():
        hours = [j.gpu_hours for j in js]
        known = all(h is not None for h in hours)
        each = f"{statistics.median(hours):,.1f}" if known else "?"
        what = "GPU-h" if gpus > 0 else "CPU-h of policy"
        t.add_row(f"{kind} {model}", str(len(js)), f"{gpus:g}", f"{each} {what}",
                  f"{sum(hours):,.0f} {what}" if known else "?")
    console.print(t)
    for what, rate in cost.rates.items():
        console.print(f"  {what}: {'?' if rate.value is None else f'{rate.value:.4g}'} ({rate.source})")
    total, cpu = cost.gpu_hours(), cost.cpu_hours()
    console.print(f"[bold]GPU-hours in all[/]: {'?' if total is None else f'{total:,.0f}'} (training "
                  f"{_hours(cost.gpu_hours('train'), cost.gpu_hours('pretrain'))}); evaluation on the CPU: "
                  f"{'?' if cpu is None else f'{cpu:,.0f}'} CPU-hours of policy time, the simulator's on top")
    if cost.wall_hours is not None:
        console.print(f"[bold]on a Ray cluster of {cluster_gpus} GPUs[/] (bench ablate --executor ray: each training "
                      f"asks for {plan.budget.train_gpus:g} GPU and {plan.budget.train_cpus} CPUs): the trainings "
                      f"take about {cost.wall_hours:,.0f} h ({cost.wall_hours / 24:,.1f} days) wall-clock")


def _hours(*parts) -> str:
    return "?" if any(p is None for p in parts) else f"{sum(parts):,.0f}"


def _print_plan(plan, rows: list[dict]) -> None:
    from rich.table import Table

    t = Table(title=f"{plan.spec.title}: {len(plan.variants)} variants, {len(plan.trainings)} trainings "
                    f"({plan.budget_name} budget: {plan.budget.schedule.steps} steps x {plan.budget.schedule.batch_size}, "
                    f"{plan.episodes_per_variant} episodes and {plan.budget.offline_windows} held-out windows each)")
    for col in ("model", plan.spec.axis.name, "seed", "training", "offline", "episodes"):
        t.add_column(col)
    for r in rows:
        training = ("done" if r["trained"] else "not needed (scored)" if r["scored"]
                    else f"{r['steps_done']}/{r['steps']}" if r["steps_done"] else "to do")
        t.add_row(r["model"], str(r["value"]), str(r["seed"]), training, "done" if r["offline"] else "to do",
                  "done" if r["evaluated"] else f"{r['episodes_done']}/{plan.episodes_per_variant}")
    console.print(t)


def _probe(plan):
    """A training-speed probe: 4 real steps of the model on the real data, in a scratch folder."""
    def probe(model: str, batch: int) -> float | None:
        import tempfile

        import pandas as pd

        from bench.models.registry import model_config
        from bench.train.loop import TrainConfig, train

        console.print(f"  probing {model}'s training speed at batch {batch} (4 steps)...")
        with tempfile.TemporaryDirectory() as tmp:
            arm = next(a for a in plan.spec.models if a.model == model)
            cfg = model_config(model, plan.spec.config, **plan.spec.overrides, **arm.overrides)
            train(cfg, [plan.data], Path(tmp) / "probe", TrainConfig(steps=4, batch_size=batch, warmup=1, log_every=1,
                                                                     checkpoint_every=10**9,
                                                                     precision=plan.budget.schedule.precision))
            rates = pd.read_csv(Path(tmp) / "probe" / "losses.csv")["samples_per_s"].iloc[1:]
        return float(rates.median()) if len(rates) else None
    return probe
