"""`bench perf`: throughput and latency benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bench.cli.common import console, fail, headless_gl, load_suite, parse_tasks, perf_app

# The episodes the two-sided episode benchmarks (eval, executors) run, both sides alike.
SUITE = typer.Option("libero_spatial", "--suite", "-s")
TASKS = typer.Option("0,1", help="Task ids both sides run.")
EPISODES = typer.Option(2, min=1, help="Episodes per task, both sides.")
WORKERS = typer.Option(2, min=1, help="Sim workers, both sides.")
MAX_STEPS = typer.Option(None, min=1, help="Override max steps, both sides.")


@perf_app.command("eval")
def perf_eval(
    suite: str = SUITE,
    tasks: str = TASKS,
    episodes: int = EPISODES,
    workers: int = WORKERS,
    max_steps: Optional[int] = MAX_STEPS,
    out: Path = typer.Option(Path("results/perf/eval.json"), help="Where to write the measurements."),
):
    """Episodes/hour and env steps/s of our runner vs a naive peer-style loop, measured in one run."""
    from bench.perf.benchmarks import run_eval_benchmark

    s = load_suite(suite)
    ids = parse_tasks(s, tasks)
    headless_gl()
    result = run_eval_benchmark(s, ids, episodes, workers, max_steps, out, console=console)
    console.print_json(data={k: result[k] for k in ("ours_episodes_per_hour", "naive_episodes_per_hour", "ratio",
                                                     "ours_env_steps_per_s", "naive_env_steps_per_s")})
    console.print(f"written to {out}")


@perf_app.command("executors")
def perf_executors(
    suite: str = SUITE,
    tasks: str = TASKS,
    episodes: int = EPISODES,
    workers: int = WORKERS,
    max_steps: Optional[int] = MAX_STEPS,
    rounds: int = typer.Option(2, min=1, help="Runs per executor (alternating which goes first)."),
    address: Optional[str] = typer.Option(None, help="Ray cluster (default: one started here, on these cores)."),
    out: Path = typer.Option(Path("results/perf/executors.json"), help="Where to write the measurements."),
):
    """Episodes/hour on the local executor and on Ray, the same episodes, measured in one run: the Ray path's
    overhead."""
    from bench.cli.common import check_executor
    from bench.perf.benchmarks import run_executor_benchmark

    check_executor("ray")
    s = load_suite(suite)
    ids = parse_tasks(s, tasks)
    headless_gl()
    result = run_executor_benchmark(s, ids, episodes, workers, max_steps, rounds, address, out, log=console.print)
    console.print_json(data={k: result[k] for k in ("local_episodes_per_hour", "ray_episodes_per_hour",
                                                     "ray_over_local")})
    console.print(f"written to {out}")


@perf_app.command("policy")
def perf_policy(
    configs: str = typer.Option("tiny,full", help="DiT4DiT configs to measure (random weights)."),
    batches: str = typer.Option("1,8", help="Batch sizes for the latency of one action chunk."),
    repeats: int = typer.Option(3, min=1, help="Timed repeats per measurement (median reported)."),
    train_batch: int = typer.Option(8, min=1, help="Batch of the training-throughput measurement."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    threads: Optional[int] = typer.Option(None, min=1, help="torch CPU threads."),
    out: Path = typer.Option(Path("results/perf/policy.json"), help="Where to write the measurements."),
):
    """Latency per action chunk, early exit vs a full video pass, and training samples/s."""
    import json as _json

    import torch

    from bench.models.dit4dit import CONFIGS
    from bench.perf.policy import run_policy_benchmark

    names = [c.strip() for c in configs.split(",") if c.strip()]
    bad = [c for c in names if c not in CONFIGS]
    if bad:
        fail(f"unknown config(s) {', '.join(bad)}; valid: {', '.join(CONFIGS)}")
    try:
        sizes = [int(b) for b in batches.split(",")]
    except ValueError:
        fail(f"--batches takes comma-separated integers, got {batches!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        fail(f"--device {device}: no CUDA device here; valid: cpu")
    if threads:
        torch.set_num_threads(threads)
    result = run_policy_benchmark(names, sizes, repeats=repeats, train_batch=train_batch, device=device,
                                  log=console.print)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_json.dumps(result, indent=2))
    console.print(f"written to {out}")


@perf_app.command("train")
def perf_train(
    models: str = typer.Option("", help="Registered models to measure (default: every one; bench list policies)."),
    data: list[Path] = typer.Option([Path.home() / ".cache/dit4dit-bench/demos/libero_spatial_128_from224.hdf5"],
                                    "--data", "-d", help="Demo file(s) the steps read (make demos)."),
    config: str = typer.Option("tiny", "--config", "-c", help="Each model's named config."),
    batch_size: int = typer.Option(16, min=1, help="Samples per step."),
    steps: int = typer.Option(4, min=1, help="Timed steps per path and round."),
    rounds: int = typer.Option(2, min=1, help="Rounds (alternating which path goes first)."),
    threads: Optional[int] = typer.Option(None, min=1, help="torch CPU threads (default: torch's choice)."),
    out: Path = typer.Option(Path("results/perf/train.json"), help="Where to write the measurements."),
):
    """Training samples/s of every model, old path (HDF5 reads, fp32, eager) against new (frame cache, bf16,
    compiled blocks) in one run, where a step's time goes, FLOPs per sample and the fraction of matmul peak."""
    import json as _json

    import torch

    from bench.models.registry import load_models
    from bench.perf.train import run_train_benchmark

    registered = list(load_models())
    names = [m.strip() for m in models.split(",") if m.strip()] or registered
    bad = [m for m in names if m not in registered]
    if bad:
        fail(f"unknown model(s) {', '.join(bad)}; valid: {', '.join(registered)}")
    for path in data:
        if not path.exists():
            fail(f"--data {path}: no such file; make it with `bench demos make libero_spatial`, or pass another demo file")
    if threads:
        torch.set_num_threads(threads)
    result = run_train_benchmark(names, [str(p) for p in data], config, batch_size, steps, rounds, log=console.print)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_json.dumps(result, indent=2))
    console.print_json(data={k: v for k, v in result.items() if k.endswith("_speedup")})
    console.print(f"written to {out}")


