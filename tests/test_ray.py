"""`bench run --executor ray` on a real Ray cluster of two processes on 127.0.0.1 (a head and a worker node)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.eval.serve import free_port

RAY = str(Path(sys.executable).parent / "ray")


class Cluster:
    """A head (no CPUs for tasks) and one worker node with 2 CPUs, as separate processes on 127.0.0.1."""

    def __init__(self):
        import secrets
        import tempfile

        port = free_port()
        tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's unix sockets live under it
        # Ray 2.59+ authenticates its own nodes and drivers with a shared token: every process gets the same one
        self.env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token",
                        RAY_AUTH_TOKEN=secrets.token_hex(16))
        head = [RAY, "start", "--head", f"--port={port}", "--num-cpus=0", "--node-ip-address=127.0.0.1",
                "--include-dashboard=false", f"--temp-dir={tmp}", "--disable-usage-stats"]
        r = subprocess.run(head, env=self.env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        self.address = f"127.0.0.1:{port}"
        self.node = self.add_node()

    def add_node(self) -> subprocess.Popen:
        """A worker node, in the foreground of a process we hold (so a test can kill the whole node)."""
        node = subprocess.Popen([RAY, "start", f"--address={self.address}", "--num-cpus=2",
                                 "--node-ip-address=127.0.0.1", "--block"], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        while _cpus(self) < 2:  # the node has joined when the cluster counts its CPUs
            assert node.poll() is None and time.time() < deadline, "the Ray worker node did not start"
            time.sleep(1)
        return node

    def kill_node(self) -> None:
        """Lose the worker node as a machine is lost: its raylet and every process on it die at once."""
        import psutil

        root = psutil.Process(self.node.pid)
        for p in [*root.children(recursive=True), root]:
            p.kill()
        self.node.wait()

    def stop(self) -> None:
        subprocess.run([RAY, "stop", "--force"], env=self.env, capture_output=True, timeout=120)


def _cpus(c: Cluster) -> float:
    r = subprocess.run([sys.executable, "-c", "import json, ray; ray.init(address=%r, log_to_driver=False); "
                        "print(json.dumps(ray.available_resources().get('CPU', 0)))" % c.address],
                       env=c.env, capture_output=True, text=True, timeout=120)
    return float(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 and r.stdout.strip() else 0.0


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray")  # the optional extra: pip install -e '.[ray]'
    from ray._common.network_utils import node_ip_address_from_perspective

    # Ray advertises a node by the machine's outward address even when told 127.0.0.1; `make test-ray` runs
    # these tests in a network namespace of their own, where loopback is the only address there is
    ip = node_ip_address_from_perspective(None)
    if not ip.startswith("127.") and os.environ.get("BENCH_RAY_ANY_ADDRESS") != "1":
        pytest.skip(f"Ray would serve on {ip}, not loopback: run `make test-ray` (a network namespace with only "
                    "127.0.0.1), or set BENCH_RAY_ANY_ADDRESS=1 to allow it")
    c = Cluster()
    yield c
    c.stop()


def _cmd(bench_cmd, out, *extra, policy="random", episodes=2, steps=24):
    return [*bench_cmd, "run", "--suite", "libero_spatial", "--policy", policy, "--tasks", "0", "--episodes",
            str(episodes), "--max-steps", str(steps), "--out", str(out), *extra]


def _episodes(out: Path) -> dict:
    """Each episode's latest (final_state, steps, error)."""
    return {(rec := json.loads(line))["key"]: (rec["final_state"], rec["steps"], rec["error"])
            for line in (out / "episodes.jsonl").read_text().splitlines()}


