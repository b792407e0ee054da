"""`bench perf eval`: our runner against a naive peer-style loop, same episodes, one run.

The naive loop is written the way peers' example scripts evaluate on LIBERO: one
env per task in the main process, episodes one after another, both cameras
rendered inside every `env.step`, a hard reset per episode, the policy asked
every 8 steps. Both loops run the same tasks, initial states, protocol and the
same `zero` policy (which declares both cameras, like a vision policy), so the
ratio is throughput only.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.policies.builtin import ZeroPolicy
from bench.policies.contract import EpisodeInfo, ObservationBatch
from bench.core.provenance import provenance
from bench.worker import job_command
from bench.core.records import read_records
from bench.eval.runner import RunConfig, Runner
from bench.sim.suites import LIBERO_CAMERAS, Protocol, Suite


def naive_loop(suite: Suite, task_ids: list[int], episodes: int, protocol: Protocol, progress=None) -> dict:
    """Peer-style evaluation loop; returns wall time, env steps and where the time went."""
    from bench.sim.libero.env import LiberoSim, libero_state

    policy = ZeroPolicy()
    timing: dict[str, float] = defaultdict(float)
    env_steps = 0
    successes = 0
    t_all = time.perf_counter()
    for tid in task_ids:
        task = suite.task(tid)
        t = time.perf_counter()
        sim = LiberoSim(task, protocol, hard_reset=True, camera_obs=True)
        timing["env_create_s"] += time.perf_counter() - t
        env = sim.env
        init_states = suite.initial_conditions(tid)
        for i in range(episodes):
            t = time.perf_counter()
            env.reset()  # a hard reset: the model and the renderer are rebuilt
            obs = env.set_init_state(init_states[i])
            timing["reset_s"] += time.perf_counter() - t
            policy.reset(EpisodeInfo(f"{tid}/{i}", task, i, protocol.seed))
            wait = np.asarray(protocol.wait_action)
            t = time.perf_counter()
            for _ in range(protocol.wait_steps):
                obs, _, done, _ = env.step(wait)
                env_steps += 1
            timing["step_incl_render_s"] += time.perf_counter() - t
            plan: list[np.ndarray] = []
            done = False
            for step in range(protocol.max_steps):
                if not plan:
                    t = time.perf_counter()
                    images = {c: obs[f"{LIBERO_CAMERAS[c]}_image"][::-1, ::-1] for c in protocol.cameras}
                    batch = ObservationBatch([f"{tid}/{i}"], {c: im[None] for c, im in images.items()},
                                             libero_state(obs)[None], [task.language], np.array([step]))
                    plan = list(policy.act(batch)[0][: protocol.executed_chunk])
                    timing["policy_s"] += time.perf_counter() - t
                t = time.perf_counter()
                obs, _, done, _ = env.step(plan.pop(0))
                timing["step_incl_render_s"] += time.perf_counter() - t
                env_steps += 1
                if done:
                    break
            successes += int(done)
            if progress is not None:
                progress()
        sim.close()
    wall = time.perf_counter() - t_all
    return {"wall_s": wall, "episodes": len(task_ids) * episodes, "env_steps": env_steps,
            "successes": successes, "timing_s": dict(timing)}


def ours(suite: Suite, task_ids: list[int], episodes: int, workers: int, protocol: Protocol, progress=None,
         executor: str = "local", ray_address: str | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = RunConfig(suite=suite, policy_name="zero", task_ids=task_ids, out=Path(tmp), episodes=episodes,
                        workers=workers, protocol=protocol, executor=executor, ray_address=ray_address)
        runner = Runner(cfg, ZeroPolicy(), on_episode=(lambda rec: progress()) if progress else None)
        t = time.perf_counter()
        runner.run()
        wall = time.perf_counter() - t
        records = read_records(Path(tmp) / "episodes.jsonl")
    timing: dict[str, float] = defaultdict(float)
    for r in records:
        for k, v in r["timing"].items():
            timing[k] += v
    timing["policy_s"] = runner.policy_s
    errors = [r["error"] for r in records if r["error"]]
    if errors:
        raise RuntimeError(f"our runner recorded errors during the benchmark: {errors[0]}")
    return {"wall_s": wall, "episodes": len(records),
            "env_steps": sum(r["steps"] for r in records) + len(records) * protocol.wait_steps,
            "successes": sum(r["success"] for r in records), "policy_calls": runner.policy_calls,
            "timing_s": dict(timing), "timing_note": "summed over episodes of all workers (CPU-parallel)"}


def run_eval_benchmark(suite: Suite, task_ids: list[int], episodes: int, workers: int, max_steps: int | None,
                       out: Path, console=None) -> dict:
    from rich.progress import Progress

    protocol = suite.protocol if max_steps is None else suite.protocol.replace(max_steps=max_steps)
    prov = provenance(protocol)  # the code that runs, captured before it runs
    n = len(task_ids) * episodes
    with Progress(console=console, transient=True) as bar:
        t_ours = bar.add_task("ours", total=n)
        o = ours(suite, task_ids, episodes, workers, protocol, progress=lambda: bar.advance(t_ours))
        t_naive = bar.add_task("naive", total=n)
        v = naive_loop(suite, task_ids, episodes, protocol, progress=lambda: bar.advance(t_naive))
    o, v = _rates(o), _rates(v)
    result = {
        "ours_episodes_per_hour": round(o["episodes_per_hour"], 1),
        "naive_episodes_per_hour": round(v["episodes_per_hour"], 1),
        "ratio": round(o["episodes_per_hour"] / v["episodes_per_hour"], 2),
        "ours_env_steps_per_s": round(o["env_steps_per_s"], 1),
        "naive_env_steps_per_s": round(v["env_steps_per_s"], 1),
        "steps_ratio": round(o["env_steps_per_s"] / v["env_steps_per_s"], 2),
        "setup": {"suite": suite.name, "tasks": task_ids, "episodes_per_task": episodes, "workers": workers,
                  "policy": "zero (declares both cameras, 8-step chunks)", "max_steps": protocol.max_steps},
        "ours": o,
        "naive": v,
        "provenance": prov,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=float))
    return result


def _rates(d: dict) -> dict:
    """A loop's measurements with its episodes/hour and env steps/s."""
    return {**d, "episodes_per_hour": 3600.0 * d["episodes"] / d["wall_s"],
            "env_steps_per_s": d["env_steps"] / d["wall_s"]}


