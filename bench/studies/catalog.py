"""Every committed result of the suite, declared once: the evaluations (records and summaries), the tables built
from them, and the measurements. `bench results --plan` lists them; the report shows each in its section."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.ablate.run import inputs_file
from bench.studies.base import Study, frame_differences

R = Path("results")
BASELINES = ("groot", "flare", "pi05")
MODELS = ("dit4dit", *BASELINES)
ZEROSHOT_SPLITS = ("zeroshot_object", "zeroshot_category", "zeroshot_quantity")
PRO_VARIANTS = ("object", "swap")


# --------------------------------------------------------------------------- evaluations

@dataclass(frozen=True)
class Evaluation:
    """One policy on one suite, published as results/<folder>/<suite>_{episodes.jsonl,summary.*}."""
    folder: str
    policy: str
    suite: str
    section: str
    episodes: int | None = None  # per task; None: the suite's own
    checkpoint: str | None = None  # None: the policy's bundled checkpoint for the suite
    demos: str | None = None  # the replay policy's demo file (machine-local, not committed)
    video: int = 0
    workers: int = 2
    policy_args: tuple[str, ...] = ()  # NAME=VALUE, as bench run --policy-arg

    @property
    def name(self) -> str:
        return f"evaluations/{self.folder}/{self.suite}"

    def path(self, what: str) -> str:
        return str(R / self.folder / f"{self.suite}_{what}")

    def checkpoint_input(self) -> tuple[str, ...]:
        if self.checkpoint:
            return (self.checkpoint,)
        if self.policy in MODELS:
            from bench.policies.trained import shipped_checkpoint

            from bench.core.provenance import REPO_ROOT

            found = shipped_checkpoint(self.policy, self.suite)  # absolute: named from the checkout's root
            return (str(found.relative_to(REPO_ROOT)),) if found else ()
        return ()


# DiT4DiT's inference switches, each run on the bundled checkpoint and paired with its default run: does what
# separates the models in closed loop (their held-out action errors are close) lie in how chunks are sampled and
# executed? results/<folder>/ -> the policy argument
INFERENCE_SWITCHES = {"feature_noise_per_episode": "feature_noise=per_episode",
                      "postprocess_official": "postprocess=official"}


def _evaluations() -> list[Evaluation]:
    ev = []
    zs = [f"libero_spatial_{s}" for s in ZEROSHOT_SPLITS]
    pro = [f"libero_spatial_{v}" for v in PRO_VARIANTS]
    for m in MODELS:
        ev.append(Evaluation(m, m, "libero_spatial", "baselines"))
        ev += [Evaluation(m, m, s, "zero-shot") for s in zs]
        ev += [Evaluation(m, m, s, "zero-shot", episodes=20) for s in pro]
        ev.append(Evaluation(m, m, "gr1_tabletop_proxy", "gr1", episodes=10,
                             checkpoint=f"bench/checkpoints/{m}_tiny_gr1_tabletop_proxy"))
    ev.append(Evaluation("dit4dit/videos", "dit4dit", "libero_spatial", "dit4dit", episodes=2, video=2))
    for folder, arg in INFERENCE_SWITCHES.items():  # paired against the default's first 10 episodes a task
        ev.append(Evaluation(f"dit4dit/{folder}", "dit4dit", "libero_spatial", "dit4dit", episodes=10,
                             policy_args=(arg,)))
    ev.append(Evaluation("random", "random", "libero_spatial", "dit4dit", workers=1))
    ev.append(Evaluation("reference", "dit4dit", "libero_spatial", "reproducibility", episodes=3))
    v1 = "results/dit4dit_v1/checkpoint"
    ev.append(Evaluation("dit4dit_v1", "dit4dit", "libero_spatial", "dit4dit", checkpoint=v1))
    ev.append(Evaluation("dit4dit_v1", "dit4dit", "libero_spatial_zeroshot_object", "zero-shot", checkpoint=v1))
    ev.append(Evaluation("dit4dit_v1/videos", "dit4dit", "libero_spatial", "dit4dit", episodes=2, video=2, checkpoint=v1))
    for s in ("libero_spatial", "libero_object", "libero_goal", "libero_10"):
        ev.append(Evaluation("scripted", "scripted", s, "expert"))
    ev += [Evaluation("scripted", "scripted", f"{t}_{s}", "expert") for t in ("libero_spatial", "libero_object")
           for s in ZEROSHOT_SPLITS]
    ev.append(Evaluation("scripted", "scripted", "gr1_tabletop_proxy", "gr1", episodes=20))
    for s in ("libero_spatial", "libero_object"):
        ev.append(Evaluation("demos", "replay", s, "demos", demos=f"~/.cache/dit4dit-bench/demos/{s}_128.hdf5"))
    return ev


EVALUATIONS = _evaluations()


def recompute_summary(e: Evaluation) -> list[str]:
    """The summary rows again from the committed episode records."""
    import json

    from bench.core.records import read_records
    from bench.eval.results import aggregate

    episodes = Path(e.path("episodes.jsonl"))
    if not episodes.exists():
        raise FileNotFoundError(2, "no such file", str(episodes))
    new = aggregate(read_records(episodes))
    committed = pd.DataFrame(json.loads(Path(e.path("summary.json")).read_text())["rows"])
    new = new[[c for c in committed.columns if c in new.columns]]
    return frame_differences(new, committed, e.path("summary.json"), key=["suite", "task_id"])


def evaluation_cost(e: Evaluation) -> float | None:
    """Seconds the committed episodes took, divided among the workers."""
    from bench.core.records import read_records

    records = read_records(Path(e.path("episodes.jsonl")))
    walls = [r.get("wall_time_s") or 0.0 for r in records]
    return sum(walls) / e.workers if walls else None


def build_evaluation(e: Evaluation, log) -> None:
    """Run (or resume) the evaluation in runs/studies/<folder>/<suite> and publish it into results/<folder>."""
    import os

    from bench.eval import EvalRequest, evaluate

    demos = os.path.expanduser(e.demos) if e.demos else None
    evaluate(EvalRequest(suite=e.suite, policy=e.policy, checkpoint=e.checkpoint, episodes=e.episodes,
                         workers=e.workers, video=e.video, demos=demos, out=Path("runs/studies") / e.folder / e.suite,
                         policy_args=list(e.policy_args), resume=True, publish=R / e.folder), log=log)


def evaluation_study(e: Evaluation) -> Study:
    outputs = tuple(e.path(x) for x in ("episodes.jsonl", "summary.json", "summary.md", "summary.csv", "summary.png",
                                        *(("videos.png",) if e.video else ())))
    return Study(name=e.name, kind="evaluation", outputs=outputs, inputs=e.checkpoint_input(),
                 build=lambda s, log: build_evaluation(e, log), section=e.section,
                 recompute=lambda: recompute_summary(e), cost_s=lambda: evaluation_cost(e))


# --------------------------------------------------------------------------- tables built from evaluations

def _summary(folder: str, suite: str) -> str:
    return str(R / folder / f"{suite}_summary.json")


def _episodes_of(summary: str) -> str:
    return summary.replace("_summary.json", "_episodes.jsonl")


@dataclass(frozen=True)
class Comparison:
    name: str  # results/<name>.{md,csv,png}
    runs: tuple[tuple[str, str], ...]  # (label, summary.json)
    section: str
    note: str = ""

    def inputs(self) -> tuple[str, ...]:
        return tuple(p for _, s in self.runs for p in (s, _episodes_of(s)))

    def load(self):
        from bench.analysis.compare import load_summary

        return [load_summary(Path(s), label) for label, s in self.runs]

    def build(self, log) -> None:
        from bench.analysis.compare import write_comparison
        from bench.core.provenance import provenance

        write_comparison(self.load(), R / self.name, provenance(), self.note)

    def recompute(self) -> list[str]:
        from bench.analysis.compare import compare

        csv = R / f"{self.name}.csv"
        return frame_differences(compare(self.load()), pd.read_csv(csv), str(csv), key=["suite", "task_id"])


BASELINE_NOTE = (
    "Tiny models trained from scratch on this machine (no pretrained image or video weights can be had offline; every "
    "model reads the instruction through the same frozen MiniLM), on the same libero_spatial demos with the same budget "
    "and seed, predicting the same action chunk by flow matching (GR00T- and FLARE-style share DiT4DiT's action DiT; "
    "pi0.5-style has its own action expert): a controlled comparison of how the action head is conditioned, not of the "
    "published 2B-scale models. training_curves.md checks the shared data, budget, seed and parameter counts from each "
    "run's train_config.json.")
PROXY_NOTE = (
    "Tiny models trained from scratch on this machine, every one on the same GR1-proxy demos (20 expert demos per task) "
    "with the same budget and seed (GR00T- and FLARE-style share DiT4DiT's action DiT; pi0.5-style has its own action "
    "expert), evaluated on the same proxy episodes: LIBERO objects and the Panda arm standing in for RoboCasa GR1, not "
    "the published benchmark or models. gr1_tabletop_proxy_training_curves.md checks the shared data, budget and seed.")

SWITCH_NOTE = (
    "The bundled DiT4DiT checkpoint unchanged, run with one inference switch on the first 10 initial states of every "
    "task and paired episode by episode with its default run (the same initial states and seeds; the default's other "
    "400 episodes enter only its rate). feature_noise=per_episode draws the video noise of the future slot once per "
    "episode instead of once per chunk (the action noise unchanged); postprocess=official clips the six pose dimensions "
    "to [-1, 1] and binarises the gripper at 0 as the official LIBERO client does.")


def _comparisons() -> list[Comparison]:
    spatial = {m: _summary(m, "libero_spatial") for m in MODELS}
    out = [Comparison("baselines/libero_spatial_comparison", tuple(spatial.items()), "baselines", BASELINE_NOTE)]
    for i, a in enumerate(BASELINES):
        for b in BASELINES[i + 1:]:
            out.append(Comparison(f"baselines/libero_spatial_{a}_vs_{b}", ((a, spatial[a]), (b, spatial[b])), "baselines"))
    out.append(Comparison("dit4dit/libero_spatial_vs_random", (("dit4dit", spatial["dit4dit"]),
                                                               ("random", _summary("random", "libero_spatial"))), "dit4dit"))
    out.append(Comparison("dit4dit/libero_spatial_vs_v1", (("dit4dit", spatial["dit4dit"]),
                                                           ("dit4dit_v1", _summary("dit4dit_v1", "libero_spatial"))),
                          "dit4dit"))
    out.append(Comparison("dit4dit_v1/libero_spatial_vs_random", (("dit4dit", _summary("dit4dit_v1", "libero_spatial")),
                                                                  ("random", _summary("random", "libero_spatial"))),
                          "dit4dit"))
    for folder in INFERENCE_SWITCHES:
        out.append(Comparison(f"dit4dit/libero_spatial_{folder}", (("dit4dit", spatial["dit4dit"]),
                                                                    (folder, _summary(f"dit4dit/{folder}", "libero_spatial"))),
                              "dit4dit", SWITCH_NOTE))
    out.append(Comparison("gr1/gr1_tabletop_proxy_comparison",
                          tuple((m, _summary(m, "gr1_tabletop_proxy")) for m in MODELS), "gr1", PROXY_NOTE))
    return out


COMPARISONS = _comparisons()


def comparison_study(c: Comparison) -> Study:
    return Study(name=c.name, kind="comparison", outputs=tuple(str(R / f"{c.name}.{x}") for x in ("md", "csv", "png")),
                 inputs=c.inputs(), build=lambda s, log: c.build(log), section=c.section, recompute=c.recompute,
                 depends=tuple(f"evaluations/{Path(p).parent.relative_to(R)}/{Path(p).name[:-len('_summary.json')]}"
                               for _, p in c.runs))


# zero-shot tables: every policy's splits of a training suite beside its in-distribution success
ZEROSHOT_TABLES = {
    "zeroshot/libero_spatial": ("libero_spatial", ("dit4dit", "dit4dit_v1", *BASELINES)),
    "zeroshot/libero_spatial_expert": ("libero_spatial", ("scripted",)),
    "zeroshot/libero_object_expert": ("libero_object", ("scripted",)),
}


def zeroshot_study(name: str, training: str, folders: tuple[str, ...]) -> Study:
    from bench.analysis.zeroshot_table import splits_of

    results = {f: R / f for f in folders}
    inputs = tuple(str(R / f / f"{s}_summary.json") for f in folders for s in [training, *(x for x, _ in splits_of(training))]
                   if (R / f / f"{s}_summary.json").exists())

    def build(s, log):
        from bench.core.provenance import provenance
        from bench.analysis.zeroshot_table import write

        write(results, training, R / name, provenance())

    def recompute():
        from bench.analysis.zeroshot_table import table

        csv = R / f"{name}.csv"
        return frame_differences(table(results, training), pd.read_csv(csv), str(csv), key=["policy", "split"])

    return Study(name=name, kind="table", outputs=tuple(str(R / f"{name}.{x}") for x in ("md", "csv", "json", "png")),
                 inputs=inputs, build=build, section="zero-shot", recompute=recompute)


def gr1_study() -> Study:
    name, folders = "gr1/gr1_tabletop_proxy", ("scripted", *MODELS)
    results = {f: R / f for f in folders}

    def build(s, log):
        from bench.analysis.gr1_table import write
        from bench.core.provenance import provenance

        write(results, R / name, provenance())

    def recompute():
        from bench.analysis.gr1_table import table

        csv = R / f"{name}.csv"
        return frame_differences(table(results), pd.read_csv(csv), str(csv), key=["task"])

    return Study(name=name, kind="table", outputs=tuple(str(R / f"{name}.{x}") for x in ("md", "csv", "json", "png")),
                 inputs=tuple(_summary(f, "gr1_tabletop_proxy") for f in folders), build=build, section="gr1",
                 recompute=recompute)


# training curves: the action loss of runs side by side, from their committed losses.csv
CURVES = {
    "baselines/training_curves": tuple((m, str(R / m / "losses.csv")) for m in MODELS),
    "gr1/gr1_tabletop_proxy_training_curves": tuple((m, str(R / m / "gr1_proxy_train" / "losses.csv")) for m in MODELS),
}


def curves_study(name: str, runs: tuple[tuple[str, str], ...], section: str) -> Study:
    labels, paths = [label for label, _ in runs], [Path(p) for _, p in runs]

    def build(s, log):
        from bench.train.curves import write_curves
        from bench.core.provenance import provenance

        write_curves(paths, labels, "action", R / name, provenance())

    def recompute():
        from bench.train.curves import load_curves

        csv = R / f"{name}.csv"
        return frame_differences(load_curves(paths, labels, "action"), pd.read_csv(csv), str(csv), key=["label", "step"])

    return Study(name=name, kind="curves", outputs=tuple(str(R / f"{name}.{x}") for x in ("md", "csv", "png")),
                 inputs=tuple(map(str, paths)), build=build, section=section, recompute=recompute)


# --------------------------------------------------------------------------- trainings

@dataclass(frozen=True)
class Recipe:
    """How a model is trained for the suite's tables: bench train's settings, the same for every model."""
    name: str
    steps: int
    batch_size: int = 16
    precision: str = "fp32"
    compile: bool = False
    attention: str = "default"
    frame_cache: bool = False
    checkpoint_every: int = 250
    keep: tuple[int, ...] = ()  # steps whose checkpoint is kept: the learning curve's points besides the last

    def train_config(self):
        from bench.train.loop import TrainConfig

        return TrainConfig(steps=self.steps, batch_size=self.batch_size, precision=self.precision,
                           compile=self.compile, attention=self.attention, frame_cache=self.frame_cache,
                           checkpoint_every=self.checkpoint_every, keep_checkpoints=self.keep)


RECIPES = {
    "3k": Recipe("3k", 3000),  # the bundled checkpoints: about one pass over the 500 demos
    "20k": Recipe("20k", 20000, precision="bf16", compile=True, attention="math", frame_cache=True,
                  checkpoint_every=500, keep=(2500, 5000, 10000, 15000)),  # results/dit4dit/recipe.md
}


@dataclass(frozen=True)
class Training:
    """A model trained on a demo set by a recipe. The 3k recipe's are the bundled models (bundle_run ships the
    checkpoint into the package, the curve and config into results/<model>/...)."""
    model: str
    suite: str
    demo_set: str
    recipe: str = "3k"

    @property
    def name(self) -> str:
        return f"trainings/{self.model}/{self.suite}" + ("" if self.recipe == "3k" else f"_{self.recipe}")

    @property
    def run(self) -> Path:
        """Where it trains (machine-local, resumable)."""
        return Path("runs/studies/train") / (f"{self.model}_{self.suite}" + ("" if self.recipe == "3k"
                                                                            else f"_{self.recipe}"))

    def curves(self) -> Path:
        from bench.train.loop import CURVE_FOLDERS

        return R / self.model / CURVE_FOLDERS.get(self.suite, f"{self.suite}_train")

    def demos(self, log) -> Path:
        """The demo set's file, made first when missing."""
        from bench.eval.demo_sets import get_set, make_set

        demos = get_set(self.demo_set)
        if demos.left():
            log(f"making demo set {demos.name} first ({demos.left()} demos, about {demos.minutes:.0f} min)")
            make_set(demos.name)
        return demos.path

    def train_job(self, data: Path, until: int | None = None) -> dict:
        """The training as a worker job (bench.worker): its own process, in torch's default float math."""
        from dataclasses import asdict

        return {"kind": "train", "model": self.model, "config": "tiny", "overrides": {}, "data": [str(data)],
                "out": str(self.run), "threads": 2, "train": asdict(RECIPES[self.recipe].train_config()),
                "until": until}

    def train(self, log, until: int | None = None) -> Path:
        """Train (or resume) to `until` or the end in a worker process (its log: RUN.log); returns the run folder."""
        from bench.ablate.jobs import run_logged

        data = self.demos(log)
        run_logged(self.train_job(data, until), self.run.with_suffix(".log"), threads=2)
        return self.run

    def build(self, log) -> None:
        from bench.train.loop import bundle_run

        bundle_run(self.train(log))


