"""Plan an ablation (what is cached, what is left, how long it will take) and run what is left."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from bench.ablate import jobs
from bench.ablate.jobs import ROOT, Scoring
from bench.ablate.spec import Budget, Spec, SpecError, TrainJob, Variant, load_budget, spec_at, variants

# Used only when nothing cached says better (printed as assumed): seconds per simulated episode per worker,
# and per offline window. Measured rates replace them as soon as one job of the kind has run.
ASSUMED_EPISODE_S = 30.0
ASSUMED_WINDOW_S = 0.1


@dataclass(frozen=True)
class Inputs:
    """The demo files a plan's job keys are made of, by content fingerprint. Recorded beside kept scores
    (SCORES/inputs/<ablation>.<budget>.json), so a table can be rebuilt from its scores where the demos are not."""
    data: str
    heldout: str
    data_fingerprint: str
    heldout_fingerprint: str
    pretrain_data: tuple[str, ...] = ()
    pretrain_fingerprint: str | None = None

    @classmethod
    def of_files(cls, spec: Spec, data: str | Path, heldout: str | Path) -> "Inputs":
        pretrain = pretraining_files(data, heldout) if any(a.pretrain for a in spec.models) else []
        return cls(data=str(data), heldout=str(heldout), data_fingerprint=jobs.demo_fingerprint(data),
                   heldout_fingerprint=jobs.demo_fingerprint(heldout), pretrain_data=tuple(pretrain),
                   pretrain_fingerprint=jobs.demo_fingerprint(*pretrain) if pretrain else None)


NOT_MADE = "not-made"  # the fingerprint a plan shows for demo files not made yet (its job keys are provisional)


def unmade_inputs(spec: Spec, data: str | Path, heldout: str | Path) -> Inputs:
    """Inputs of a plan whose demos are not made yet (`bench ablate --plan` on a fresh clone): only printed."""
    pretrain = any(a.pretrain for a in spec.models)
    return Inputs(data=str(data), heldout=str(heldout), data_fingerprint=NOT_MADE, heldout_fingerprint=NOT_MADE,
                  pretrain_data=(str(data),) if pretrain else (), pretrain_fingerprint=NOT_MADE if pretrain else None)


def inputs_file(scores: Path, ablation: str, budget_name: str) -> Path:
    return scores / "inputs" / f"{ablation}.{budget_name}.json"


@dataclass
class Plan:
    spec: Spec
    budget_name: str
    budget: Budget
    data: str
    scoring: Scoring
    variants: list[Variant]
    tasks: int  # tasks each evaluation runs
    pretrain_data: list[str]  # every demo file the video pretraining learns from (empty: none needed)
    inputs: Inputs
    root: Path = ROOT  # checkpoints and logs (machine-local)
    scores: Path | None = None  # eval/ and offline/ when kept apart from root (committed: see bench.ablate.jobs)

    @property
    def scores_root(self) -> Path:
        return self.scores or self.root

    def scored(self, v: Variant) -> bool:
        """Both of the variant's scores are there: its checkpoint is no longer needed."""
        return (jobs.evaluated(v, self.scoring, self.scores_root)
                and jobs.scored_offline(v, self.scoring, self.scores_root))

    def needs_training(self, job: TrainJob) -> bool:
        """Some variant of this training (or of one starting from it) still needs its checkpoint."""
        return not jobs.trained(job, self.root) and any(
            not self.scored(v) for v in self.variants if job.key() in (v.train.key(), v.pretrain and v.pretrain.key()))

    @property
    def trainings(self) -> list[TrainJob]:
        """Distinct training jobs, in the order they run (a pretraining first; a convergence study trains
        each model once)."""
        seen: dict[str, TrainJob] = {}
        for v in self.variants:
            if v.pretrain is not None:
                seen.setdefault(v.pretrain.key(), v.pretrain)
            seen.setdefault(v.train.key(), v.train)
        return list(seen.values())

    @property
    def episodes_per_variant(self) -> int:
        return self.tasks * self.budget.episodes


def pretraining_files(data: str | Path, heldout: str | Path) -> list[str]:
    """Every demo video we have for video pretraining: the demo files beside the training data made the same
    way (same name ending), never the held-out ones."""
    from bench.demos.libero_hdf5 import file_suite

    data, heldout = Path(data), Path(heldout)
    suite = file_suite(data)
    if not suite or not data.name.startswith(suite):
        return [str(data)]
    ending = data.name[len(suite):]  # e.g. _128_from224.hdf5: the same resolution and pixel path
    found = sorted(p for p in data.parent.glob(f"*{ending}") if p != heldout and file_suite(p))
    return [str(p) for p in found] or [str(data)]


