"""`evaluate`: one policy on one suite on its simulator, recorded episode by episode (what `bench run` does).

The CLI, the ablation jobs and the learning curves call this function; it never prints (messages go to
`log`) and never exits: a bad request raises `EvalError` (a ValueError: the caller's input), a machine
that cannot run it raises a RuntimeError (`HeadlessGLError`, `MathModeError`, `BackendNotReady`,
`PolicyHostError`). A run folder resumes: episodes already recorded there are not run again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

RUNS_DIR = Path("runs")
PUBLISHED = ("summary.json", "summary.md", "summary.csv", "summary.png", "episodes.jsonl", "videos.png")


class EvalError(ValueError):
    """The request cannot be run as given; the message names the bad value and the valid ones."""


@dataclass
class EvalRequest:
    suite: str
    policy: str | None = None  # None: the bundled checkpoint trained on `suite`
    checkpoint: str | None = None
    tasks: str | None = None  # task ids, e.g. "0,3-5" (None: all)
    episodes: int | None = None  # per task (None: the suite's)
    workers: int = 2
    out: Path | None = None  # None: runs/<suite>/<policy>/<time> (with resume: the latest such run)
    resume: bool = False
    video: int = 0  # mp4s of the first N episodes of each task
    demos: str | None = None  # the replay policy's demo file
    policy_args: list[str] = field(default_factory=list)  # NAME=VALUE
    seed: int | None = None  # protocol overrides (they change its hash)
    max_steps: int | None = None
    episode_timeout_s: float = 900.0
    math: str = "portable"
    executor: str = "local"
    address: str | None = None  # Ray cluster
    policy_gpus: float | None = None  # with executor "ray": the policy in a Ray actor with this many GPUs
    device: str | None = None
    publish: Path | None = None  # also copy summary and records to DIR/<suite>_*
    lint: bool = True  # first check the policy's conventions on the suite's held-out demos, when this machine has them


@dataclass
class EvalResult:
    out: Path
    suite: str
    policy: str
    checkpoint: str | None
    table: object  # pandas DataFrame: one row per task and an ALL row (bench.eval.results.summarize_dir)
    episodes_run: int  # by this call (0 when the folder already held them all)
    notes: list[str]  # warnings a reader must see beside the numbers


@dataclass
class Evaluation:
    """A request resolved into what will run: `evaluate` is `prepare` then `Evaluation.run`."""

    request: EvalRequest
    suite: object
    policy_name: str
    checkpoint: str | None
    out: Path
    runner: object
    queue: list
    description: str  # one line: suite x policy, episodes, workers, GL, protocol, math, folder
    protocol: object
    math_desc: dict
    notes: list[str] = field(default_factory=list)  # what the caller must say beside the numbers

    def run(self, on_episode: Callable | None = None) -> EvalResult:
        from bench.core.provenance import provenance
        from bench.core.records import read_records
        from bench.eval.results import record_invocation, simulator_stacks, stack_notes, summarize_dir
        from bench.eval.verify import reference_drift

        if self.queue:
            record_invocation(self.out, provenance(self.protocol, math=self.math_desc))
        self.runner.run(self.queue, on_episode)
        table = summarize_dir(self.out, provenance(self.protocol))
        records = read_records(self.out / "episodes.jsonl")
        drift = reference_drift(records, self.suite.name)
        notes = self.notes + stack_notes(simulator_stacks(records)) + ([drift] if drift else [])
        if self.request.publish is not None:
            publish(self.out, self.request.publish, self.suite.name)
        return EvalResult(self.out, self.suite.name, self.policy_name, self.checkpoint, table, len(self.queue), notes)


def evaluate(request: EvalRequest, on_episode: Callable | None = None, log: Callable[[str], None] = print) -> EvalResult:
    """Run (or resume) the request's episodes and summarise its folder."""
    return prepare(request, log).run(on_episode)