@perf_app.command("math")
def perf_math(
    rounds: int = typer.Option(4, min=1, help="Fresh processes per mode (modes alternate)."),
    calls: int = typer.Option(16, min=1, help="Action chunks timed per process."),
    e2e_tasks: str = typer.Option("0,1", help="libero_spatial tasks for the end-to-end part ('' to skip)."),
    e2e_rounds: int = typer.Option(2, min=1, help="End-to-end runs per mode."),
    out: Path = typer.Option(Path("results/perf/math.json"), help="Where to write the measurements."),
):
    """What portable float math costs against native: chunk latency and end-to-end wall time, one run."""
    from bench.perf.benchmarks import run_math_benchmark

    try:
        tasks = [int(t) for t in e2e_tasks.split(",") if t.strip()]
    except ValueError:
        fail(f"--e2e-tasks takes comma-separated task ids, got {e2e_tasks!r}")
    result = run_math_benchmark(rounds, calls, tasks, e2e_rounds, out, log=console.print)
    keep = ("median_chunk_latency_s", "chunk_latency_ratio_portable_over_native", "modes_agree_bitwise",
            "reruns_agree_bitwise")
    console.print_json(data={k: result[k] for k in keep})
    if "end_to_end" in result:
        console.print_json(data={k: result["end_to_end"][k] for k in ("median_wall_s", "wall_ratio_portable_over_native")})
    console.print(f"written to {out}")


@perf_app.command("remote")
def perf_remote(
    policy: str = typer.Option("dit4dit", "--policy", "-p", help="The policy served (bench list policies)."),
    calls: int = typer.Option(30, min=1, help="Chunks per measurement (per client for throughput)."),
    clients: str = typer.Option("1,2,4", help="Concurrent client counts for the throughput part."),
    out: Path = typer.Option(Path("results/perf/remote.json"), help="Where to write the measurements."),
):
    """The remote path's cost: one chunk in-process vs through bench serve, and throughput by client count."""
    from bench.cli.common import set_math

    set_math("portable")  # as bench serve and bench run compute, before torch loads
    from bench.perf.benchmarks import run_remote_benchmark

    try:
        counts = tuple(int(c) for c in clients.split(",") if c.strip())
    except ValueError:
        fail(f"--clients takes comma-separated counts, got {clients!r}")
    result = run_remote_benchmark(policy, calls, counts, out, log=console.print)
    console.print_json(data={k: result[k] for k in ("median_chunk_s", "remote_overhead_s", "chunks_per_s_by_clients")})
    console.print(f"written to {out}")