TRAININGS = [Training(m, "libero_spatial", "libero_spatial") for m in MODELS] + [
    Training(m, "gr1_tabletop_proxy", "gr1_tabletop_proxy") for m in MODELS]


# --------------------------------------------------------------------------- learning curves

LEARNING = R / "baselines" / "learning_curves"
LEARNING_RUNS = R / "baselines" / "learning_runs"
LEARNING_TRAININGS = tuple(Training(m, "libero_spatial", "libero_spatial", "20k") for m in MODELS)


def learning_spec():
    from bench.analysis.learning import CurveSpec
    from bench.eval.demo_sets import get_set

    return CurveSpec(suite="libero_spatial", episodes=10, heldout=(str(get_set("libero_spatial_heldout").path),),
                     windows=200)


def build_learning_curves(log) -> None:
    """Each model of LEARNING_TRAININGS in turn: train to its next kept checkpoint, score every unscored point,
    write the curves so far. Each step is a worker process (training in torch's default math, scoring in the
    portable math `bench run` uses) that resumes: a training from its last checkpoint, a point per episode.
    Each run is also packed beside the curves (carried_run, bench.train.carry) after each point
    and when the study stops, and unpacked on a machine whose own run is behind, so the study goes on across
    machines from what is committed."""
    from bench.ablate.jobs import stop_on_sigterm
    from bench.eval.demo_sets import get_set, make_set
    from bench.train.carry import unpack_run

    spec = learning_spec()
    if get_set("libero_spatial_heldout").left():
        make_set("libero_spatial_heldout")
    with stop_on_sigterm():
        for t in LEARNING_TRAININGS:
            data = t.demos(log)
            restored = unpack_run(carried_run(t), t.run, [data])
            if restored:
                log(f"{t.model}: continuing the committed run at step {restored} ({carried_run(t)})")
            recipe = RECIPES[t.recipe]
            try:
                for stop in (*recipe.keep, recipe.steps):
                    log(f"{t.model}: training to step {stop} of {recipe.steps} (log: {t.run.with_suffix('.log')})")
                    t.train(log, until=stop)
                    score_runs([t.run], [t.model], spec, log)
                    write_learning_curves_so_far(spec, log)
                    pack_learning_run(t, spec, log)
            finally:
                pack_learning_run(t, spec, log)


