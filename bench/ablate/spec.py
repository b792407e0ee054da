"""Ablation specs (data files in `ablations/`) and the jobs they expand into.

A spec names a question, the models it asks it of, one axis (the setting that
varies, with its values and the default the bundled model uses), and optionally
the published curve to set beside ours. A budget (`ablations/budgets.yaml`,
overridable per spec) says how long to train and how much to evaluate.

A spec expands into variants, and each variant into three jobs:
- a training job (`bench train`), defined by the model, its config, the training
  settings and the data;
- an evaluation job (`bench run` of one checkpoint of that training);
- an offline job (action error of that checkpoint on held-out demos).
A job's identity is the hash of everything that defines it, never of where or
when it ran, so an interrupted ablation resumes and variants shared between
ablations (every default-setting variant is the same training) are reused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import yaml

ABLATIONS_DIR = Path(__file__).resolve().parents[2] / "ablations"
BUDGETS = ("smoke", "small", "full")
AXIS_TARGETS = {
    "config": "a model config setting (bench train --set KEY=VALUE)",
    "demo_fraction": "the fraction of each task's demos trained on (bench train --demo-fraction)",
    "progress": "the point of training a checkpoint is taken at, as a fraction of the steps",
}


# Every training job keeps its checkpoints at these fractions of its steps, so a convergence study reads them
# from the same trainings every other ablation uses (keeping them does not change the training).
KEPT_FRACTIONS = (0.2, 0.4, 0.6, 0.8, 1.0)


class SpecError(ValueError):
    pass


@dataclass(frozen=True)
class Schedule:
    """How one training runs (the `bench train` settings a budget fixes). Settings with a default enter a
    training's key only when set otherwise, so adding one never renames the trainings already cached."""
    steps: int
    batch_size: int
    lr: float
    warmup: int
    checkpoint_every: int
    precision: str
    group_lr: tuple = ()  # ((group, lr), ...): a parameter group's own peak rate (dit4dit: action, video)
    weight_decay: float | None = None  # None: bench train's default

    def key_fields(self) -> dict:
        defaults = {f.name: f.default for f in fields(self) if f.default is not MISSING}
        return {k: v for k, v in asdict(self).items() if k not in defaults or v != defaults[k]}


@dataclass(frozen=True)
class Budget:
    """How much one variant costs: its training, its closed-loop and offline evaluation, its seeds."""
    schedule: Schedule
    eval_tasks: str | None  # task ids ("0,3-5"), None = every task of the suite
    episodes: int  # per task
    max_steps: int | None  # None = the protocol's
    workers: int
    offline_windows: int
    seeds: tuple[int, ...]
    # what a job asks a Ray cluster for (bench ablate --executor ray); an evaluation asks for `workers` CPUs
    train_cpus: int = 1
    train_gpus: float = 0
    eval_gpus: float = 0  # what an evaluation or offline score asks for besides its CPUs (a full-size policy: 1)
    group_lr: tuple = ()  # ((model, ((group, lr), ...)), ...): per-group peak rates, by model
    # the full budget trains the official model size where this suite has one: ((model, named config), ...)
    configs: tuple = ()
    # a spec may sweep other values at this budget (the full-size video DiT has 28 blocks, not 6)
    axis_values: tuple | None = None
    axis_default: object = None
    axis_name: str | None = None

    def config_for(self, model: str, default: str) -> str:
        """The named config a training of `model` uses: the budget's for that model, else the spec's."""
        return dict(self.configs).get(model, default)

    def schedule_for(self, model: str) -> Schedule:
        """The schedule a training of `model` runs: the budget's, with that model's group rates."""
        from dataclasses import replace

        return replace(self.schedule, group_lr=dict(self.group_lr).get(model, ()))


@dataclass(frozen=True)
class Axis:
    name: str  # what the tables call it
    target: str  # AXIS_TARGETS
    values: tuple
    default: object = None  # the value the bundled model uses (marked in tables)
    key: str | None = None  # the config key, for target "config"


@dataclass(frozen=True)
class Arm:
    """One line of an ablation's table: a registered model, maybe with settings of its own, maybe starting
    from a video-pretrained DiT (pretrain: video)."""
    label: str
    model: str
    overrides: dict = field(default_factory=dict)
    pretrain: str | None = None


PRETRAIN_KINDS = {"video": "the video DiT first trained on video prediction alone (action loss weight 0) over "
                           "every demo file beside the training data, then the policy starts from it"}


@dataclass(frozen=True)
class Spec:
    name: str
    flag: str  # bench ablate --<flag>
    title: str
    question: str
    models: tuple[Arm, ...]
    config: str
    axis: Axis
    suite: str = "libero_spatial"
    overrides: dict = field(default_factory=dict)  # model config settings every variant shares
    published: dict | None = None  # {"file": ..., "select": {column: value}, "x": column, "series": {label: column}}
    budgets: dict = field(default_factory=dict)  # per-budget overrides of ablations/budgets.yaml
    path: str = ""


