"""The simulator seam: plain-data worker messages, backends, and workers in their own process."""

from __future__ import annotations

import socket
import threading
from multiprocessing.connection import Connection

import numpy as np
import pytest

from bench.sim import codec
from bench.sim.backend import Backend, BackendNotReady
from bench.sim.worker import EpisodeStart
from bench.sim.suites import get_suite


def test_codec_round_trips_arrays_bit_for_bit():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((3, 4)), rng.integers(0, 255, (2, 5, 3), dtype=np.uint8),
              np.array(3.5, dtype=np.float32), np.zeros((0, 7)), np.array([True, False]),
              rng.standard_normal((6, 6))[::2, ::3], np.array([np.nan, -np.inf, 1e-300])]
    msg = ["obs", "suite/0/1", {"images": {"a": arrays[1]}, "many": arrays, "n": np.int64(7), "x": np.float32(0.1),
                               "flag": np.bool_(True), "none": None, "nested": [1, "two", {"3": 4.0}]}]
    back = codec.unpack(codec.pack(msg))
    for a, b in zip(arrays, back[2]["many"]):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == np.ascontiguousarray(b).tobytes()
        assert b.flags.writeable  # the policy may write into what it receives
    assert back[2]["images"]["a"].tobytes() == arrays[1].tobytes()
    assert back[2]["n"] == 7 and type(back[2]["n"]) is int
    assert back[2]["x"] == float(np.float32(0.1)) and back[2]["flag"] is True and back[2]["none"] is None
    assert back[2]["nested"] == [1, "two", {"3": 4.0}]


def test_codec_refuses_what_is_not_plain_data():
    with pytest.raises(TypeError, match="plain data"):
        codec.pack({"x": object()})
    with pytest.raises(TypeError, match="object array"):
        codec.pack(np.array([{"a": 1}], dtype=object))


def test_episode_start_survives_the_channel():
    suite = get_suite("libero_spatial")
    task = suite.task(0)
    start = EpisodeStart("libero_spatial/0/3", task, suite.protocol, suite.initial_conditions(0)[3], 7, 10, 220,
                         ("agentview", "eye_in_hand"), video_path=None, privileged=True, record=128)
    back = EpisodeStart.from_message(codec.unpack(codec.pack(start.to_message())))
    assert back.task == task and back.protocol == suite.protocol and back.protocol.hash() == suite.protocol.hash()
    assert back.initial.dtype == np.float64 and back.initial.tobytes() == start.initial.tobytes()
    assert back.cameras == start.cameras and back.record == 128 and back.privileged


def test_a_backend_in_its_own_environment_names_its_setup_step(tmp_path, monkeypatch):
    import bench.sim.backend as backend_mod

    monkeypatch.setattr(backend_mod, "STATE_DIR", tmp_path)
    b = Backend("robocasa_gr1", "x", "y", "test", own_environment=True)
    with pytest.raises(BackendNotReady, match="bench setup robocasa-gr1"):
        b.python()
    (tmp_path / "robocasa_gr1.json").write_text('{"python": "/nonexistent/bin/python"}')
    with pytest.raises(BackendNotReady, match="no longer exists"):
        b.python()


def _serve_in_thread(backend_name: str):
    from bench.sim.worker import serve

    ours, theirs = socket.socketpair()
    runner, worker = codec.Channel(Connection(ours.detach())), codec.Channel(Connection(theirs.detach()))
    thread = threading.Thread(target=serve, args=(worker, backend_name), daemon=True)
    thread.start()
    return runner, worker, thread


def test_a_worker_that_cannot_load_its_simulator_says_so_first():
    pytest.importorskip("robosuite")
    try:
        import robocasa_gr1  # noqa: F401
        pytest.skip("robocasa_gr1 is importable here: nothing to refuse")
    except ImportError:
        pass
    runner, worker, thread = _serve_in_thread("robocasa_gr1")
    kind, key, hello = runner.recv()
    thread.join(timeout=30)
    assert kind == "hello" and key is None and "error" in hello and "robocasa_gr1" in hello["error"]


def test_a_worker_process_reports_its_simulator_stack():
    from importlib import metadata

    from bench.sim.backend import get_backend
    from bench.sim.process import WorkerProcess

    proc = WorkerProcess(get_backend("libero"), 0)
    try:
        kind, _, hello = proc.channel.recv()
        assert kind == "hello" and hello["backend"] == "libero"
        assert hello["versions"]["mujoco"] == metadata.version("mujoco")
        assert hello["versions"]["robosuite"] == metadata.version("robosuite")
        proc.channel.send(["close"])
        proc.join(timeout=30)
        assert proc.exitcode == 0
    finally:
        proc.kill()