def _run(bench_cmd, out, *extra, env=None, **kw):
    r = subprocess.run(_cmd(bench_cmd, out, *extra, **kw), capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return _episodes(out)


@pytest.mark.slow
def test_ray_executor_reproduces_the_local_executors_episodes(cluster, bench_cmd, tmp_path, gl):
    local = _run(bench_cmd, tmp_path / "local")
    on_ray = _run(bench_cmd, tmp_path / "ray", "--executor", "ray", "--address", cluster.address, env=cluster.env)
    assert local == on_ray and all(v[2] is None for v in local.values())


@pytest.mark.slow
def test_a_policy_in_a_ray_actor_acts_as_it_does_in_the_runner(cluster, bench_cmd, tmp_path, gl):
    """--policy-gpus 0: the bundled DiT4DiT built and run in an actor (portable math set there) gives the
    episodes it gives in the runner's own process."""
    local = _run(bench_cmd, tmp_path / "local", policy="dit4dit")
    on_ray = _run(bench_cmd, tmp_path / "ray", "--executor", "ray", "--address", cluster.address, "--policy-gpus",
                  "0", "--workers", "1", env=cluster.env, policy="dit4dit")  # the node's 2 CPUs: policy, sim
    assert local == on_ray and all(v[2] is None for v in local.values())
    r = subprocess.run(_cmd(bench_cmd, tmp_path / "gpu", "--executor", "ray", "--address", cluster.address,
                            "--policy-gpus", "1", "--math", "native", policy="dit4dit"),
                       env=cluster.env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "the Ray cluster has 0 GPUs" in r.stderr


TWO = """
flag: two-timesteps
title: Two feature timesteps
question: do Ray tasks give the local executor's results?
models: [dit4dit]
config: tiny
axis: {name: feature timestep, key: feature_timestep, values: [0.5, 0.995], default: 0.995}
"""
FIXTURE = "tests/fixtures/libero_object_t0_2demos_32.hdf5"


@pytest.mark.slow
def test_an_ablation_on_ray_gives_the_local_results_and_reuses_its_cache(cluster, bench_cmd, tmp_path, gl):
    import pandas as pd

    spec = tmp_path / "two.yaml"
    spec.write_text(TWO)

    def ablate(where: str, *extra):
        cmd = [*bench_cmd, "ablate", "--spec", str(spec), "--budget", "smoke", "--data", FIXTURE, "--heldout",
               FIXTURE, "--root", str(tmp_path / where / "cache"), "--out", str(tmp_path / where), *extra]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=cluster.env)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        return pd.read_csv(tmp_path / where / "two.csv")

    local = ablate("local")
    on_ray = ablate("ray", "--executor", "ray", "--address", cluster.address)
    cols = ["value", "action_error", "episodes", "successes"]
    assert on_ray[cols].equals(local[cols])
    def finals(where: str) -> list:  # the closed-loop episodes themselves, step for step, per eval job
        return [sorted(_episodes(p.parent).values())
                for p in sorted((tmp_path / where / "cache" / "eval").glob("*/episodes.jsonl"))]

    assert finals("ray") == finals("local") and len(finals("local")) == 2
    ablate("ray", "--executor", "ray", "--address", cluster.address)  # everything is cached: nothing reruns
    logs = list((tmp_path / "ray" / "cache" / "train").glob("*.log"))
    assert len(logs) == 2 and all(log.read_text().count("\n$ ") == 1 for log in logs)


@pytest.mark.slow
def test_a_worker_node_lost_mid_run_loses_no_finished_episode_and_resume_reruns_the_lost(cluster, bench_cmd, tmp_path,
                                                                                         gl):
    local = _run(bench_cmd, tmp_path / "local", episodes=4, steps=64)
    out = tmp_path / "ray"
    records = out / "episodes.jsonl"
    args = ("--executor", "ray", "--address", cluster.address)
    run = subprocess.Popen(_cmd(bench_cmd, out, *args, episodes=4, steps=64), env=cluster.env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while not (records.exists() and records.read_text().count("\n") >= 1):  # the first episode has finished
        assert run.poll() is None, run.stdout.read()
        time.sleep(0.2)
    cluster.kill_node()
    before = records.read_text()
    cluster.node = cluster.add_node()  # the cluster replaces the machine; the run goes on with new actors
    assert run.wait(timeout=900) == 0, run.stdout.read()
    after = records.read_text()
    assert after.startswith(before)  # nothing finished was lost or rewritten
    lost = [json.loads(line) for line in after.splitlines() if json.loads(line)["error_kind"] == "worker_died"]
    assert lost, after
    assert _run(bench_cmd, out, *args, "--resume", env=cluster.env, episodes=4, steps=64) == local
    assert all(v[2] is None for v in local.values())


def test_an_unknown_executor_names_the_valid_ones(bench_cmd, tmp_path):
    r = subprocess.run([*bench_cmd, "run", "--suite", "libero_spatial", "--policy", "zero", "--executor", "slurm",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "local, ray" in r.stderr