def carried_run(t: Training) -> Path:
    """Where a learning-curve training is packed: state that lets the study go on elsewhere (its input), not a
    result."""
    return LEARNING_RUNS / t.model


def pack_learning_run(t: Training, spec, log) -> None:
    """The run's state, logs and scores into carried_run(t), keeping the weights of unscored points only."""
    from bench.analysis.learning import is_scored
    from bench.train.carry import pack_run

    # the final weights stay (they are what a finished recipe bundles); a kept point's go once it is scored
    step = pack_run(t.run, carried_run(t), lambda folder: folder.name == "checkpoint"
                    or not is_scored(_point_of(t.run, folder), spec))
    if step:
        log(f"{t.model}: packed at step {step} into {carried_run(t)} (commit it to go on elsewhere)")


def _point_of(run: Path, folder: Path):
    import json

    from bench.analysis.learning import Point

    cfg = folder / "config.json"
    step = json.loads(cfg.read_text()).get("trained_steps", 0) if cfg.exists() else 0
    return Point(run, int(step), folder)


def write_learning_curves_so_far(spec, log) -> None:
    from bench.analysis.learning import write_learning_curves
    from bench.core.provenance import provenance

    started = [x for x in LEARNING_TRAININGS if (x.run / "train_config.json").exists()]
    write_learning_curves([x.run for x in started], [x.model for x in started], LEARNING, spec, provenance())
    log(f"wrote {LEARNING}.md, .csv, .png, .json")


