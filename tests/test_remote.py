"""Remote policies against real servers on 127.0.0.1: `bench serve` (driven by openpi-client and by
`bench run --policy openpi`), a ZMQ server speaking Isaac-GR00T's messages and a websocket server speaking
the official DiT4DiT server's, both written here; and every fault (down, slow, dies, garbage) recorded
without losing an episode, then rerun by --resume."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import numpy as np
import pytest

from bench.policies import make_policy
from bench.core.records import read_records
from bench.eval.serve import free_port


@pytest.fixture(scope="module")
def served(served_dit4dit):
    """`bench serve --policy dit4dit` (the bundled checkpoint) in its own process: its port."""
    return served_dit4dit[0]


def obs_row(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"observation/image": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
            "observation/wrist_image": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
            "observation/state": rng.normal(size=8).astype(np.float32), "prompt": "pick up the black bowl"}


def test_openpi_client_drives_bench_serve(served):
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    client = WebsocketClientPolicy("127.0.0.1", served)
    meta = client.get_server_metadata()
    assert meta["policy"] == "dit4dit" and meta["checkpoint_hash"] and meta["spec"]["chunk_length"] == 8
    actions = client.infer(obs_row())["actions"]
    assert actions.shape == (8, 7) and np.isfinite(actions).all()
    with pytest.raises(RuntimeError, match="missing 'observation/image'"):
        client.infer({"prompt": "no images"})


def _run(tmp_path, policy: str, name: str, args: list[str] = (), resume: bool = False):
    cmd = [sys.executable, "-m", "bench.cli", "run", "--suite", "libero_spatial", "--policy", policy, "--tasks", "0,1",
           "--episodes", "1", "--max-steps", "24", "--workers", "2", "--out", str(tmp_path / name)]
    for a in args:
        cmd += ["--policy-arg", a]
    if resume:
        cmd.append("--resume")
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return {r["key"]: r for r in read_records(tmp_path / name / "episodes.jsonl")}


def test_a_remote_run_reproduces_the_in_process_run(served, tmp_path, gl):
    local = _run(tmp_path, "dit4dit", "local")
    remote = _run(tmp_path, "openpi", "remote", [f"port={served}", "chunk=8", "render=0"])  # the suite's 224 px
    assert set(local) == set(remote) and len(local) == 2
    for key in local:
        assert remote[key]["error"] is None, remote[key]["error"]
        assert (remote[key]["steps"], remote[key]["final_state"]) == (local[key]["steps"], local[key]["final_state"])
        meta = remote[key]["policy_meta"]
        assert meta["peer"] == "openpi" and meta["server"]["policy"] == "dit4dit"
        assert meta["server"]["checkpoint_hash"] == local[key]["checkpoint_hash"]
        assert remote[key]["policy_args"] == {"port": served, "chunk": 8, "render": 0}


# ------------------------------------------------------------------------------------------ peers' servers
class Gr00tServer(threading.Thread):
    """A ZMQ REP server with Isaac-GR00T's message layout (msgpack, arrays as .npy bytes)."""

    def __init__(self, port: int, mode: str = "ok"):
        super().__init__(daemon=True)
        import zmq

        self.port, self.mode, self.stop, self.seen = port, mode, False, []
        self.sock = zmq.Context.instance().socket(zmq.REP)
        self.sock.bind(f"tcp://127.0.0.1:{port}")

    def run(self):
        from bench.policies.remote import Gr00tPolicy

        while not self.stop:
            if not self.sock.poll(100):
                continue
            req = Gr00tPolicy.unpack(self.sock.recv())
            try:
                reply = self.answer(req)
            except Exception as exc:  # answered as GR00T's server does: {"error": message}
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            self.sock.send(Gr00tPolicy.pack(reply))
        self.sock.close(linger=0)

    def answer(self, req: dict):
        ep = req["endpoint"]
        self.seen.append(ep)
        if ep == "ping":
            reply = {"status": "ok", "message": "Server is running"}
        elif ep == "get_modality_config":
            reply = {"video": {"modality_keys": ["video.image", "video.wrist_image"]}}
        elif ep == "reset":
            reply = {}
        elif self.mode == "garbage":
            reply = [{"action.x": "not numbers"}, {}]
        else:
            obs = req["data"]["observation"]
            assert obs["video.image"].shape == (1, 224, 224, 3) and obs["state.gripper"].shape == (1, 2)
            assert obs["state.x"].shape == (1, 1) and isinstance(obs["annotation.human.action.task_description"][0], str)
            t = 16
            reply = [{**{f"action.{k}": np.full((t, 1), 0.01) for k in ("x", "y", "z", "roll", "pitch", "yaw")},
                      "action.gripper": np.linspace(0, 1, t)[:, None]}, {}]
        return reply


