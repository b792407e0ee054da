"""What a GPU budget's plan would cost, without running it: GPU-hours per training and how a Ray cluster spreads them.

Training rates come from `bench perf policy --device cuda` (results/perf/policy_gpu.json: DiT4DiT's named configs
on one GPU, measured at a small batch and from latents, the Wan VAE left out) and are assumed to hold per GPU at
the budget's batch; a model measured nowhere gets an estimate, printed as one with how it was made: DiT4DiT's
rate at the same config, scaled by the ratio of parameter counts (a rough stand-in for FLOPs per sample).
Evaluations run the policy on the CPU under `bench ablate` (portable math), so they take no GPU (the budget's
`eval_gpus` is 0) and their policy time is stated in CPU-hours from results/perf/policy_<config>.json where
measured: a policy call every `executed_chunk` steps for the protocol's whole `max_steps` (the simulator's time
comes on top; a success ends early).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

PERF = Path(__file__).resolve().parents[2] / "results" / "perf"
GPU_PERF = PERF / "policy_gpu.json"
MEASURED_MODEL = "dit4dit"  # the model `bench perf policy` measures


@dataclass(frozen=True)
class Rate:
    value: float | None
    source: str  # "measured: ..." or "estimate: ..." (or why there is none)


@dataclass
class JobCost:
    kind: str  # train, pretrain, evaluate, offline
    label: str
    gpu_hours: float | None  # CPU-hours for a job that asks for no GPU
    gpus: float  # what the job asks the cluster for
    after: str | None = None  # the label of the job it waits for
    model: str = ""


@dataclass
class PlanCost:
    jobs: list[JobCost]
    rates: dict[str, Rate] = field(default_factory=dict)
    cluster_gpus: int = 0
    wall_hours: float | None = None

    def gpu_hours(self, kind: str | None = None) -> float | None:
        """GPU-hours of the jobs (of `kind`) that ask for GPUs; None if a rate is unknown."""
        hours = [j.gpu_hours for j in self.jobs if j.gpus > 0 and (kind is None or j.kind == kind)]
        return None if any(h is None for h in hours) else sum(hours)

    def cpu_hours(self) -> float | None:
        """Policy CPU-hours of the jobs that ask for no GPU (evaluations run on the CPU)."""
        hours = [j.gpu_hours for j in self.jobs if j.gpus <= 0]
        return None if any(h is None for h in hours) else sum(hours)


def load_gpu_perf(path: Path = GPU_PERF, device: str = "cuda") -> dict:
    """{config: measured row} of DiT4DiT on `device` (cuda: policy_gpu.json; cpu: policy_<config>.json)."""
    paths = [path] if device == "cuda" else sorted(PERF.glob("policy_*.json"))
    rows = {}
    for p in paths:
        if p.exists():
            for r in json.loads(p.read_text()).get("results", []):
                if r.get("device") == device and (device == "cuda" or p.stem == f"policy_{r['config']}"):
                    rows.setdefault(r["config"], r)
    return rows


def _for_model(model: str, config: str, value: float, where: str, per_parameter: float, measured: bool = True
               ) -> Rate:
    """DiT4DiT's number `value` for `model`: itself, or scaled by the ratio of parameter counts to the power
    `per_parameter` (+1: a rate, which falls as a model grows; -1: a time, which rises)."""
    from bench.models.registry import load_models, parameter_count

    if model == MEASURED_MODEL:
        return Rate(value, f"{'measured' if measured else 'estimate'}: {where}")
    if config not in load_models().get(model).configs or config not in load_models().get(MEASURED_MODEL).configs:
        return Rate(None, f"unknown: {model} has no {config} config")
    ours, theirs = parameter_count(MEASURED_MODEL, config), parameter_count(model, config)
    return Rate(value * (ours / theirs) ** per_parameter,
                f"estimate: {where} x {ours / 1e6:.1f}M / {theirs / 1e6:.1f}M parameters")


def train_rate(model: str, config: str, precision: str, perf: dict) -> Rate:
    """Training samples/s on one GPU."""
    row = perf.get(config)
    if row is None:
        return Rate(None, f"unknown: no GPU measurement of {MEASURED_MODEL} {config} (bench perf policy --device cuda)")
    key = "train_samples_per_s_bf16" if precision == "bf16" else "train_samples_per_s"
    where = (f"{MEASURED_MODEL} {config} on one {row['device_name']} at batch {row['train_batch']}, {precision}"
             + ("" if row.get("vae_in_latency", True) else ", from latents") + ", assumed at the budget's batch")
    return _for_model(model, config, row[key], where, +1)


def chunk_seconds(model: str, config: str, batch: int, perf: dict) -> Rate:
    """Seconds for one action chunk of `batch` rows on one GPU (the nearest measured batch at or above it)."""
    row = perf.get(config)
    if row is None:
        return Rate(None, f"unknown: no GPU measurement of {MEASURED_MODEL} {config}")
    sizes = sorted(int(b) for b in row["latency_s"])
    size = next((b for b in sizes if b >= batch), sizes[-1])
    seconds = row["latency_s"][str(size)] * (batch / size if batch > size else 1.0)
    scaled = f" x {batch // size} (rows scale linearly)" if batch > size else ""
    where = f"{MEASURED_MODEL} {config} on {row.get('device_name', row['device'])}, batch {size}{scaled}"
    return _for_model(model, config, seconds, where, -1, measured=not scaled)


def plan_cost(plan, cluster_gpus: int, perf: dict | None = None) -> PlanCost:
    """Every job of `plan` with its GPU-hours, and the wall-clock hours on a cluster of `cluster_gpus` GPUs."""
    from bench.sim.suites import get_suite

    perf = load_gpu_perf() if perf is None else perf
    budget, out = plan.budget, PlanCost(jobs=[], cluster_gpus=cluster_gpus)
    pretrain_keys = {v.pretrain.key() for v in plan.variants if v.pretrain is not None}

    def rate(key: str, make) -> Rate:
        if key not in out.rates:
            out.rates[key] = make()
        return out.rates[key]

    for job in plan.trainings:
        r = rate(f"{job.model} {job.config} training samples/s",
                 lambda: train_rate(job.model, job.config, job.schedule.precision, perf))
        hours = job.schedule.steps * job.schedule.batch_size / r.value / 3600 if r.value else None
        kind = "pretrain" if job.key() in pretrain_keys else "train"
        out.jobs.append(JobCost(kind, f"{kind} {job.model} {job.config} {job.key()}", hours, budget.train_gpus,
                                f"pretrain {job.model} {job.config} {job.init_from}" if job.init_from else None,
                                job.model))
    protocol = get_suite(plan.spec.suite).protocol
    calls = math.ceil((plan.scoring.max_steps or protocol.max_steps) / protocol.executed_chunk)
    on_gpu = budget.eval_gpus > 0
    policy_perf = perf if on_gpu else load_gpu_perf(device="cpu")
    unit = "seconds per chunk" + ("" if on_gpu else " on the CPU")
    for v in plan.variants:
        after = f"train {v.model} {v.train.config} {v.train.key()}"
        one = rate(f"{v.model} {v.train.config} {unit}", lambda: chunk_seconds(v.model, v.train.config, 1, policy_perf))
        hours = plan.episodes_per_variant * calls * one.value / 3600 if one.value else None
        label = f"{v.arm} {plan.spec.axis.name}={v.value} seed {v.seed}"
        out.jobs.append(JobCost("evaluate", f"evaluate {label}", hours, budget.eval_gpus, after, v.model))
        batch = rate(f"{v.model} {v.train.config} {unit}, 32 rows",
                     lambda: chunk_seconds(v.model, v.train.config, 32, policy_perf))
        hours = plan.scoring.offline_windows / 32 * batch.value / 3600 if batch.value else None
        out.jobs.append(JobCost("offline", f"offline {label}", hours, budget.eval_gpus, after, v.model))
    out.wall_hours = spread(out.jobs, cluster_gpus)
    return out


def spread(jobs: list[JobCost], cluster_gpus: int) -> float | None:
    """Wall-clock hours of the jobs that ask for GPUs, as Ray would run the same requests: whenever GPUs free
    up, the job (in list order) that can start soonest starts, once the job it waits for is done; none holds
    a GPU while it waits. A job on g GPUs takes its GPU-hours / g (linear scaling within a job). Jobs that ask
    for no GPU run beside them and are left out."""
    gpu_jobs = [j for j in jobs if j.gpus > 0]
    if any(j.gpu_hours is None for j in gpu_jobs):
        return None
    for j in gpu_jobs:
        if j.gpus > cluster_gpus:
            raise ValueError(f"{j.label} asks for {j.gpus:g} GPUs; the cluster has {cluster_gpus}")
    free = [0.0] * cluster_gpus  # when each GPU is next free
    ends: dict[str, float] = {}
    waiting = list(gpu_jobs)
    while waiting:
        free.sort()
        pending = {w.label for w in waiting}

        def start(j: JobCost) -> float:
            ready = math.inf if j.after in pending else ends.get(j.after, 0.0) if j.after else 0.0
            return max(free[math.ceil(j.gpus) - 1], ready)

        j = min(waiting, key=start)  # min keeps list order among equals
        n, t0 = math.ceil(j.gpus), start(j)
        ends[j.label] = t0 + j.gpu_hours / n
        free[:n] = [ends[j.label]] * n
        waiting.remove(j)
    return max(ends.values(), default=0.0)