def score_runs(runs: list[Path], labels: list[str], spec, log, on_progress=None) -> None:
    """Score every run's unscored learning-curve points, each in a worker process in the portable float math
    `bench run` scores in (its log: RUN/curve/step<N>.log); `on_progress(label, done, total)` while one runs."""
    from dataclasses import asdict

    from bench.ablate.jobs import run_logged
    from bench.analysis.learning import is_scored, pending_episodes, points

    for run, label in zip(runs, labels):
        for point in points(run):
            if is_scored(point, spec):
                continue
            left = pending_episodes(point, spec)
            log(f"{label}: scoring step {point.step} ({left} episodes left)")
            total, what = left, f"{label} step {point.step}"
            poll = (lambda p=point: on_progress(what, total - pending_episodes(p, spec), total)) if on_progress else None
            run_logged({"kind": "curve_point", "run": str(run), "step": point.step, "checkpoint": str(point.checkpoint),
                        "spec": asdict(spec)}, point.folder.with_suffix(".log"), poll)


def recompute_learning_curves() -> list[str]:
    """Each point's success and action error again from its committed records."""
    import json as _json

    from bench.core.records import latest_by_key, read_records

    table, diffs = pd.read_csv(LEARNING.with_suffix(".csv")), []
    for r in table.itertuples():
        folder = LEARNING / r.label / f"step{r.step}"
        records = list(latest_by_key(read_records(folder / "episodes.jsonl")).values())
        got = sum(bool(x["success"]) for x in records), len(records)
        if got != (round(r.success_rate * r.episodes), r.episodes):
            diffs.append(f"{LEARNING}: {r.label} step {r.step}: success recomputed {got[0]}/{got[1]}, committed "
                         f"{r.success_rate:.4f} of {r.episodes}")
        ae = folder / "action_error.json"
        if ae.exists() and abs(_json.loads(ae.read_text())["mean"] - r.action_error) > 1e-9:
            diffs.append(f"{LEARNING}: {r.label} step {r.step}: action error differs from its record")
    return diffs


