"""One library call in a process of its own: `python -m bench.worker JOB.json`.

Studies (ablation jobs) and benchmarks run work apart from themselves so that each job sets its float math
before torch loads, logs to its own file and can be stopped and resumed; the worker calls the library
(`train`, `evaluate`, `write_action_error`, `serve_policy`), never the command line. A job file is one JSON
object: {"kind": "train" | "eval" | "offline" | "curve_point" | "serve", ...its arguments}.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def job_command(job: dict, spec: Path) -> list[str]:
    """Write `job` to `spec` and return the command that runs it in a fresh process."""
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(json.dumps(job, indent=1))
    return [sys.executable, "-m", "bench.worker", str(spec)]


def run_train(job: dict) -> None:
    import torch

    from bench.models.registry import model_config
    from bench.train.loop import TrainConfig, train

    torch.set_num_threads(job["threads"])
    cfg = TrainConfig(**job["train"])
    last = {"step": 0}

    def on_log(step: int, row: dict) -> None:
        if step - last["step"] >= 100 or step == cfg.steps:  # a line now and then: the log is for diagnosis
            last["step"] = step
            print(f"step {step}/{cfg.steps} " + " ".join(f"{k} {v:.4g}" for k, v in row.items()), flush=True)

    train(model_config(job["model"], job["config"], **job["overrides"]), job["data"], job["out"], cfg,
          resume=True, on_log=on_log, until=job.get("until"))


def run_eval(job: dict) -> None:
    from bench.eval import EvalRequest, evaluate

    req = EvalRequest(**{**job["request"], "out": Path(job["request"]["out"])})
    result = evaluate(req, log=lambda line: print(line, flush=True))
    overall = result.table.iloc[-1]
    print(f"{result.suite}: {overall['successes']}/{overall['episodes']} successes -> {result.out}", flush=True)


def run_offline(job: dict) -> None:
    from bench.analysis.offline import write_action_error

    result = write_action_error(job["checkpoint"], job["data"], Path(job["out"]), windows=job["windows"],
                                seed=job.get("seed", 0))
    print(f"action error {result['mean']:.4f} on {result['windows']} windows -> {job['out']}", flush=True)


def run_curve_point(job: dict) -> None:
    """One learning-curve point scored (closed loop and held-out action error; cached, resumes)."""
    from bench.analysis.learning import CurveSpec, Point, score_point

    spec = CurveSpec(**{**job["spec"], "heldout": tuple(job["spec"]["heldout"])})
    point = Point(Path(job["run"]), job["step"], Path(job["checkpoint"]))
    result = score_point(point, spec, log=lambda line: print(line, flush=True))
    print(f"step {point.step}: success {result['success_rate']:.3f}", flush=True)


def run_serve(job: dict) -> None:
    from bench.eval.serve import serve_policy

    serve_policy(job["policy"], checkpoint=job.get("checkpoint"), port=job["port"], math=job["math"],
                 on_ready=lambda line: print(line, flush=True))


KINDS = {"train": run_train, "eval": run_eval, "offline": run_offline, "curve_point": run_curve_point,
         "serve": run_serve}
MATH_FIRST = {"eval": lambda job: job["request"]["math"], "serve": lambda job: job["math"],
              "curve_point": lambda job: "portable"}  # scored as `bench run` scores


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.worker JOB.json", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text())
    kind = job.pop("kind", None)
    if kind not in KINDS:
        print(f"unknown job kind {kind!r}; valid: {', '.join(KINDS)}", file=sys.stderr)
        return 2
    if kind in MATH_FIRST:  # float math before anything loads torch
        from bench.core.mathmode import apply

        apply(MATH_FIRST[kind](job))
    KINDS[kind](job)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
