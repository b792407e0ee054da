"""`bench ablate --executor ray`: every job of a plan is a Ray task asking for the resources its budget names.

The tasks run the very job functions the local executor runs (bench.ablate.jobs: train, evaluate and
action-error worker processes, each skipped when its result is cached), so the cache, its keys
and resuming are the same; the job cache and the demo files must be on storage every node sees (paths are
made absolute before they are sent). A training waits for the pretraining it starts from; a variant's
offline score and evaluation wait for its training. A task lost with its node is retried by Ray, and the
job it reruns resumes from its last checkpoint or episode.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bench.ablate import jobs
from bench.ablate.run import Plan

RETRIES = 3  # reruns of a task whose worker or node died (a job that fails on its own is not rerun)


def _train(job, data: list[str], root: Path, *after) -> None:
    jobs.run_train(job, data, root)


def _offline(variant, scoring, root: Path, scores: Path, *after) -> None:
    jobs.run_offline(variant, scoring, root, scores=scores)


def _evaluate(variant, scoring, episodes: int, root: Path, scores: Path, *after) -> None:
    jobs.run_eval(variant, scoring, episodes, root, scores=scores)


def execute_on_ray(plan: Plan, address: str | None = None, on_job=None) -> list[str]:
    """Submit every job of `plan` at once (Ray orders them by their inputs) and wait for all; returns the
    failures' messages, as bench.ablate.run.execute does. `on_job(label)` announces each finished job."""
    import ray

    from bench.sim.ray_workers import connect

    connect(address)
    root, scores = plan.root.resolve(), plan.scores_root.resolve()
    data = [str(Path(plan.data).resolve())]
    pretrain_data = [str(Path(p).resolve()) for p in plan.pretrain_data]
    scoring = replace(plan.scoring, heldout=str(Path(plan.scoring.heldout).resolve()))
    budget = plan.budget
    train = ray.remote(_train).options(num_cpus=budget.train_cpus, num_gpus=budget.train_gpus, max_retries=RETRIES)
    offline = ray.remote(_offline).options(num_cpus=1, num_gpus=budget.eval_gpus, max_retries=RETRIES)
    evaluate = ray.remote(_evaluate).options(num_cpus=scoring.workers, num_gpus=budget.eval_gpus, max_retries=RETRIES)

    pretrain_keys = {v.pretrain.key() for v in plan.variants if v.pretrain is not None}
    trained: dict[str, ray.ObjectRef] = {}
    labels: dict[ray.ObjectRef, str] = {}
    for job in plan.trainings:  # pretrainings come first, so a training can wait for the one it starts from
        if not plan.needs_training(job):  # already trained, or every variant it serves is scored
            continue
        after = [trained[job.init_from]] if job.init_from in trained else []
        ref = train.remote(job, pretrain_data if job.key() in pretrain_keys else data, root, *after)
        trained[job.key()] = ref
        labels[ref] = f"train {job.model} ({job.key()})"
    for v in plan.variants:
        if plan.scored(v):
            continue
        label = f"{v.arm} {plan.spec.axis.name}={v.value} seed {v.seed}"
        after = [trained[v.train.key()]] if v.train.key() in trained else []  # none: it was trained before
        ref = offline.remote(v, scoring, root, scores, *after)
        labels[ref] = f"offline {label}"
        ref = evaluate.remote(v, scoring, plan.episodes_per_variant, root, scores, *after)
        labels[ref] = f"evaluate {label}"

    failures, waiting = [], list(labels)
    while waiting:
        done, waiting = ray.wait(waiting, num_returns=1)
        try:
            ray.get(done[0])
            on_job and on_job(f"done: {labels[done[0]]}")
        except ray.exceptions.RayError as exc:  # the job's own failure, one it waited for, or lost retries
            cause = getattr(exc, "cause", None) or exc
            failures.append(f"{labels[done[0]]}: {cause}")
    return failures
