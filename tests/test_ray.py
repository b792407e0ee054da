"""`bench run --executor ray` on a real Ray cluster of two processes on 127.0.0.1 (a head and a worker node)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.serve import free_port

RAY = str(Path(sys.executable).parent / "ray")


@pytest.fixture(scope="module")
def cluster():
    """A head (no CPUs for tasks) and one worker node with 2 CPUs, as separate processes."""
    pytest.importorskip("ray")  # the optional extra: pip install -e '.[ray]'
    import tempfile

    port = free_port()
    tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's unix sockets live under it
    import secrets

    # Ray 2.59+ authenticates its own nodes and drivers with a shared token: every process gets the same one
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))
    head = [RAY, "start", "--head", f"--port={port}", "--num-cpus=0", "--node-ip-address=127.0.0.1",
            "--include-dashboard=false", f"--temp-dir={tmp}", "--disable-usage-stats"]
    r = subprocess.run(head, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    address = f"127.0.0.1:{port}"
    r = subprocess.run([RAY, "start", f"--address={address}", "--num-cpus=2", "--node-ip-address=127.0.0.1"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    yield address, env
    subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)


def _run(bench_cmd, out, *extra, env=None):
    cmd = [*bench_cmd, "run", "--suite", "libero_spatial", "--policy", "random", "--tasks", "0", "--episodes", "2",
           "--max-steps", "24", "--out", str(out), *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return {(rec := json.loads(line))["key"]: (rec["final_state"], rec["steps"], rec["error"])
            for line in (out / "episodes.jsonl").read_text().splitlines()}


@pytest.mark.slow
def test_ray_executor_reproduces_the_local_executors_episodes(cluster, bench_cmd, tmp_path, gl):
    local = _run(bench_cmd, tmp_path / "local")
    address, env = cluster
    on_ray = _run(bench_cmd, tmp_path / "ray", "--executor", "ray", "--address", address, env=env)
    assert local == on_ray and all(v[2] is None for v in local.values())


def test_an_unknown_executor_names_the_valid_ones(bench_cmd, tmp_path):
    r = subprocess.run([*bench_cmd, "run", "--suite", "libero_spatial", "--policy", "zero", "--executor", "slurm",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "local, ray" in r.stderr
