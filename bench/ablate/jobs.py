"""The jobs of an ablation, cached by their hashes.

Each job is a process running one library call (`train`, `evaluate`, `write_action_error`, through
bench.worker) with its own log: those calls already resume exactly and write their own provenance, and
a process of its own sets its float math before torch loads, so an ablation is only a planner and a cache over
them. Folders, under ROOT:

    train/<train key>/      train(..., resume=True) (checkpoint/, checkpoint_step<N>/, losses.csv)
    eval/<eval key>/        evaluate(..., resume=True) (episodes.jsonl, summary.*, done.json)
    offline/<offline key>/  write_action_error (action_error.json)

A job is done when its result file is there (a training: its checkpoint at the planned step); a
killed job is rerun with --resume and continues where it stopped.

The scores (eval/ and offline/, a few kB per variant) may live in a second folder, SCORES, apart from the
checkpoints and logs (megabytes, machine-local): committed with the results, they carry a finished
variant to any other machine, where it is neither retrained nor rescored. Logs stay under ROOT as
eval/<key>.log and offline/<key>.log.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.ablate.spec import Budget, TrainJob, Variant, job_hash
from bench.worker import job_command

ROOT = Path("runs/ablations")
EVAL_MATH = "portable"  # closed-loop scores in the suite's default float math, as `bench run` gives them


class JobFailed(RuntimeError):
    pass


def demo_fingerprint(*paths: str | Path) -> str:
    """What demo files hold (their suites, demos and lengths, how their frames were made and how often), not
    where they are."""
    import h5py

    from bench.demos.libero_hdf5 import demo_identity, demo_names

    h = hashlib.sha256()
    for path in paths:
        with h5py.File(path, "r") as f:
            data = f["data"]
            every = int(data.attrs.get("frame_every", 1))  # files with a frame per step keep their old keys
            h.update(f"{data.attrs.get('suite', '')}|{data.attrs.get('pixel_path', '')}|"
                     f"{'' if every == 1 else f'every{every}|'}".encode())
            for name in demo_names(data):  # by what each demo is, not by the order it was written in
                g = data[name]
                h.update(f"{demo_identity(g)}:{g.attrs.get('num_samples', len(g['actions']))};".encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Scoring:
    """How a checkpoint is scored: closed loop on the suite, offline on the held-out demos."""
    suite: str
    eval_tasks: str | None
    episodes: int
    max_steps: int | None
    workers: int
    heldout: str  # held-out demo file
    heldout_fingerprint: str
    offline_windows: int

    @classmethod
    def of(cls, suite: str, budget: Budget, heldout: str | Path, fingerprint: str | None = None) -> "Scoring":
        """`fingerprint`: the held-out file's, when known without opening it (a plan rebuilt from its scores)."""
        return cls(suite=suite, eval_tasks=budget.eval_tasks, episodes=budget.episodes, max_steps=budget.max_steps,
                   workers=budget.workers, heldout=str(heldout),
                   heldout_fingerprint=fingerprint or demo_fingerprint(heldout),
                   offline_windows=budget.offline_windows)


def train_dir(job: TrainJob, root: Path = ROOT) -> Path:
    return root / "train" / job.key()


def checkpoint_of(job: TrainJob, step: int, root: Path = ROOT) -> Path:
    base = train_dir(job, root)
    return base / "checkpoint" if step == job.schedule.steps else base / f"checkpoint_step{step}"


def eval_key(v: Variant, s: Scoring) -> str:
    return job_hash("eval", {"train": v.train.key(), "step": v.step, "suite": s.suite, "tasks": s.eval_tasks,
                             "episodes": s.episodes, "max_steps": s.max_steps, "math": EVAL_MATH})


def offline_key(v: Variant, s: Scoring) -> str:
    return job_hash("offline", {"train": v.train.key(), "step": v.step, "heldout": s.heldout_fingerprint,
                                "windows": s.offline_windows})


def eval_dir(v: Variant, s: Scoring, root: Path = ROOT) -> Path:
    return root / "eval" / eval_key(v, s)


def offline_file(v: Variant, s: Scoring, root: Path = ROOT) -> Path:
    return root / "offline" / offline_key(v, s) / "action_error.json"


def trained(job: TrainJob, root: Path = ROOT) -> bool:
    from bench.train.loop import checkpoint_info

    ckpt = train_dir(job, root) / "checkpoint"
    try:
        return checkpoint_info(ckpt).get("trained_steps") == job.schedule.steps
    except FileNotFoundError:
        return False


def evaluated(v: Variant, s: Scoring, root: Path = ROOT) -> bool:
    return (eval_dir(v, s, root) / "done.json").exists()


def scored_offline(v: Variant, s: Scoring, root: Path = ROOT) -> bool:
    return offline_file(v, s, root).exists()


def train_job(job: TrainJob, data: list[str], out: Path, root: Path = ROOT) -> dict:
    sch = job.schedule
    init_from = str(root / "train" / job.init_from / "checkpoint") if job.init_from else None
    return {"kind": "train", "model": job.model, "config": job.config, "overrides": dict(job.overrides),
            "data": list(data), "out": str(out), "threads": job.threads,
            "train": {"steps": sch.steps, "batch_size": sch.batch_size, "lr": sch.lr,
                      "warmup": min(sch.warmup, sch.steps), "checkpoint_every": sch.checkpoint_every,
                      "seed": job.seed, "precision": sch.precision, "demo_fraction": job.demo_fraction,
                      "keep_checkpoints": list(job.keep_checkpoints), "init_from": init_from,
                      **({"group_lr": dict(sch.group_lr)} if sch.group_lr else {}),
                      **({"weight_decay": sch.weight_decay} if sch.weight_decay is not None else {})}}