def prepare(req: EvalRequest, log: Callable[[str], None] = print) -> Evaluation:
    """Resolve suite, tasks, policy, protocol, math and folder, and plan the episodes still to run."""
    from bench.core.mathmode import MathModeError, apply, check, describe
    from bench.core.registry import UnknownNameError
    from bench.eval.runner import RunConfig, Runner
    from bench.sim.rendering import configure_headless_gl
    from bench.sim.suites import get_suite, parse_task_ids

    try:
        apply(req.math)  # before anything loads torch
    except MathModeError as exc:
        raise EvalError(str(exc)) from None
    check_executor(req.executor)
    if req.executor != "ray" and req.policy_gpus is not None:
        raise EvalError(f"policy_gpus {req.policy_gpus:g} places the policy on a Ray cluster: use executor ray")
    device = "cuda" if req.device is None and req.policy_gpus else req.device
    if device not in (None, "cpu") and req.math != "native":
        raise EvalError(f"device {device}: float math on an accelerator is not portable across machines; use math native")
    try:
        suite = get_suite(req.suite)
    except UnknownNameError as exc:
        raise EvalError(str(exc)) from None
    try:
        task_ids = parse_task_ids(req.tasks, len(suite.tasks()))
    except ValueError as exc:
        raise EvalError(f"{exc} (suite {suite.name})") from None
    policy, checkpoint, notes = req.policy, req.checkpoint, []
    if policy is None:
        policy, checkpoint, note = default_policy(suite.name, checkpoint, log)
        notes += [note] if note else []
    elif checkpoint is None:
        checkpoint = suite_checkpoint(policy, suite.name, log)
    options = dict(checkpoint=checkpoint, demos=req.demos, seed=req.seed, device=device, policy_args=req.policy_args)
    if req.policy_gpus is None:
        pol = build_policy(policy, **options)
        check(req.math)
        math_desc = describe(req.math)
    else:
        pol = policy_on_ray(policy, options, req.math, req.policy_gpus, req.address, log)
        math_desc = pol.math  # the math of the process the policy runs in
    if req.executor == "ray":
        check_cluster_cpus(req.workers, req.policy_gpus is not None, req.address, log)
    canonical = canonical_policy(policy)
    loaded = getattr(pol, "checkpoint_path", None)
    checkpoint = checkpoint or (str(loaded) if loaded is not None else None)
    base = RUNS_DIR / suite.name / canonical
    out = req.out
    if out is None:
        out = (latest_run(base) if req.resume else None) or base / datetime.now().strftime("%Y%m%d-%H%M%S")
    protocol = suite.protocol
    render = pol.spec.render_resolution
    if render and render != protocol.resolution:  # the policy's own client's pixels (remote adapters: 256)
        log(f"rendering at {render} px, as {canonical}'s own evaluation client does (the suite's protocol: "
            f"{protocol.resolution} px)")
        protocol = protocol.replace(resolution=render)
    if req.seed is not None:
        protocol = protocol.replace(seed=req.seed)
    if req.max_steps is not None:
        protocol = protocol.replace(max_steps=req.max_steps)
    cfg = RunConfig(suite=suite, policy_name=canonical, task_ids=task_ids, out=out, episodes=req.episodes,
                    workers=req.workers, resume=req.resume, videos_per_task=req.video, checkpoint=checkpoint,
                    protocol=protocol, episode_timeout_s=req.episode_timeout_s, math=math_desc["id"],
                    executor=req.executor, ray_address=req.address, policy_args=typed_args(policy, req.policy_args))
    gl = configure_headless_gl()
    runner = Runner(cfg, pol)
    queue = runner.pending()  # RunDirMismatch, bad episodes: ValueErrors naming the mismatch
    if req.lint and queue:
        notes += lint_notes(pol, canonical, suite.name, log)
    description = (f"{suite.name} x {canonical}: {len(queue)} episodes to run on {len(task_ids)} tasks, "
                   f"{req.workers} workers, GL={gl}, protocol {protocol.name}#{protocol.hash()}, "
                   f"math {math_desc['id']} -> {out}")
    return Evaluation(req, suite, canonical, checkpoint, out, runner, queue, description, protocol, math_desc, notes)


def lint_notes(pol, name: str, suite: str, log: Callable[[str], None]) -> list[str]:
    """`bench lint`'s problems as warnings (none when this machine has no held-out demos of the suite, or the
    policy cannot be asked outside its episodes: an expert, a replay)."""
    from bench.eval.demo_sets import SETS
    from bench.eval.lint import lint_policy

    held = SETS.get(f"{suite}_heldout")
    if held is None or not held.path.exists() or pol.spec.privileged:
        return []
    try:
        report = lint_policy(pol, name, suite, [held.path], windows=16, camera=False)
    except Exception as exc:  # a policy that cannot act on demo windows: the run itself will say what is wrong
        log(f"lint skipped: {type(exc).__name__}: {exc}")
        return []
    found = [f"lint: {f.check}: {f.detail} (fix: {f.fix})" for f in report.problems]
    log(f"lint on {report.windows} held-out windows: " + ("; ".join(found) if found else "no problem found"))
    return found


def check_executor(executor: str) -> None:
    """A known executor, and Ray installed when it is ray."""
    from bench.eval.runner import EXECUTORS

    if executor not in EXECUTORS:
        raise EvalError(f"--executor {executor!r}: valid {', '.join(EXECUTORS)}")
    if executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise EvalError("--executor ray needs Ray: in the checkout, pip install -e '.[ray]'") from None