def make_plan(spec: Spec, budget_name: str, data: str | Path, heldout: str | Path, root: Path = ROOT,
              scores: Path | None = None, inputs: Inputs | None = None) -> Plan:
    """`inputs`: the demo files' fingerprints when already known (then the files need not exist here)."""
    from bench.sim.suites import get_suite, parse_task_ids

    inputs = inputs or Inputs.of_files(spec, data, heldout)
    budget = load_budget(spec, budget_name)
    scoring = Scoring.of(spec.suite, budget, inputs.heldout, inputs.heldout_fingerprint)
    suite = get_suite(spec.suite)
    tasks = len(parse_task_ids(budget.eval_tasks, len(suite.tasks())))
    found = variants(spec, budget, inputs.data_fingerprint, inputs.pretrain_fingerprint)
    check_configs(found)
    return Plan(spec=spec_at(spec, budget), budget_name=budget_name, budget=budget, data=inputs.data, scoring=scoring,
                variants=found, tasks=tasks, pretrain_data=list(inputs.pretrain_data), inputs=inputs, root=root,
                scores=scores)


def record_inputs(plan: Plan) -> Path | None:
    """Write the plan's inputs beside its kept scores (nothing when the scores stay in the job cache)."""
    if plan.scores is None:
        return None
    path = inputs_file(plan.scores, plan.spec.name, plan.budget_name)
    from bench.core.provenance import shown_path

    path.parent.mkdir(parents=True, exist_ok=True)
    i = plan.inputs  # paths as records show them: only the fingerprints enter the job keys
    record = dict(vars(i), data=shown_path(i.data), heldout=shown_path(i.heldout),
                  pretrain_data=[shown_path(p) for p in i.pretrain_data])
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def plan_from_scores(spec: Spec, budget_name: str, scores: Path, root: Path = ROOT) -> Plan:
    """The plan whose scores were kept in `scores`, made from its recorded inputs: no demo file is opened."""
    path = inputs_file(scores, spec.name, budget_name)
    if not path.exists():
        kept = sorted(p.name.removesuffix(".json") for p in (scores / "inputs").glob("*.json"))
        raise SpecError(f"no recorded inputs for {spec.name} at the {budget_name} budget ({path} is missing): its "
                        f"scores were not kept there, so it can only be rebuilt by running it. Recorded: "
                        f"{', '.join(kept) or 'none'}")
    record = json.loads(path.read_text())
    inputs = Inputs(**dict(record, pretrain_data=tuple(record.get("pretrain_data", ()))))
    return make_plan(spec, budget_name, inputs.data, inputs.heldout, root, scores, inputs)


def variant_label(plan: Plan, v: Variant) -> str:
    return f"{v.arm} {plan.spec.axis.name}={v.value} seed {v.seed}"


def check_configs(found: list[Variant]) -> None:
    """Build every variant's model config before any job runs: a bad axis value fails now, naming itself."""
    from bench.models.registry import model_config

    for v in found:
        try:
            model_config(v.train.model, v.train.config, **v.train.overrides)
        except (ValueError, TypeError) as err:
            raise SpecError(f"{v.ablation}: {v.arm} at {v.value!r}: {err}") from err


def status(plan: Plan) -> list[dict]:
    """Per variant: what is done (training steps, episodes, offline score)."""
    rows, scores = [], plan.scores_root
    for v in plan.variants:
        rows.append({"model": v.arm, "value": v.value, "seed": v.seed, "step": v.step,
                     "trained": jobs.trained(v.train, plan.root), "scored": plan.scored(v),
                     "steps_done": jobs.trained_steps(v.train, plan.root), "steps": v.train.schedule.steps,
                     "evaluated": jobs.evaluated(v, plan.scoring, scores),
                     "episodes_done": jobs.episodes_done(v, plan.scoring, scores),
                     "offline": jobs.scored_offline(v, plan.scoring, scores)})
    return rows


def _cached_train_rate(model: str, batch_size: int, root: Path) -> float | None:
    """Median samples/s logged by cached trainings of `model` at `batch_size` (None if none)."""
    rates = []
    for cfg in (root / "train").glob("*/train_config.json"):
        info = json.loads(cfg.read_text())
        if info.get("model") != model or info["train"]["batch_size"] != batch_size:
            continue
        lines = (cfg.parent / "losses.csv").read_text().strip().splitlines() if (cfg.parent / "losses.csv").exists() else []
        if len(lines) > 1:
            col = lines[0].split(",").index("samples_per_s")
            rates += [float(r.split(",")[col]) for r in lines[1:]]
    return statistics.median(rates) if rates else None


def _cached_episode_s(root: Path) -> float | None:
    walls = []
    for path in (root / "eval").glob("*/episodes.jsonl"):
        walls += [json.loads(line)["wall_time_s"] for line in path.read_text().splitlines() if line.strip()]
    return statistics.median(walls) if walls else None