def learning_study() -> Study:
    return Study(name="baselines/learning_curves", kind="curves",
                 outputs=(*(str(LEARNING.with_suffix(x)) for x in (".md", ".csv", ".png", ".json")), str(LEARNING)),
                 inputs=(str(LEARNING_RUNS),), build=lambda s, log: build_learning_curves(log), section="baselines",
                 recompute=recompute_learning_curves if LEARNING.with_suffix(".csv").exists() else None)


def training_cost(t: Training) -> float | None:
    from bench.train.curves import elapsed_at

    return elapsed_at(t.curves() / "losses.csv")


def training_study(t: Training) -> Study:
    folder = t.curves()
    outputs = [str(folder / f) for f in ("losses.csv", "losses.png")] + sorted(map(str, folder.glob("train_config*.json")))
    outputs.append(f"bench/checkpoints/{t.model}_tiny_{t.suite}")
    return Study(name=t.name, kind="training", outputs=tuple(outputs), inputs=(), build=lambda s, log: t.build(log),
                 section=t.suite if t.suite != "libero_spatial" else "baselines", cost_s=lambda: training_cost(t),
                 not_recomputable="a training: its result is the checkpoint and the curve")


def history_study() -> Study:
    """The first bundled DiT4DiT, replaced and kept (its checkpoint, curve and config) for comparisons."""
    v1 = R / "dit4dit_v1"
    outputs = [str(v1 / f) for f in ("losses.csv", "losses.png")] + sorted(map(str, v1.glob("train_config*.json")))
    return Study(name="trainings/dit4dit_v1/libero_spatial", kind="training", outputs=(*outputs, str(v1 / "checkpoint")),
                 inputs=(), build=_rebuild_with("(history: the first bundled checkpoint, not retrained)"),
                 section="dit4dit", not_recomputable="history: the first bundled checkpoint, kept as it was")