def publish(out: Path, dest: Path, suite: str) -> None:
    """Copy a run's summary and records to dest/<suite>_* (where committed results live)."""
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    for name in PUBLISHED:
        if (out / name).exists():  # videos.png only with --video
            shutil.copyfile(out / name, dest / f"{suite}_{name}")


def latest_run(base: Path) -> Path | None:
    runs = sorted(p for p in base.glob("*") if (p / "episodes.jsonl").exists())
    return runs[-1] if runs else None


def build_policy(name: str, **options):
    """A registered policy; an unknown name or a bad option is an EvalError naming the valid ones."""
    from bench.policies import make_policy
    from bench.core.registry import UnknownNameError

    try:
        return make_policy(name, **options)
    except (UnknownNameError, ValueError, FileNotFoundError) as exc:
        raise EvalError(str(exc)) from None


def canonical_policy(name: str) -> str:
    from bench.policies import load_all

    return load_all().canonical(name)


def typed_args(policy: str, items: list[str]) -> dict:
    from bench.policies import load_all, parse_policy_args

    return parse_policy_args(load_all().get(policy), items) if items else {}


def default_policy(suite: str, checkpoint: str | None, log=print) -> tuple[str, str | None, str | None]:
    """No policy named: (policy, checkpoint, note). The bundled checkpoint trained on this suite; on a suite no
    bundled checkpoint is trained on yet, the bundled DiT4DiT of its home suite, with a note saying that its
    success there measures nothing about these tasks (the command runs rather than stops). An EvalError naming the
    policies when the package ships no DiT4DiT at all."""
    from bench.policies import load_all
    from bench.policies.trained import HOME_SUITE, bundled_for, shipped_checkpoint

    found = bundled_for(suite)
    if found is not None:
        log(f"no --policy: running the bundled {found[0]} checkpoint trained on {suite} ({found[1].name})")
        return found[0], checkpoint or str(found[1]), None
    fallback = shipped_checkpoint("dit4dit")
    if fallback is None:
        raise EvalError(f"no bundled checkpoint is trained on {suite}: pass --policy (valid: {', '.join(load_all())})")
    note = (f"No bundled checkpoint is trained on {suite} yet: this ran the bundled DiT4DiT trained on {HOME_SUITE} "
            f"({fallback.name}), which has never seen {suite}'s tasks, so its success here says nothing about a "
            "model trained on them. Pass --policy (and --checkpoint) for one that was.")
    log(f"warning: {note}")
    return "dit4dit", checkpoint or str(fallback), note


def suite_checkpoint(policy: str, suite: str, log=print) -> str | None:
    """A policy without a checkpoint, on a suite the package ships a checkpoint of that model for (the GR1
    proxy): that checkpoint. Otherwise None, and the policy loads its own default (its libero_spatial one)."""
    from bench.policies.trained import shipped_checkpoint

    own = shipped_checkpoint(policy, suite)
    if own is None or own == shipped_checkpoint(policy):
        return None
    log(f"running the bundled {policy} checkpoint trained on {suite} ({own.name}); --checkpoint picks another")
    return str(own)


def policy_on_ray(policy: str, options: dict, math: str, gpus: float, address: str | None, log=print):
    """The policy built in a Ray actor with `gpus` GPUs."""
    from bench.policies import load_all
    from bench.policies.on_ray import RayPolicy
    from bench.core.registry import UnknownNameError
    from bench.sim.ray_workers import connect

    try:
        load_all().get(policy)  # a bad name fails before a cluster is joined
    except UnknownNameError as exc:
        raise EvalError(str(exc)) from None
    have = connect(address).get("GPU", 0.0)
    if gpus > have:
        raise EvalError(f"--policy-gpus {gpus:g}: the Ray cluster has {have:g} GPUs")
    pol = RayPolicy(policy, {k: v for k, v in options.items() if v not in (None, [])}, math, gpus)
    log(f"policy {policy} runs in a Ray actor on node {pol.placement['node'][:12]} "
        f"(GPUs: {', '.join(pol.placement['gpus']) or 'none'})")
    return pol


def check_cluster_cpus(workers: int, policy_on_ray: bool, address: str | None, log=print) -> None:
    """Each sim worker holds one of the cluster's CPUs (the policy's actor one more): say so when the cluster
    has too few now, since the extra workers then wait for it to grow (an autoscaling cluster may)."""
    from bench.sim.ray_workers import connect

    cpus = int(connect(address).get("CPU", 0))
    usable = cpus - int(policy_on_ray)
    if workers > usable:
        log(f"warning: --workers {workers}, but the Ray cluster has {cpus} CPUs"
            f"{' (one of them for the policy)' if policy_on_ray else ''}: {max(usable, 0)} workers can "
            f"start now; the others wait for the cluster to grow, or pass --workers {max(usable, 1)}")
