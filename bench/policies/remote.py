"""Policies that live in another process: a policy server speaking a peer's protocol.

- `openpi`: openpi's websocket policy server (pi0 / pi0.5 checkpoints) or `bench serve`, through
  openpi-client's WebsocketClientPolicy (with timeouts added).
- `gr00t`: Isaac-GR00T's ZMQ inference service (msgpack; endpoints get_action, reset,
  get_modality_config, ping).
- `dit4dit-server`: the official DiT4DiT websocket server (deployment/model_server in its repository).

Each observation row goes through the peer's request transform (bench/policies/transforms.py), each answer
through its response transform. Connection trouble (down, slow, died, garbage) is retried a bounded
number of times, then raised as RemotePolicyError naming host, port and what went wrong: its
episodes are recorded with error kind `remote`, the run goes on, and `--resume` runs them again.
"""

from __future__ import annotations

import time

import numpy as np

from bench.policies import PolicyArg, register
from bench.policies.contract import EpisodeInfo, ObservationBatch, PolicySpec, RemotePolicyError
from bench.sim.suites import LIBERO_ACTION_CONVENTION, LIBERO_STATE_LAYOUT
from bench.policies.transforms import PEERS

CAMERAS = ("agentview", "eye_in_hand")


OFFICIAL_RENDER = 256  # openpi's and DiT4DiT's LIBERO clients render 256 x 256, then resize in their own way


def _args(port: int, chunk: int, render: int = OFFICIAL_RENDER) -> tuple[PolicyArg, ...]:
    return (PolicyArg("host", str, "127.0.0.1", "the server's address"),
            PolicyArg("port", int, port, "the server's port"),
            PolicyArg("timeout_s", float, 30.0, "seconds to wait for a connection or an answer"),
            PolicyArg("retries", int, 2, "attempts after the first, reconnecting, before the episode fails"),
            PolicyArg("chunk", int, chunk, "actions per answer the server returns"),
            PolicyArg("render", int, render, "frame size the run renders (openpi's and DiT4DiT's LIBERO clients "
                      "render 256 and resize themselves, as their adapters' requests do; 0: the suite's own "
                      "resolution)"))


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value


class RemotePolicy:
    """The transport-independent part: spec, episode bookkeeping, retries, answer checks."""
    peer: str

    def __init__(self, host: str, port: int, timeout_s: float, retries: int, chunk: int, render: int = OFFICIAL_RENDER):
        self.host, self.port, self.timeout_s, self.retries = host, port, timeout_s, retries
        self.spec = PolicySpec(cameras=CAMERAS, state_layout=LIBERO_STATE_LAYOUT, action_dim=7,
                               action_convention=LIBERO_ACTION_CONVENTION, chunk_length=chunk,
                               render_resolution=render or None)
        self.episodes: dict[str, EpisodeInfo] = {}
        self.server_info: dict | None = None
        self.response = PEERS[self.peer].response  # a peer may need settings of its own (DiT4DiT: its stats)

    @property
    def metadata(self) -> dict:
        """Recorded in every episode record: the peer, where it is, and what the server says it is."""
        return {"peer": self.peer, "address": f"{self.host}:{self.port}", "server": self.server_info}

    def where(self) -> str:
        return f"{self.peer} server at {self.host}:{self.port}"

    def reset(self, episode: EpisodeInfo) -> None:
        self.episodes[episode.key] = episode

    def act(self, batch: ObservationBatch) -> np.ndarray:
        out = []
        for i, key in enumerate(batch.episode_keys):
            row = {**{c: batch.images[c][i] for c in CAMERAS}, "state": batch.state[i], "prompt": batch.prompts[i]}
            out.append(self._with_retries(row, self.episodes.get(key), int(batch.steps[i]), key))
        return np.stack(out)

    def _with_retries(self, row: dict, episode: EpisodeInfo | None, step: int, key: str) -> np.ndarray:
        last = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(2.0, 0.25 * 2 ** attempt))
            try:
                answer = self._exchange(PEERS[self.peer].request(row), episode, step, key)
            except RemotePolicyError:
                raise  # the server answered, with an error: retrying asks the same question
            except Exception as exc:  # down, slow, closed mid-episode: reconnect and ask again
                last = f"{type(exc).__name__}: {exc}"
                self._disconnect()
                continue
            return self._check(answer)
        raise RemotePolicyError(f"{self.where()}: no answer after {self.retries + 1} attempts ({last})")

    def _check(self, answer) -> np.ndarray:
        try:
            actions = np.asarray(self.response(answer)["actions"], dtype=np.float32)
        except Exception as exc:
            raise RemotePolicyError(f"{self.where()} answered something that is not an action chunk: "
                                    f"{type(exc).__name__}: {exc}") from None
        want = (self.spec.chunk_length, self.spec.action_dim)
        if actions.shape != want:
            raise RemotePolicyError(f"{self.where()} answered actions of shape {actions.shape}, expected {want} "
                                    f"(set --policy-arg chunk=N to the server's chunk length)")
        if not np.isfinite(actions).all():
            raise RemotePolicyError(f"{self.where()} answered non-finite actions")
        return actions

    # transport: subclasses
    def _exchange(self, request: dict, episode: EpisodeInfo | None, step: int, key: str) -> dict:
        raise NotImplementedError

    def _disconnect(self) -> None:
        raise NotImplementedError