# --------------------------------------------------------------------------- results no table can be recomputed from

def _rebuild_with(command: str):
    def build(s, log):
        raise NotImplementedError(f"{s.name} is rebuilt by `{command}`")
    return build


MEASUREMENTS = {  # name -> (outputs, the command that measures it, section)
    "perf/train": (("perf/train.json",), "bench perf train --out results/perf/train.json", "perf"),
    "perf/eval": (("perf/eval.json",), "bench perf eval --suite libero_spatial --tasks 0,1 --episodes 2 "
                  "--out results/perf/eval.json", "perf"),
    "perf/executors": (("perf/executors.json",), "bench perf executors --tasks 0,1 --episodes 4 "
                       "--out results/perf/executors.json", "perf"),
    "perf/math": (("perf/math.json",), "bench perf math --out results/perf/math.json", "perf"),
    "perf/remote": (("perf/remote.json",), "bench perf remote --policy dit4dit --out results/perf/remote.json", "perf"),
    "perf/policy_tiny": (("perf/policy_tiny.json",), "bench perf policy --configs tiny --batches 1,8 --repeats 5 "
                         "--threads 1 --out results/perf/policy_tiny.json", "perf"),
    "perf/policy_full": (("perf/policy_full.json",), "bench perf policy --configs full --batches 1 --repeats 1 "
                         "--threads 1 --out results/perf/policy_full.json", "perf"),
    "perf/policy_gpu": (("perf/policy_gpu.json",), "bench perf policy --configs tiny,full --batches 1,8,32 --repeats 5 "
                        "--train-batch 8 --device cuda --out results/perf/policy_gpu.json (on a CUDA machine)", "perf"),
    "perf/policy_tiny_avx2": (("perf/policy_tiny_avx2.json",), "bench perf policy --configs tiny --batches 1,8 "
                              "--repeats 5 --threads 1 --out results/perf/policy_tiny_avx2.json (on an AVX2-only CPU)",
                              "perf"),
    "perf/micro": (("perf/micro.json",), "python -m pytest benchmarks --benchmark-json results/perf/micro.json", "perf"),
    "dit4dit/feature_use": (("dit4dit/feature_use.md", "dit4dit/feature_use.json"),
                            "bench probe features --data <held-out demos> --out results/dit4dit/feature_use", "dit4dit"),
    "baselines/replay_error": (("baselines/replay_error.md", "baselines/replay_error.json"),
                               "bench probe replay -p dit4dit -p groot -p dit4dit -c - -c - -c <the 20k recipe's "
                               "step-5000 checkpoint> --label 'dit4dit (bundled, 48k samples)' --label 'groot "
                               "(bundled, 48k samples)' --label 'dit4dit (20k recipe, step 5000, 80k samples)' "
                               "--demos 6", "baselines"),
    "verify/cross_machine": (tuple(f"verify/cross_machine_{m}.{x}" for m in ("native", "portable", "pinned", "scripted")
                                   for x in ("md", "json")),
                             "bench verify <a second machine's records> --all --math MODE (records in "
                             "../shared/reference/cross_machine)", "reproducibility"),
    "dit4dit/future_slot": (("dit4dit/future_slot.md", "dit4dit/future_slot.json"),
                            "bench analyze future-slot --data <held-out demos> --checkpoint results/dit4dit_v1/checkpoint",
                            "dit4dit"),
}
WHY_MEASURED = "a measurement; rerun its command"


