"""`bench analyze`: offline analyses of a checkpoint on demonstrations (no simulator), the tables that gather
published results, and one episode's contacts traced in the simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from bench.cli.common import analyze_app, probe_app, build_policy, console, fail, headless_gl, load_suite, progress_bar
from bench.core.artifacts import without_provenance


def _check_data(data: list[str]) -> None:
    for path in data:
        if not Path(path).exists():
            fail(f"--data {path}: no such file")


def _over_windows(label: str, windows: int, measure, checkpoint: str, data: list[str]) -> tuple[dict, dict]:
    """Run `measure(progress=...)` under a progress bar over windows; its result and the provenance (with the
    checkpoint's and the data's hashes)."""
    from bench.core.provenance import file_hash, provenance

    progress = progress_bar()
    with progress:
        bar = progress.add_task(f"{label}: windows", total=windows)
        result = measure(progress=lambda done, total: progress.update(bar, completed=done, total=total))
    return result, {**provenance(), "checkpoint_hash": file_hash(checkpoint),
                    "data_hashes": {d: file_hash(d) for d in data}}


@analyze_app.command("future-slot")
def future_slot(
    data: list[str] = typer.Option(..., "--data", "-d", help="Held-out demo file(s), LIBERO HDF5."),
    checkpoint: Optional[str] = typer.Option(None, help="DiT4DiT checkpoint (default: the bundled one)."),
    windows: int = typer.Option(512, min=2, help="Windows spread evenly over the demos."),
    seed: int = typer.Option(0, help="Seed of the shared noise."),
    out: Path = typer.Option(Path("results/dit4dit/future_slot"), help="Output prefix: PREFIX.md, PREFIX.json."),
):
    """Action error on held-out demos with the video DiT's future slot holding the noised real future,
    the noised current frame, or pure noise (paired: the same noise for all three)."""
    from bench.analysis.future_slot import future_slot_errors, future_slot_markdown
    from bench.policies.trained import BUNDLED

    _check_data(data)
    ckpt = checkpoint or str(BUNDLED)
    if not (Path(ckpt) / "model.safetensors").exists():
        fail(f"--checkpoint {ckpt}: not a DiT4DiT checkpoint (no model.safetensors)")
    result, prov = _over_windows("future slot", windows, lambda progress: future_slot_errors(
        ckpt, data, windows=windows, seed=seed, progress=progress), ckpt, data)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({**result, "provenance": prov}, indent=2))
    out.with_suffix(".md").write_text(future_slot_markdown(result, prov))
    console.print(without_provenance(out.with_suffix(".md").read_text()))


HELDOUT = str(Path.home() / ".cache/dit4dit-bench/demos/libero_spatial_128_from224_heldout.hdf5")


@probe_app.command("features")
def probe_features(
    checkpoint: list[str] = typer.Option([], "--checkpoint", "-c", help="DiT4DiT checkpoint(s) (default: the "
                                                                        "bundled one); repeatable."),
    label: list[str] = typer.Option([], "--label", help="A name per --checkpoint (default: folder names)."),
    data: list[str] = typer.Option([HELDOUT], "--data", "-d", help="Held-out demo file(s), LIBERO HDF5 "
                                                                   "(bench demos make libero_spatial_heldout)."),
    windows: int = typer.Option(200, min=4, help="Windows spread evenly over the demos."),
    seed: int = typer.Option(0, help="Seed of the shared noise."),
    out: Path = typer.Option(Path("results/dit4dit/feature_use"), help="Output prefix: PREFIX.md, PREFIX.json."),
):
    """Held-out action error with the video features as computed, zeroed, shuffled, from the true future and
    from the current frame repeated, each paired against the computed ones."""
    from bench.policies.trained import BUNDLED
    from bench.analysis.probe import feature_use, feature_use_markdown
    from bench.core.provenance import file_hash, provenance

    _check_data(data)
    ckpts = checkpoint or [str(BUNDLED)]
    names = list(label) or [Path(c).name for c in ckpts]
    if len(names) != len(ckpts) or len(set(names)) != len(names):
        fail(f"--label: give one distinct name per --checkpoint ({len(ckpts)}), got {names}")
    results = {}
    for name, ckpt in zip(names, ckpts):
        if not (Path(ckpt) / "model.safetensors").exists():
            fail(f"--checkpoint {ckpt}: not a checkpoint folder (no model.safetensors)")
        try:
            results[name], _ = _over_windows(f"features {name}", windows, lambda progress: feature_use(
                ckpt, data, windows=windows, seed=seed, progress=progress), ckpt, data)
        except ValueError as exc:
            fail(str(exc))
    prov = {**provenance(), "checkpoint_hashes": {n: file_hash(c) for n, c in zip(names, ckpts)},
            "data_hashes": {d: file_hash(d) for d in data}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"results": results, "provenance": prov}, indent=2))
    out.with_suffix(".md").write_text(feature_use_markdown(results, prov))
    console.print(without_provenance(out.with_suffix(".md").read_text()))


@probe_app.command("replay")
def probe_replay(
    policy: list[str] = typer.Option(["dit4dit", "groot"], "--policy", "-p", help="Trained policies (bench list "
                                     "policies); repeatable. The first is the one the others are paired against."),
    checkpoint: list[str] = typer.Option([], "--checkpoint", "-c", help="A checkpoint per --policy, '-' for the "
                                         "bundled one (default: every policy's bundled checkpoint)."),
    label: list[str] = typer.Option([], "--label", help="A name per --policy (default: the policy names)."),
    data: str = typer.Option(HELDOUT, "--data", "-d", help="Demo file (LIBERO HDF5) whose demos are replayed."),
    demos: int = typer.Option(10, min=1, help="Demos spread evenly over the file."),
    seed: int = typer.Option(0, help="Seed of the sampled action chunks."),
    out: Path = typer.Option(Path("results/baselines/replay_error"), help="Output prefix: PREFIX.md, PREFIX.json."),
):
    """Action error along replayed demos on the simulator's own rendering: rules a pixel-path mismatch in or out
    as the cause of a closed-loop gap."""
    from bench.analysis.replay import replay_error, replay_markdown
    from bench.core.provenance import file_hash, provenance

    _check_data([data])
    ckpts = [None if c == "-" else c for c in checkpoint] or [None] * len(policy)
    names = list(label) or list(policy)
    if len(ckpts) != len(policy) or len(names) != len(policy) or len(set(names)) != len(names):
        fail(f"give one --checkpoint ('-': bundled) and one distinct --label per --policy ({len(policy)}); got "
             f"{len(ckpts)} checkpoints and labels {names}")
    headless_gl()
    results = {}
    progress = progress_bar()
    with progress:
        for name, pol, ckpt in zip(names, policy, ckpts):
            bar = progress.add_task(f"replay {name}: demos", total=demos)
            try:
                results[name] = replay_error(pol, ckpt, data, demos=demos, seed=seed, progress=lambda done, total:
                                             progress.update(bar, completed=done, total=total))
            except (ValueError, FileNotFoundError, KeyError) as exc:
                fail(f"--policy {pol}: {exc}")
    prov = {**provenance(), "data_hash": file_hash(data)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"results": results, "provenance": prov}, indent=2))
    out.with_suffix(".md").write_text(replay_markdown(results, prov))
    console.print(without_provenance(out.with_suffix(".md").read_text()))


@analyze_app.command("action-error")
def action_error(
    checkpoint: str = typer.Option(..., help="Checkpoint folder of any trained model."),
    data: list[str] = typer.Option(..., "--data", "-d", help="Held-out demo file(s), LIBERO HDF5."),
    windows: int = typer.Option(512, min=1, help="Windows spread evenly over the demos."),
    seed: int = typer.Option(0, help="Seed of the sampled action chunks."),
    out: Path = typer.Option(..., help="Where the result goes (JSON, with per-window errors)."),
):
    """Action error of a checkpoint on held-out demos (no simulator), with a 95% interval over demos."""
    from bench.analysis.offline import write_action_error
    from bench.train.loop import checkpoint_info

    _check_data(data)
    try:
        checkpoint_info(checkpoint)
    except FileNotFoundError as exc:
        fail(f"--checkpoint: {exc}")
    progress = progress_bar()
    with progress:
        bar = progress.add_task("action error: windows", total=windows)
        result = write_action_error(checkpoint, data, out, windows=windows, seed=seed,
                                    progress=lambda done, total: progress.update(bar, completed=done, total=total))
    console.print(f"action error {result['mean']:.4f} [{result['ci_low']:.4f}, {result['ci_high']:.4f}] on "
                  f"{result['windows']} windows of {result['demos']} demos -> {out}")


def _labelled(results: list[Path], label: Optional[list[str]]) -> dict[str, Path]:
    """--results folders by their --label (default: the folder names); exit 2 if the counts differ."""
    labels = list(label or [])
    if labels and len(labels) != len(results):
        fail(f"--label given {len(labels)} times for {len(results)} --results")
    return dict(zip(labels or [r.name for r in results], results))


@analyze_app.command("zeroshot")
def zeroshot(
    results: list[Path] = typer.Option(..., "--results", "-r", help="A policy's results folder (its published "
                                       "<suite>_summary.json files); repeat for each policy."),
    training: str = typer.Option("libero_spatial", help="The training suite whose splits to tabulate."),
    label: Optional[list[str]] = typer.Option(None, help="A label per --results (default: the folder names)."),
    out: Path = typer.Option(..., help="Output prefix: PREFIX.md, .csv, .png, .json."),
):
    """In-distribution success beside every zero-shot split of the training suite, with intervals and drops."""
    from bench.core.provenance import provenance
    from bench.sim.libero.zeroshot import TRAINING_SETS
    from bench.analysis.zeroshot_table import write

    if training not in TRAINING_SETS:
        fail(f"--training {training!r}: valid {', '.join(TRAINING_SETS)}")
    missing = [str(r) for r in results if not r.is_dir()]
    if missing:
        fail(f"--results {missing[0]}: no such folder")
    t = write(_labelled(results, label), training, out, provenance())
    console.print(f"{int(t['episodes'].notna().sum())} of {len(t)} splits measured -> {out}.md")


@analyze_app.command("gr1")
def gr1(
    results: list[Path] = typer.Option(..., "--results", "-r", help="A policy's results folder (its published "
                                       "gr1_tabletop_proxy_summary.json); repeat for each policy."),
    label: Optional[list[str]] = typer.Option(None, help="A label per --results (default: the folder names)."),
    out: Path = typer.Option(Path("results/gr1/gr1_tabletop_proxy"), help="Output prefix: PREFIX.md, .csv, .png, "
                                                                         ".json."),
):
    """Our policies on the GR1 proxy beside the published RoboCasa GR1 numbers, per task, with the measured cost
    of a proxy episode."""
    from bench.analysis.gr1_table import SUITE, write
    from bench.core.provenance import provenance

    for r in results:
        if not (r / f"{SUITE}_summary.json").is_file():
            fail(f"--results {r}: no {SUITE}_summary.json there (bench run --suite {SUITE} ... --publish {r})")
    write(_labelled(results, label), out, provenance())
    console.print(f"{len(results)} policies on {SUITE} beside the published GR1 numbers -> {out}.md")


@analyze_app.command("trace")
def trace(
    suite: str = typer.Option(..., "--suite", "-s", help="A LIBERO-backed suite (bench list suites)."),
    task: int = typer.Option(..., "--task", "-t", help="Task id (bench list tasks --suite S)."),
    init: int = typer.Option(0, "--init", help="Initial state (the episode's init_id in its record)."),
    policy: str = typer.Option("scripted", help="Policy to play (bench list policies)."),
    checkpoint: Optional[str] = typer.Option(None, help="Checkpoint of a trained policy."),
    chunks: Optional[int] = typer.Option(None, min=1, help="Stop after this many chunks (default: the episode)."),
    out: Optional[Path] = typer.Option(None, help="Also write every chunk as JSON lines here."),
):
    """One episode as `bench run` plays it, with what the robot touches after every chunk (MuJoCo contacts):
    where a grasp is blocked, and by what."""
    from dataclasses import asdict

    from bench.eval.libero_trace import run_trace

    s = load_suite(suite)
    if task not in [t.task_id for t in s.tasks()]:
        fail(f"--task {task}: {suite} has tasks 0-{len(s.tasks()) - 1}")
    if any(t.backend != "libero" for t in s.tasks()):
        fail(f"--suite {suite}: contacts are read from LIBERO's MuJoCo scenes; this suite runs another simulator")
    build_policy(policy, checkpoint=checkpoint)  # a bad name or checkpoint fails here, with the valid choices
    headless_gl()
    traced = []
    try:
        for c in run_trace(suite, task, init, policy, checkpoint, max_chunks=chunks):
            touches = "; ".join(f"{x['robot_geom']} x {x['other_geom']} @z {x['z']:.3f}" for x in c.contacts)
            before = traced[-1].joints if traced else {}
            moved = " ".join(f"{j}={q:.3f}" for j, q in c.joints.items() if abs(q - before.get(j, q)) > 1e-3)
            console.print(f"{c.chunk:3d} step {c.steps:3d} {c.stage or '-':<13} eef "
                          f"({c.eef[0]:.3f}, {c.eef[1]:.3f}, {c.eef[2]:.3f})  {touches or 'no contact'}"
                          + (f"  moved: {moved}" if moved else ""), highlight=False)
            traced.append(c)
    except ValueError as exc:
        fail(str(exc))
    if traced:
        last = traced[-1]
        console.print(f"{'success' if last.done else 'no success'} after {last.steps} steps "
                      f"(final state {last.state})")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(asdict(c)) + "\n" for c in traced))
        console.print(f"{len(traced)} chunks -> {out}")