def test_gr00t_zmq_server_drives_real_episodes(tmp_path, gl):
    port = free_port()
    server = Gr00tServer(port)
    server.start()
    try:
        recs = _run(tmp_path, "gr00t", "g", [f"port={port}"])
    finally:
        server.stop = True
    assert all(r["error"] is None and r["steps"] == 24 for r in recs.values())
    meta = next(iter(recs.values()))["policy_meta"]
    assert meta["peer"] == "gr00t" and meta["server"]["ping"]["status"] == "ok"
    assert {"ping", "get_modality_config", "reset", "get_action"} <= set(server.seen)
    # the gripper came back in [0, 1] and went to LIBERO's -1 / +1
    from bench.policies.transforms import PEERS

    out = PEERS["gr00t"].response({**{f"action.{k}": np.zeros(4) for k in "xyz"},
                                   **{f"action.{k}": np.zeros(4) for k in ("roll", "pitch", "yaw")},
                                   "action.gripper": np.array([0.0, 0.2, 0.8, 1.0])})["actions"]
    assert out[:, 6].tolist() == [-1, -1, 1, 1]


def dit4dit_server(port: int, answers: int | None = None):
    """A websocket server speaking the official DiT4DiT server's messages; `answers`: how many requests it
    answers before the process 'dies' (closes every connection and stops)."""
    from openpi_client import msgpack_numpy
    from websockets.sync.server import serve

    count = {"n": 0}

    def handler(ws):
        ws.send(msgpack_numpy.packb({"env": "simpler_env"}))
        for message in ws:
            msg = msgpack_numpy.unpackb(message)
            ex = msg["examples"][0]
            assert msg["type"] == "infer" and ex["image"][0].shape == (224, 448, 3) and ex["state"].shape == (1, 16)
            count["n"] += 1
            if answers is not None and count["n"] > answers:
                ws.close()
                server.shutdown()
                return
            ws.send(msgpack_numpy.packb({"status": "ok", "ok": True, "type": "inference_result",
                                         "request_id": msg["request_id"],
                                         "data": {"normalized_actions": np.zeros((1, 8, 8), np.float32)}}))

    server = serve(handler, "127.0.0.1", port, compression=None, max_size=None)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_dit4dit_websocket_server_drives_real_episodes(tmp_path, gl):
    port = free_port()
    server = dit4dit_server(port)
    try:
        recs = _run(tmp_path, "dit4dit-server", "d", [f"port={port}"])
    finally:
        server.shutdown()
    assert all(r["error"] is None and r["steps"] == 24 for r in recs.values())
    assert next(iter(recs.values()))["policy_meta"]["server"] == {"env": "simpler_env"}
    # rendered at 256 px as the official client does: a protocol of its own, recorded in every episode
    from bench.sim.suites import get_suite

    official = get_suite("libero_spatial").protocol.replace(resolution=256, max_steps=24)
    assert {r["protocol_hash"] for r in recs.values()} == {official.hash()}


# ------------------------------------------------------------------------------------------ faults
def _episodes(tmp_path, policy, name: str):
    """Two real episodes through the runner with `policy`: their records."""
    from bench.eval.runner import RunConfig, Runner
    from bench.sim.suites import get_suite

    suite = get_suite("libero_spatial")
    cfg = RunConfig(suite=suite, policy_name=policy.peer, task_ids=[0, 1], out=tmp_path / name, episodes=1, workers=2,
                    protocol=suite.protocol.replace(max_steps=16), resume=True)
    runner = Runner(cfg, policy)
    runner.run(runner.pending())
    return list(read_records(tmp_path / name / "episodes.jsonl"))


def test_faults_are_recorded_and_resume_reruns_them(tmp_path, gl):
    down = free_port()
    recs = _episodes(tmp_path, make_policy("dit4dit-server", policy_args=[f"port={down}", "retries=1",
                                                                           "timeout_s=2"]), "down")
    assert len(recs) == 2 and all(r["error_kind"] == "remote" for r in recs)
    assert f"127.0.0.1:{down}" in recs[0]["error"] and "2 attempts" in recs[0]["error"]

    port = free_port()  # garbage: an answer that is not an action chunk
    server = Gr00tServer(port, mode="garbage")
    server.start()
    try:
        recs = _episodes(tmp_path, make_policy("gr00t", policy_args=[f"port={port}", "retries=0"]), "garbage")
    finally:
        server.stop = True
    assert all(r["error_kind"] == "remote" and "not an action chunk" in r["error"] for r in recs)

    port = free_port()  # slow: a server that never answers
    silent = socket.socket()
    silent.bind(("127.0.0.1", port))
    silent.listen()
    try:
        recs = _episodes(tmp_path, make_policy("dit4dit-server", policy_args=[f"port={port}", "retries=0",
                                                                               "timeout_s=1"]), "slow")
    finally:
        silent.close()
    assert all(r["error_kind"] == "remote" and "timed out" in r["error"].lower() for r in recs)

    port = free_port()  # dies mid-episode: answers a few chunks, then goes away
    server = dit4dit_server(port, answers=1)  # each episode needs 2 chunks: none can finish before it dies
    recs = _episodes(tmp_path, make_policy("dit4dit-server", policy_args=[f"port={port}", "retries=1",
                                                                           "timeout_s=2"]), "dies")
    assert all(r["error_kind"] == "remote" for r in recs) and len(recs) == 2
    # the server is back: --resume runs exactly the failed episodes again, and they finish
    server = dit4dit_server(port)
    try:
        recs = _episodes(tmp_path, make_policy("dit4dit-server", policy_args=[f"port={port}"]), "dies")
    finally:
        server.shutdown()
    latest = {r["key"]: r for r in recs}
    assert len(recs) == 4 and all(r["error"] is None and r["steps"] == 16 for r in latest.values())