# --------------------------------------------------------------------------- executors
def run_executor_benchmark(suite: Suite, task_ids: list[int], episodes: int, workers: int, max_steps: int | None,
                           rounds: int, address: str | None, out: Path, log=print) -> dict:
    """Episodes/hour of the same episodes on the local executor and on Ray (`address`, None: a Ray cluster
    started here on this machine's cores), rounds alternating which goes first; medians compared."""
    import statistics

    from bench.sim.ray_workers import connect

    protocol = suite.protocol if max_steps is None else suite.protocol.replace(max_steps=max_steps)
    prov = provenance(protocol)
    cluster = connect(address)  # joined (or started) before timing: a cluster outlives any one run
    runs: dict[str, list[dict]] = {"local": [], "ray": []}
    for r in range(rounds):
        for executor in ("local", "ray") if r % 2 == 0 else ("ray", "local"):
            d = _rates(ours(suite, task_ids, episodes, workers, protocol, executor=executor, ray_address=address))
            log(f"round {r + 1}/{rounds} {executor}: {d['episodes_per_hour']:.1f} episodes/hour")
            runs[executor].append(d)
    median = {ex: statistics.median(d["episodes_per_hour"] for d in ds) for ex, ds in runs.items()}
    result = {
        "local_episodes_per_hour": round(median["local"], 1),
        "ray_episodes_per_hour": round(median["ray"], 1),
        "ray_over_local": round(median["ray"] / median["local"], 3),
        "setup": {"suite": suite.name, "tasks": task_ids, "episodes_per_task": episodes, "workers": workers,
                  "rounds": rounds, "policy": "zero (declares both cameras, 8-step chunks)",
                  "max_steps": protocol.max_steps, "ray_address": address or "a local cluster on this machine",
                  "ray_cluster_resources": {k: v for k, v in cluster.items() if k in ("CPU", "GPU", "memory")}},
        "runs": runs,
        "provenance": prov,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=float))
    return result


# --------------------------------------------------------------------------- math modes
def run_math_benchmark(rounds: int, calls: int, e2e_tasks: list[int], e2e_rounds: int, out: Path,
                       log=print) -> dict:
    """What portable float math costs, measured in one run: the bundled DiT4DiT's latency per action chunk in
    each mode (fresh processes, modes alternating so drift hits both), and, if `e2e_tasks`, the wall time of
    the same short evaluation (`bench run`, 1 episode per task) in each mode. Also says whether the two
    modes compute the same actions."""
    import statistics
    import subprocess
    import sys

    from bench.core.mathmode import MODES

    probes: dict[str, list[dict]] = {m: [] for m in MODES}
    for r in range(rounds):
        for mode in (MODES if r % 2 == 0 else MODES[::-1]):
            proc = subprocess.run([sys.executable, "-m", "bench.perf.mathprobe", "--mode", mode, "--calls", str(calls)],
                                  capture_output=True, text=True, check=True)
            probes[mode].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            log(f"round {r + 1}/{rounds} {mode}: {1e3 * probes[mode][-1]['median_call_s']:.1f} ms per chunk")
    latency = {m: statistics.median(x for p in probes[m] for x in p["latencies_s"]) for m in MODES}
    digests = {m: sorted({p["actions_digest"] for p in probes[m]}) for m in MODES}
    result = {
        "what": "bundled tiny DiT4DiT, one observation per call (as the runner calls it), 1 thread",
        "median_chunk_latency_s": latency,
        "chunk_latency_ratio_portable_over_native": latency["portable"] / latency["native"],
        "actions_digest": digests,
        "modes_agree_bitwise": digests["portable"] == digests["native"],
        "reruns_agree_bitwise": all(len(v) == 1 for v in digests.values()),
        "math": {m: probes[m][0]["math"] for m in MODES},
        "rounds": rounds, "calls_per_round": calls,
    }
    if e2e_tasks:
        walls: dict[str, list[float]] = {m: [] for m in MODES}
        for r in range(e2e_rounds):
            for mode in (MODES if r % 2 == 0 else MODES[::-1]):
                with tempfile.TemporaryDirectory() as tmp:
                    job = {"kind": "eval", "request": {"suite": "libero_spatial", "policy": "dit4dit",
                                                       "tasks": ",".join(map(str, e2e_tasks)), "episodes": 1,
                                                       "math": mode, "out": f"{tmp}/run"}}
                    t = time.perf_counter()
                    subprocess.run(job_command(job, Path(tmp) / "job.json"), capture_output=True, check=True)
                    walls[mode].append(time.perf_counter() - t)
                log(f"end-to-end round {r + 1}/{e2e_rounds} {mode}: {walls[mode][-1]:.1f} s")
        wall = {m: statistics.median(v) for m, v in walls.items()}
        result["end_to_end"] = {"command": f"evaluate libero_spatial, dit4dit, tasks "
                                           f"{','.join(map(str, e2e_tasks))}, 1 episode each, math MODE, 2 workers "
                                           "(as bench run)",
                                "median_wall_s": wall, "walls_s": walls,
                                "wall_ratio_portable_over_native": wall["portable"] / wall["native"],
                                "note": "wall time of the whole command, start-up included"}
    result["provenance"] = provenance()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return result