def estimate(plan: Plan, probe=None) -> dict:
    """Seconds left per kind of job, and which rates were measured or assumed. `probe(model, batch)` may
    measure a training rate that nothing cached gives (samples/s)."""
    out = {"train_s": 0.0, "eval_s": 0.0, "offline_s": 0.0, "rates": {}}
    for job in plan.trainings:
        batch = job.schedule.batch_size
        left = job.schedule.steps - jobs.trained_steps(job, plan.root)
        if left <= 0 or not plan.needs_training(job):
            continue
        key = f"{job.model} training samples/s at batch {batch}"
        if key not in out["rates"]:
            rate = _cached_train_rate(job.model, batch, plan.root)
            source = "measured by cached trainings"
            if rate is None and probe is not None:
                rate, source = probe(job.model, batch), "measured by a short probe"
            out["rates"][key] = (rate, source if rate else "unknown")
        rate = out["rates"][key][0]
        if rate:
            out["train_s"] += left * batch / rate
        else:
            out["train_unknown"] = True
    episode_s = _cached_episode_s(plan.scores_root)
    out["rates"]["seconds per episode per worker"] = ((episode_s, "measured by cached evaluations") if episode_s
                                                      else (ASSUMED_EPISODE_S, "assumed"))
    per_episode = out["rates"]["seconds per episode per worker"][0] / plan.scoring.workers
    for v in plan.variants:
        if not jobs.evaluated(v, plan.scoring, plan.scores_root):
            out["eval_s"] += (plan.episodes_per_variant - jobs.episodes_done(v, plan.scoring, plan.scores_root)) * per_episode
        if not jobs.scored_offline(v, plan.scoring, plan.scores_root):
            out["offline_s"] += plan.scoring.offline_windows * ASSUMED_WINDOW_S
    out["total_s"] = out["train_s"] + out["eval_s"] + out["offline_s"]
    return out


def execute(plan: Plan, on_job=None, on_progress=None) -> list[str]:
    """Run every job not yet done, variant by variant (results arrive early); a failed job is reported and
    the others go on. Returns the failures' messages. `on_job(label)` announces each job,
    `on_progress(done, total)` follows it."""
    failures, scores = [], plan.scores_root
    for v in plan.variants:
        label = variant_label(plan, v)
        if plan.scored(v):  # its scores were kept (maybe from another machine): no checkpoint needed
            continue
        try:
            if v.pretrain is not None and not jobs.trained(v.pretrain, plan.root):
                on_job and on_job(f"pretrain the video DiT for {label} ({v.pretrain.key()})")
                jobs.run_train(v.pretrain, plan.pretrain_data, plan.root, on_progress)
            if not jobs.trained(v.train, plan.root):
                on_job and on_job(f"train {label} ({v.train.key()})")
                jobs.run_train(v.train, [plan.data], plan.root, on_progress)
            if not jobs.scored_offline(v, plan.scoring, scores):
                on_job and on_job(f"offline {label}")
                jobs.run_offline(v, plan.scoring, plan.root, scores)
            if not jobs.evaluated(v, plan.scoring, scores):
                on_job and on_job(f"evaluate {label}")
                jobs.run_eval(v, plan.scoring, plan.episodes_per_variant, plan.root, on_progress, scores)
        except jobs.JobFailed as exc:
            failures.append(f"{label}: {exc}")
    return failures


@dataclass
class AblateResult:
    name: str
    table: object  # pandas DataFrame: one row per variant (bench.ablate.tables)
    files: list[Path]  # <out>/<name>.csv, .md, .png
    failures: list[str]  # jobs that failed (the others ran)
    wall_s: float


def ablate(plan: Plan, out: Path, executor: str = "local", address: str | None = None, on_job=None,
           on_progress=None) -> AblateResult:
    """Run what is left of the plan (here, or as Ray tasks) and write its table: what `bench ablate` does once the
    plan is made."""
    import time

    from bench.ablate import tables
    from bench.core.provenance import provenance

    t0 = time.perf_counter()
    if executor == "ray":
        from bench.ablate.on_ray import execute_on_ray

        failures = execute_on_ray(plan, address, on_job=on_job)
    else:
        failures = execute(plan, on_job=on_job, on_progress=on_progress)
    wall = time.perf_counter() - t0
    record_inputs(plan)
    table = tables.write(plan, out, provenance(), wall_s=wall)
    return AblateResult(plan.spec.name, table, [out / f"{plan.spec.name}{x}" for x in (".csv", ".md", ".png")],
                        failures, wall)


def rebuild_from_scores(plan: Plan, out: Path) -> AblateResult:
    """The table again from the plan's kept scores alone (seconds, no demos, checkpoints or simulator); every
    variant must have both its scores."""
    import time

    from bench.ablate import tables
    from bench.core.provenance import provenance

    missing = [variant_label(plan, v) for v in plan.variants if not plan.scored(v)]
    if missing:
        raise SpecError(f"{plan.spec.name}: {len(missing)} of {len(plan.variants)} variants have no kept scores in "
                        f"{plan.scores_root} ({'; '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}): run the "
                        "ablation to make them")
    t0 = time.perf_counter()
    table = tables.write(plan, out, provenance())
    return AblateResult(plan.spec.name, table, [out / f"{plan.spec.name}{x}" for x in (".csv", ".md", ".png")], [],
                        time.perf_counter() - t0)