class OpenpiPolicy(RemotePolicy):
    peer = "openpi"

    def __init__(self, host="127.0.0.1", port=8000, timeout_s=30.0, retries=2, chunk=10, render=OFFICIAL_RENDER,
                 seed=0):
        super().__init__(host, port, timeout_s, retries, chunk, render)
        self.client = None

    def _connect(self):
        from openpi_client import msgpack_numpy
        from openpi_client.websocket_client_policy import WebsocketClientPolicy
        from websockets.sync.client import connect

        timeout = self.timeout_s

        class Client(WebsocketClientPolicy):  # openpi's client, with the timeouts it lacks
            def _wait_for_server(self):
                # entered, as websockets wants a connection it will not close for us (no deprecation warning)
                conn = connect(self._uri, compression=None, max_size=None, open_timeout=timeout).__enter__()
                return conn, msgpack_numpy.unpackb(conn.recv(timeout=timeout))

            def infer(self, obs: dict) -> dict:
                self._ws.send(self._packer.pack(obs))
                response = self._ws.recv(timeout=timeout)
                if isinstance(response, str):
                    raise RemotePolicyError(f"the server reported an error: {response.strip()[:2000]}")
                return msgpack_numpy.unpackb(response)

        self.client = Client(self.host, self.port)
        self.server_info = _json_safe(self.client.get_server_metadata())

    def _disconnect(self) -> None:
        if self.client is not None:
            try:
                self.client._ws.close()
            except Exception:
                pass
        self.client = None

    def _exchange(self, request: dict, episode: EpisodeInfo | None, step: int, key: str) -> dict:
        if self.client is None:
            self._connect()
        # our episode's identity rides along (an openpi server ignores keys it does not know; bench serve
        # uses them to reset and seed the policy exactly as in-process)
        request["bench/episode"] = {"key": key, "suite": episode.task.suite, "task_id": episode.task.task_id,
                                    "init_id": episode.init_id, "seed": episode.seed} if episode else {"key": key}
        request["bench/step"] = step
        try:
            return self.client.infer(request)
        except RemotePolicyError as exc:
            self._disconnect()
            raise RemotePolicyError(f"{self.where()}: {exc}") from None


class Gr00tPolicy(RemotePolicy):
    """Isaac-GR00T's ZMQ service (its current PolicyServer): requests {"endpoint", "data"} in msgpack with
    numpy arrays as .npy bytes; get_action takes {"observation", "options"} and answers [action, info]."""
    peer = "gr00t"

    def __init__(self, host="127.0.0.1", port=5555, timeout_s=30.0, retries=2, chunk=16, render=0, seed=0):
        super().__init__(host, port, timeout_s, retries, chunk, render)
        self.socket = None
        self.context = None
        self.reset_sent: set[str] = set()

    @staticmethod
    def pack(data) -> bytes:
        import io

        import msgpack

        def encode(obj):
            if isinstance(obj, np.ndarray):
                buf = io.BytesIO()
                np.save(buf, obj, allow_pickle=False)
                return {"__ndarray_class__": True, "as_npy": buf.getvalue()}
            return obj
        return msgpack.packb(data, default=encode)

    @staticmethod
    def unpack(data: bytes):
        import io

        import msgpack

        def decode(obj):
            if isinstance(obj, dict) and "__ndarray_class__" in obj:
                return np.load(io.BytesIO(obj["as_npy"]), allow_pickle=False)
            return obj
        return msgpack.unpackb(data, object_hook=decode)

    def _call(self, endpoint: str, data: dict | None = None):
        import zmq

        if self.socket is None:
            self.context = self.context or zmq.Context.instance()
            self.socket = self.context.socket(zmq.REQ)
            self.socket.setsockopt(zmq.LINGER, 0)
            self.socket.setsockopt(zmq.RCVTIMEO, int(self.timeout_s * 1000))
            self.socket.setsockopt(zmq.SNDTIMEO, int(self.timeout_s * 1000))
            self.socket.connect(f"tcp://{self.host}:{self.port}")
            self.server_info = None
            pong = self._call("ping")
            config = self._call("get_modality_config")
            self.server_info = _json_safe({"ping": pong, "modality_config": config})
        request = {"endpoint": endpoint}
        if data is not None:
            request["data"] = data
        self.socket.send(self.pack(request))
        try:
            response = self.unpack(self.socket.recv())
        except zmq.Again:
            raise TimeoutError(f"no answer to {endpoint} within {self.timeout_s:g} s") from None
        if isinstance(response, dict) and "error" in response:
            raise RemotePolicyError(f"{self.where()} reported an error on {endpoint}: {response['error']}")
        return response

    def _disconnect(self) -> None:
        if self.socket is not None:
            self.socket.close(linger=0)
        self.socket = None

    def _exchange(self, request: dict, episode: EpisodeInfo | None, step: int, key: str) -> dict:
        if key not in self.reset_sent:
            self._call("reset", {"options": None})
            self.reset_sent.add(key)
        answer = self._call("get_action", {"observation": request, "options": None})
        if not isinstance(answer, (list, tuple)) or not answer or not isinstance(answer[0], dict):
            raise RemotePolicyError(f"{self.where()}: get_action answered {type(answer).__name__}, "
                                    "expected [action dict, info]")
        return answer[0]


