"""`bench serve` is safe to share: good and bad clients at once against a real server on 127.0.0.1, every good
request answered with the actions it gets alone, every bad one told why, the log one line per event."""

from __future__ import annotations

import asyncio
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from bench.eval.serve import BadRequest, PolicyServer, check_request, free_port
from bench.sim.suites import layout_dim
from bench.policies.builtin import LIBERO_SPEC


def obs(seed: int = 0, size: int = 224, **change) -> dict:
    rng = np.random.default_rng(seed)
    row = {"observation/image": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
           "observation/wrist_image": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
           "observation/state": rng.normal(size=8).astype(np.float32), "prompt": "pick up the black bowl"}
    row.update(change)
    return row


def _pack(row: dict) -> bytes:
    from openpi_client import msgpack_numpy

    return msgpack_numpy.Packer().pack(row)


def _ask(port: int, messages: list) -> list:
    """Send each message on one connection; the answers (actions array, error text, or the close code)."""
    from openpi_client import msgpack_numpy
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    answers = []
    with connect(f"ws://127.0.0.1:{port}", compression=None, max_size=None, open_timeout=60) as ws:
        msgpack_numpy.unpackb(ws.recv(timeout=60))  # the metadata
        for m in messages:
            try:
                ws.send(m)
                reply = ws.recv(timeout=120)
            except ConnectionClosed as exc:
                answers.append(("closed", exc.rcvd.code if exc.rcvd else None))
                break
            answers.append(reply if isinstance(reply, str) else msgpack_numpy.unpackb(reply)["actions"])
    return answers


BAD = {  # request -> what the answer must say
    "seven-d state": (_pack(obs() | {"observation/state": np.zeros(7, np.float32)}), "has shape (7,)"),
    "NaN state": (_pack(obs() | {"observation/state": np.full(8, np.nan, np.float32)}), "non-finite"),
    "inf state": (_pack(obs() | {"observation/state": np.array([np.inf] + [0] * 7, np.float32)}), "non-finite"),
    "float image": (_pack(obs() | {"observation/image": np.zeros((224, 224, 3), np.float32)}), "dtype float32"),
    "grey image": (_pack(obs() | {"observation/wrist_image": np.zeros((224, 224), np.uint8)}), "(height, width, 3)"),
    "numeric prompt": (_pack(obs() | {"prompt": 42}), "'prompt' must be a non-empty string"),
    "missing camera": (_pack({k: v for k, v in obs().items() if k != "observation/wrist_image"}),
                       "missing 'observation/wrist_image'"),
    "text state": (_pack(obs() | {"observation/state": "0 0 0"}), "not a numeric array"),
    "bad step": (_pack(obs() | {"bench/step": "soon"}), "'bench/step' must be an integer"),
    "not msgpack": (b"\x00\xffnot msgpack at all", "not msgpack"),
    "text frame": ("hello", "binary msgpack"),
    "a list": (_pack([1, 2, 3]), "not a map"),
}


@pytest.fixture(scope="module")
def server(served_dit4dit):
    """`bench serve --policy dit4dit` (the bundled checkpoint, any image size) with a 4 MiB message limit."""
    return served_dit4dit


def test_good_and_bad_clients_at_once_each_get_their_own_answer(server):
    port, log, proc = server
    before = log.read_text()  # the server is shared: count only this test's lines
    good = [obs(0), obs(1), obs(2, size=128)]  # a 128 px request is fine for a policy of any resolution
    alone = [_ask(port, [_pack(g)])[0] for g in good]
    for a in alone:
        assert isinstance(a, np.ndarray) and a.shape == (8, 7) and np.isfinite(a).all()

    jobs = [("good", i) for i in range(len(good))] * 3 + [("bad", name) for name in BAD] + [("big", None), ("drop", None)]
    big = _pack(obs() | {"observation/image": np.zeros((1400, 1400, 3), np.uint8)})  # over the 4 MiB limit

    def run(job):
        kind, what = job
        if kind == "good":
            return _ask(port, [_pack(good[what])])
        if kind == "bad":  # then a good request on the same connection: a rejection does not end it
            return _ask(port, [BAD[what][0], _pack(good[0])])
        if kind == "big":
            return _ask(port, [big])
        with socket.create_connection(("127.0.0.1", port)) as s:  # a client that vanishes mid-handshake
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            s.recv(4096)
        return None

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(run, jobs))

    for (kind, what), got in zip(jobs, answers):
        if kind == "good":
            np.testing.assert_array_equal(got[0], alone[what], err_msg=f"good request {what} changed by company")
        elif kind == "bad":
            assert isinstance(got[0], str) and BAD[what][1] in got[0], (what, got[0])
            np.testing.assert_array_equal(got[1], alone[0], err_msg=f"connection after {what} answered wrongly")
        elif kind == "big":
            assert got == [("closed", 1009)], got
    assert proc.poll() is None, "the server died"
    text = log.read_text()[len(before):]
    assert "Traceback" not in log.read_text(), text[-3000:]
    assert text.count("rejected request") == len(BAD), text[-3000:]
    assert "message too big" in text and text.count(" left after ") >= len(jobs) - 1, text[-3000:]


def test_requests_are_checked_against_the_declared_spec():
    assert layout_dim("eef_pos(3)+eef_axis_angle(3)+gripper_qpos(2)") == 8
    row = {"agentview": np.zeros((64, 64, 3), np.uint8), "eye_in_hand": np.zeros((64, 64, 3), np.uint8),
           "state": [0.0] * 8, "prompt": "go"}
    checked = check_request(row, LIBERO_SPEC)
    assert checked["state"].dtype == np.float32 and checked["state"].shape == (8,)
    sized = type(LIBERO_SPEC)(**{**LIBERO_SPEC.__dict__, "image_size": 224})
    with pytest.raises(BadRequest, match="is 64x64; this policy takes 224x224"):
        check_request(row, sized)
    with pytest.raises(BadRequest, match="'observation/state' has shape .*; 'prompt' must be"):
        check_request(row | {"state": [0.0] * 9, "prompt": ""}, LIBERO_SPEC)


class Faulty:
    """Answers like `zero`, but NaN actions for prompts saying 'nan' and an exception for 'boom'."""

    spec = LIBERO_SPEC

    def reset(self, episode) -> None:
        pass

    def act(self, batch):
        if any("boom" in p for p in batch.prompts):
            raise RuntimeError("boom")
        chunks = np.zeros((len(batch), 8, 7), np.float32)
        chunks[[i for i, p in enumerate(batch.prompts) if "nan" in p]] = np.nan
        return chunks


def test_a_failing_or_non_finite_row_fails_its_own_request_only():
    server = PolicyServer(Faulty(), {"policy": "faulty"}, port=free_port())
    ready = threading.Event()
    threading.Thread(target=lambda: asyncio.run(server.serve(lambda _: ready.set())), daemon=True).start()
    assert ready.wait(30)
    prompts = ["fine", "make nan", "boom now", "fine too"] * 3
    with ThreadPoolExecutor(max_workers=len(prompts)) as pool:
        answers = list(pool.map(lambda p: _ask(server.port, [_pack(obs(size=32) | {"prompt": p})]), prompts))
    for p, got in zip(prompts, answers):
        if p.startswith("fine"):
            assert isinstance(got[0], np.ndarray) and (got[0] == 0).all(), (p, got)
        else:
            assert isinstance(got[0], str) and ("non-finite" in got[0] if "nan" in p else "boom" in got[0]), (p, got)