@dataclass(frozen=True)
class TrainJob:
    model: str
    config: str  # the named config ...
    overrides: dict  # ... and the settings changed from it (how `bench train` is told)
    schedule: Schedule
    seed: int
    demo_fraction: float
    keep_checkpoints: tuple[int, ...]
    data: str  # the demo files' content fingerprint (demo_fingerprint), not their paths
    init_from: str | None = None  # the key of the training whose video DiT this one starts from
    threads: int = 1  # torch CPU threads (the budget's train_cpus): the float sums, so the result, depend on it

    def key(self) -> str:
        """The hash of the resolved model config (not of how it was spelled: two ablations' default variants
        are one training) and of every training setting."""
        from bench.models.registry import model_config

        definition = {k: v for k, v in asdict(self).items() if k not in ("config", "overrides")}
        definition["schedule"] = self.schedule.key_fields()
        definition["resolved"] = model_config(self.model, self.config, **self.overrides).key_dict()
        return job_hash("train", definition)


@dataclass(frozen=True)
class Variant:
    """One cell of an ablation: a setting of the axis, for one arm (model) and seed."""
    ablation: str
    arm: str  # the table's label
    model: str  # the registered model
    value: object
    seed: int
    train: TrainJob
    step: int  # the training step whose checkpoint is scored
    pretrain: TrainJob | None = None  # trained first, when the arm starts from a pretrained video DiT