def eval_job(v: Variant, s: Scoring, root: Path = ROOT, scores: Path | None = None) -> dict:
    return {"kind": "eval", "request": {
        "suite": s.suite, "policy": v.model, "checkpoint": str(checkpoint_of(v.train, v.step, root)),
        "tasks": s.eval_tasks, "episodes": s.episodes, "workers": s.workers, "math": EVAL_MATH,
        "out": str(eval_dir(v, s, scores or root)), "resume": True, "max_steps": s.max_steps}}


def offline_job(v: Variant, s: Scoring, root: Path = ROOT, scores: Path | None = None) -> dict:
    return {"kind": "offline", "checkpoint": str(checkpoint_of(v.train, v.step, root)), "data": [s.heldout],
            "windows": s.offline_windows, "out": str(offline_file(v, s, scores or root))}


@contextmanager
def stop_on_sigterm():
    """Inside: SIGTERM (a machine being handed back, `kill`) raises KeyboardInterrupt, as Ctrl-C does, so a
    running job is stopped and `finally` blocks save what they must before the process ends."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        before = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: signals cannot be caught here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def run_logged(job: dict, log: Path, poll=None, threads: int = 1) -> float:
    """Run a job (bench.worker) with its output appended to `log`, calling `poll()` every few seconds
    while it runs (progress bars read the job's own files); its wall seconds, or JobFailed with the log's tail.
    The job computes on `threads` CPU threads wherever it runs (a Ray worker sets its own thread count from
    its task's CPUs; here it would be torch's default), so both executors give the same floats."""
    log.parent.mkdir(parents=True, exist_ok=True)
    spec = log.with_suffix(".job.json")
    cmd = job_command(job, spec)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    t = time.perf_counter()
    with log.open("a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n{json.dumps(job)}\n")
        fh.flush()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
        try:
            while True:
                try:
                    code = proc.wait(timeout=3)
                    break
                except subprocess.TimeoutExpired:
                    if poll is not None:
                        poll()
        except BaseException:  # interrupted: stop the job too (it resumes next time)
            proc.terminate()
            proc.wait()
            raise
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise JobFailed(f"the {job['kind']} job {spec} exited {code}; the end of {log}:\n{tail}")
    return time.perf_counter() - t


def trained_steps(job: TrainJob, root: Path = ROOT) -> int:
    """Steps logged so far (the progress of a running or interrupted training)."""
    csv = train_dir(job, root) / "losses.csv"
    if not csv.exists():
        return 0
    lines = csv.read_text().strip().splitlines()
    return int(lines[-1].split(",", 1)[0]) if len(lines) > 1 else 0


def episodes_done(v: Variant, s: Scoring, root: Path = ROOT) -> int:
    path = eval_dir(v, s, root) / "episodes.jsonl"
    return sum(1 for _ in path.open()) if path.exists() else 0


def run_train(job: TrainJob, data: list[str], root: Path = ROOT, progress=None) -> None:
    """Train (or finish training) `job` on the demo files `data`; `progress(steps_done, steps)` as it goes."""
    if not trained(job, root):
        out = train_dir(job, root)
        poll = (lambda: progress(trained_steps(job, root), job.schedule.steps)) if progress else None
        run_logged(train_job(job, data, out, root), out.parent / f"{out.name}.log", poll, threads=job.threads)


def train_hours(job: TrainJob, step: int, root: Path = ROOT) -> float | None:
    """Hours the training took to reach `step` (from its losses.csv; None if it is not there)."""
    from bench.train.curves import elapsed_at

    seconds = elapsed_at(train_dir(job, root) / "losses.csv", step)
    return None if seconds is None else seconds / 3600


def run_eval(v: Variant, s: Scoring, total: int, root: Path = ROOT, progress=None,
             scores: Path | None = None) -> None:
    """Evaluate the variant's checkpoint (under `root`) into its eval folder (under `scores`, default `root`);
    done.json records the evaluation's wall time and the training's hours, so the scores stand alone."""
    scores = scores or root
    if not evaluated(v, s, scores):
        out = eval_dir(v, s, scores)
        poll = (lambda: progress(episodes_done(v, s, scores), total)) if progress else None
        wall = run_logged(eval_job(v, s, root, scores), root / "eval" / f"{out.name}.log", poll)
        (out / "done.json").write_text(json.dumps({"wall_s": wall, "train_hours": train_hours(v.train, v.step, root),
                                                   "variant": _describe(v)}, indent=2))


def run_offline(v: Variant, s: Scoring, root: Path = ROOT, scores: Path | None = None) -> None:
    scores = scores or root
    if not scored_offline(v, s, scores):
        path = offline_file(v, s, scores)
        run_logged(offline_job(v, s, root, scores), root / "offline" / f"{path.parent.name}.log")


def _describe(v: Variant) -> dict:
    return {"ablation": v.ablation, "arm": v.arm, "model": v.model, "value": v.value, "seed": v.seed, "step": v.step,
            "train": v.train.key()}