class Dit4ditServerPolicy(RemotePolicy):
    """The official DiT4DiT websocket server: msgpack (openpi's numpy encoding) requests {"type": "infer",
    "request_id", "examples": [...]} answered by {"status", "data": {"normalized_actions"}}; its LIBERO
    client unnormalises with the training set's action statistics (--policy-arg stats=FILE)."""
    peer = "dit4dit"

    def __init__(self, host="127.0.0.1", port=10093, timeout_s=30.0, retries=2, chunk=8, stats="", unnorm_key="",
                 render=OFFICIAL_RENDER, seed=0):
        super().__init__(host, port, timeout_s, retries, chunk, render)
        from bench.policies.transforms import Dit4ditActions

        low = high = None
        if stats:
            import json
            from pathlib import Path

            table = json.loads(Path(stats).read_text())
            node = table[unnorm_key] if unnorm_key else (table if "action" in table else next(iter(table.values())))
            low, high = tuple(node["action"]["min"][:7]), tuple(node["action"]["max"][:7])
        self.response = Dit4ditActions(low, high)
        self.ws = None

    def _disconnect(self) -> None:
        if self.ws is not None:
            try:
                self.ws.close()
            except Exception:
                pass
        self.ws = None

    def _exchange(self, request: dict, episode: EpisodeInfo | None, step: int, key: str) -> dict:
        from openpi_client import msgpack_numpy
        from websockets.sync.client import connect

        if self.ws is None:
            self.ws = connect(f"ws://{self.host}:{self.port}", compression=None, max_size=None,
                              open_timeout=self.timeout_s).__enter__()
            self.server_info = _json_safe(msgpack_numpy.unpackb(self.ws.recv(timeout=self.timeout_s)))
        message = {"type": "infer", "request_id": f"{key}@{step}", "examples": [request], "do_sample": False,
                   "use_ddim": True, "num_ddim_steps": 10}
        self.ws.send(msgpack_numpy.packb(message))
        answer = self.ws.recv(timeout=self.timeout_s)
        if isinstance(answer, str):
            self._disconnect()
            raise RemotePolicyError(f"{self.where()} reported an error: {answer.strip()[:2000]}")
        reply = msgpack_numpy.unpackb(answer)
        if not isinstance(reply, dict) or reply.get("status") != "ok" or "data" not in reply:
            error = reply.get("error") if isinstance(reply, dict) else None
            raise RemotePolicyError(f"{self.where()} did not answer with actions: "
                                    f"{(error or {}).get('message', error) if error else str(reply)[:300]}")
        return reply["data"]


register("openpi", lambda seed=0, **kw: OpenpiPolicy(**kw),
         help="a policy server speaking openpi's websocket protocol (openpi's serve_policy.py, bench serve)",
         options=("seed",), args=_args(8000, 10))
register("gr00t", lambda seed=0, **kw: Gr00tPolicy(**kw),
         help="Isaac-GR00T's ZMQ inference service (LIBERO modality keys)", options=("seed",),
         args=_args(5555, 16, render=0))  # its LIBERO client's render size is not known here: the suite's
register("dit4dit-server", lambda seed=0, **kw: Dit4ditServerPolicy(**kw),
         help="the official DiT4DiT websocket server (LIBERO client layout)", options=("seed",),
         args=_args(10093, 8) + (PolicyArg("stats", str, "", "dataset_statistics.json of the served run (actions "
                                                              "are min-max unnormalised with it)"),
                                 PolicyArg("unnorm_key", str, "", "its entry in that file")))