def job_hash(kind: str, definition: dict) -> str:
    text = json.dumps({"kind": kind, **definition}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def available() -> dict[str, Path]:
    """Spec name -> file, for every spec in ablations/."""
    return {p.stem: p for p in sorted(ABLATIONS_DIR.glob("*.yaml")) if p.stem != "budgets"}


def load_spec(name_or_path: str | Path) -> Spec:
    """A spec by name (ablations/<name>.yaml) or by path; errors name the file and the valid choices."""
    path = Path(name_or_path)
    if not path.suffix:
        specs = available()
        if str(name_or_path) not in specs:
            raise SpecError(f"unknown ablation {name_or_path!r}; valid: {', '.join(specs)}")
        path = specs[str(name_or_path)]
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML ({exc})") from None
    return parse_spec(raw, str(path))


def parse_spec(raw: dict, path: str = "<spec>") -> Spec:
    need = ("flag", "title", "question", "models", "config", "axis")
    missing = [k for k in need if k not in (raw or {})]
    if missing:
        raise SpecError(f"{path}: missing {', '.join(missing)}")
    ax = raw["axis"]
    target = ax.get("target", "config")
    if target not in AXIS_TARGETS:
        raise SpecError(f"{path}: unknown axis target {target!r}; valid: {', '.join(AXIS_TARGETS)}")
    values = tuple(ax.get("values") or ())
    if not values:
        raise SpecError(f"{path}: the axis has no values")
    labelled = [v for v in values if isinstance(v, dict)]
    if labelled and (len(labelled) != len(values) or target != "config"
                     or not all(set(v) == {"label", "set"} for v in labelled)):
        raise SpecError(f"{path}: labelled values ({{label: ..., set: {{KEY: VALUE}}}}) go on a config axis, "
                        "every value labelled")
    if target == "config" and not labelled and not ax.get("key"):
        raise SpecError(f"{path}: a config axis needs `key` (the config setting it varies) or labelled values")
    if target == "demo_fraction" and not all(0 < float(v) <= 1 for v in values):
        raise SpecError(f"{path}: demo_fraction values must be in (0, 1], got {list(values)}")
    if target == "progress" and not set(float(v) for v in values) <= set(KEPT_FRACTIONS):
        raise SpecError(f"{path}: progress values must be among the kept checkpoints {list(KEPT_FRACTIONS)}, "
                        f"got {list(values)}")
    budgets = raw.get("budgets") or {}
    bad = set(budgets) - set(BUDGETS)
    if bad:
        raise SpecError(f"{path}: unknown budget(s) {', '.join(sorted(bad))}; valid: {', '.join(BUDGETS)}")
    axis = Axis(name=ax.get("name", ax.get("key", target)), target=target, values=values, default=ax.get("default"),
                key=ax.get("key"))
    return Spec(name=raw.get("name", Path(path).stem), flag=raw["flag"], title=raw["title"],
                question=raw["question"].strip(), models=tuple(_arm(m, path) for m in raw["models"]),
                config=raw["config"], axis=axis,
                suite=raw.get("suite", "libero_spatial"), overrides=dict(raw.get("set") or {}),
                published=raw.get("published"), budgets=budgets, path=path)


def _arm(entry, path: str) -> Arm:
    if isinstance(entry, str):
        return Arm(label=entry, model=entry)
    unknown = set(entry) - {"label", "model", "set", "pretrain"}
    if unknown or "model" not in entry:
        raise SpecError(f"{path}: a model entry is a name or {{label, model, set, pretrain}}; got {entry}")
    if entry.get("pretrain") not in (None, *PRETRAIN_KINDS):
        raise SpecError(f"{path}: unknown pretrain {entry['pretrain']!r}; valid: {', '.join(PRETRAIN_KINDS)}")
    return Arm(label=entry.get("label", entry["model"]), model=entry["model"], overrides=dict(entry.get("set") or {}),
               pretrain=entry.get("pretrain"))


def load_budget(spec: Spec, level: str) -> Budget:
    if level not in BUDGETS:
        raise SpecError(f"unknown budget {level!r}; valid: {', '.join(BUDGETS)}")
    base = yaml.safe_load((ABLATIONS_DIR / "budgets.yaml").read_text())[level]
    merged = {**base, **(spec.budgets.get(level) or {})}
    schedule_keys = set(Schedule.__dataclass_fields__)
    unknown = set(merged) - schedule_keys - set(Budget.__dataclass_fields__)
    if unknown:
        raise SpecError(f"{spec.path}: unknown budget setting(s) {', '.join(sorted(unknown))}")
    schedule = {k: merged.pop(k) for k in list(merged) if k in schedule_keys}
    schedule["warmup"] = min(schedule["warmup"], schedule["steps"])
    # group_lr is given per model ({model: {group: lr}}): each training takes its own model's (Budget.schedule_for)
    per_model = schedule.pop("group_lr", None) or {}
    if not isinstance(per_model, dict) or not all(isinstance(v, dict) for v in per_model.values()):
        raise SpecError(f"{level} budget: group_lr must map a model to its groups' rates, e.g. "
                        f"{{dit4dit: {{video: 1.0e-5, action: 1.0e-4}}}} (got {per_model!r})")
    merged["group_lr"] = tuple(sorted((m, tuple(sorted(g.items()))) for m, g in per_model.items()))
    merged["seeds"] = tuple(merged["seeds"])
    merged["configs"] = tuple(sorted((merged.get("configs") or {}).items()))
    if merged.get("axis_values") is not None:
        merged["axis_values"] = tuple(merged["axis_values"])
    return Budget(schedule=Schedule(**schedule), **merged)


def spec_at(spec: Spec, budget: Budget) -> Spec:
    """The spec as this budget sweeps it: its axis values and default replaced where the budget says."""
    from dataclasses import replace

    if budget.axis_values is None:
        return spec
    default = spec.axis.default if budget.axis_default is None else budget.axis_default
    return replace(spec, axis=replace(spec.axis, values=budget.axis_values, default=default,
                                      name=budget.axis_name or spec.axis.name))


def variants(spec: Spec, budget: Budget, data_fingerprint: str, pretrain_fingerprint: str | None = None
             ) -> list[Variant]:
    """Every (arm, axis value, seed) of the spec at this budget, in table order."""
    spec = spec_at(spec, budget)
    out = []
    progress_axis = spec.axis.target == "progress"
    steps = budget.schedule.steps
    keep = tuple(sorted({progress_step(steps, f) for f in KEPT_FRACTIONS if f < 1}))
    for arm in spec.models:
        config = budget.config_for(arm.model, spec.config)
        for setting in spec.axis.values:
            for seed in budget.seeds:
                value, pretrain = setting, None
                if arm.pretrain == "video":
                    if pretrain_fingerprint is None:
                        raise SpecError(f"{spec.path}: arm {arm.label!r} needs pretraining data")
                    pretrain = TrainJob(model=arm.model, config=config,
                                        overrides={**spec.overrides, **arm.overrides, "action_loss_weight": 0.0},
                                        schedule=budget.schedule_for(arm.model), seed=seed, demo_fraction=1.0,
                                        keep_checkpoints=(),
                                        data=pretrain_fingerprint, threads=budget.train_cpus)
                overrides = {**spec.overrides, **arm.overrides}
                if isinstance(value, dict):  # a labelled value: several settings at once
                    overrides.update(value["set"])
                    value = value["label"]
                elif spec.axis.target == "config":
                    overrides[spec.axis.key] = value
                fraction = float(value) if spec.axis.target == "demo_fraction" else 1.0
                job = TrainJob(model=arm.model, config=config, overrides=overrides,
                               schedule=budget.schedule_for(arm.model),
                               seed=seed, demo_fraction=fraction, keep_checkpoints=keep, data=data_fingerprint,
                               init_from=pretrain.key() if pretrain else None, threads=budget.train_cpus)
                step = progress_step(steps, float(value)) if progress_axis else steps
                out.append(Variant(ablation=spec.name, arm=arm.label, model=arm.model, value=value, seed=seed,
                                   train=job, step=step, pretrain=pretrain))
    return out


def progress_step(steps: int, fraction: float) -> int:
    return max(1, int(round(steps * fraction)))