def measurement_study(name: str, outputs: tuple[str, ...], command: str, section: str) -> Study:
    return Study(name=name, kind="measurement", outputs=tuple(str(R / o) for o in outputs), inputs=(),
                 build=_rebuild_with(command), section=section, not_recomputable=WHY_MEASURED)


def recompute_ablation_from_scores(csv: Path, scores: Path, budget: str = "small") -> list[str]:
    """The table again from its kept scores alone (what `bench ablate --from-scores` does, into a scratch
    folder), cell by cell against the committed one."""
    import tempfile

    from bench.ablate.run import plan_from_scores, rebuild_from_scores
    from bench.ablate.spec import SpecError, load_spec

    with tempfile.TemporaryDirectory() as tmp:
        try:
            rebuild_from_scores(plan_from_scores(load_spec(csv.stem), budget, scores), Path(tmp))
        except SpecError as exc:
            return [f"{csv}: {exc}"]
        table = pd.read_csv(Path(tmp) / csv.name)
    return frame_differences(table, pd.read_csv(csv), str(csv), key=["model", "value", "seed"])


def ablation_studies() -> list[Study]:
    """The ablation tables (their scores: results/ablations/scores) and the smoke-budget pipeline checks."""
    out = []
    for csv in sorted((R / "ablations" / "smoke").glob("*.csv")):
        flag = csv.stem.replace("_", "-")
        out.append(Study(name=f"ablations/smoke/{csv.stem}", kind="ablation",
                         outputs=tuple(str(csv.with_suffix(x)) for x in (".md", ".csv", ".png")), inputs=(),
                         build=_rebuild_with(f"bench ablate --{flag} --budget smoke --out results/ablations/smoke"),
                         section="ablations", not_recomputable="the smoke budget: a pipeline check, not a measurement"))
    for csv in sorted((R / "ablations").glob("*.csv")):
        name = f"ablations/{csv.stem}"
        scores = R / "ablations" / "scores"
        has_scores = inputs_file(scores, csv.stem, "small").exists()
        why = "" if has_scores else "its per-variant scores were never committed"
        out.append(Study(name=name, kind="ablation",
                         outputs=tuple(str(csv.with_suffix(x)) for x in (".md", ".csv", ".png") if csv.with_suffix(x).exists()),
                         inputs=(str(scores),) if has_scores else (),
                         build=_rebuild_with(f"bench ablate --{csv.stem.replace('_', '-')} --budget small "
                                                        "--scores results/ablations/scores"),
                         section="ablations", not_recomputable=why,
                         recompute=(lambda c=csv, sc=scores: recompute_ablation_from_scores(c, sc)) if has_scores
                         else None))
    return out