def run_remote_benchmark(policy_name: str, calls: int, clients: tuple[int, ...], out: Path, log=print) -> dict:
    """What the remote path costs, in one run: the median time of one action chunk in-process (the policy's
    act on one row) and through `bench serve` + openpi-client on 127.0.0.1 (the same policy in another
    process), and the chunks per second `bench serve` answers to 1, 2, 4... concurrent clients (which it
    batches into shared act calls)."""
    import subprocess
    import threading
    import time

    import numpy as np
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    from bench.policies import make_policy
    from bench.policies.contract import EpisodeInfo, ObservationBatch
    from bench.core.provenance import provenance
    from bench.sim.suites import get_suite

    rng = np.random.default_rng(0)
    img = {c: rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for c in ("agentview", "eye_in_hand")}
    state = rng.normal(size=8).astype(np.float32)
    prompt = get_suite("libero_spatial").task(0).language
    policy = make_policy(policy_name)
    policy.reset(EpisodeInfo(key="bench/perf", task=get_suite("libero_spatial").task(0), init_id=0, seed=7))
    batch = ObservationBatch(["bench/perf"], {c: v[None] for c, v in img.items()}, state[None], [prompt],
                             np.zeros(1, dtype=np.int64))
    from bench.perf.policy import _time as median_time  # one warm-up call, then the median of `calls`

    local = median_time(lambda: policy.act(batch), calls)
    log(f"in-process: {1e3 * local:.1f} ms per chunk")

    from bench.eval.serve import free_port

    port = free_port()
    spec = Path(tempfile.mkdtemp()) / "serve.json"
    server = subprocess.Popen(job_command({"kind": "serve", "policy": policy_name, "port": port, "math": "portable"},
                                          spec), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from bench.eval.serve import wait_healthy

        wait_healthy(port, server, timeout_s=180)
        obs = {"observation/image": img["agentview"], "observation/wrist_image": img["eye_in_hand"],
               "observation/state": state, "prompt": prompt}
        client = WebsocketClientPolicy("127.0.0.1", port)
        remote = median_time(lambda: client.infer(obs), calls)
        import urllib.request

        server_side = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10).read())
        log(f"through bench serve: {1e3 * remote:.1f} ms per chunk; in the server (mean ms): "
            + ", ".join(f"{k} {v:.1f}" for k, v in server_side["mean_ms"].items()))
        throughput = {}
        for k in clients:
            conns = [WebsocketClientPolicy("127.0.0.1", port) for _ in range(k)]
            for c in conns:
                c.infer(obs)

            def work(c):
                for _ in range(calls):
                    c.infer(obs)
            threads = [threading.Thread(target=work, args=(c,)) for c in conns]
            t = time.perf_counter()
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            throughput[k] = k * calls / (time.perf_counter() - t)
            log(f"{k} concurrent client(s): {throughput[k]:.1f} chunks/s")
    finally:
        server.terminate()
        server.wait(timeout=30)
    result = {"what": run_remote_benchmark.__doc__.strip(), "policy": policy_name, "calls": calls,
              "median_chunk_s": {"in_process": local, "remote": remote},
              "remote_overhead_s": remote - local, "remote_over_in_process": remote / local,
              "server_mean_ms_one_client": server_side["mean_ms"],
              "chunks_per_s_by_clients": throughput,
              "scaling_4_over_1": throughput.get(4, float("nan")) / throughput[1] if 1 in throughput else None,
              "provenance": provenance()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return result