def folder_note_study(model: str) -> Study:
    """results/<model>/README.md: what produced the folder's numbers (model, scale, data, pixel path)."""
    from bench.studies.folders import recompute_folder_note, write_folder_note

    folder = R / model
    configs = tuple(sorted(str(p) for p in folder.rglob("train_config.json")))
    return Study(name=f"notes/{model}", kind="notes", outputs=(str(folder / "README.md"),), inputs=configs,
                 build=lambda s, log: write_folder_note(folder), section=model,
                 recompute=lambda: recompute_folder_note(folder))


NOTES = ("results/README.md", "results/dit4dit/recipe.md", "results/dit4dit_v1/README.md")  # prose, not studies


def studies() -> list[Study]:
    found = [evaluation_study(e) for e in EVALUATIONS]
    found += [comparison_study(c) for c in COMPARISONS]
    found += [zeroshot_study(n, t, f) for n, (t, f) in ZEROSHOT_TABLES.items()]
    found.append(gr1_study())
    found += [curves_study(n, runs, n.split("/")[0]) for n, runs in CURVES.items()]
    found += [training_study(t) for t in TRAININGS]
    found.append(learning_study())
    found += [folder_note_study(m) for m in MODELS]
    found.append(history_study())
    found += [measurement_study(n, *v) for n, v in MEASUREMENTS.items()]
    found += ablation_studies()
    return found
