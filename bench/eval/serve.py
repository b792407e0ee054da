"""`bench serve`: any registered policy behind openpi's websocket protocol.

The protocol is openpi's (what `openpi-client`'s WebsocketClientPolicy speaks): on connect the server
sends its metadata (msgpack); then each request is one observation (msgpack with numpy arrays, openpi's
LIBERO keys, see bench.policies.transforms.PEERS["openpi"]) and each answer {"actions": (T, action_dim)}. A
failure is answered with its message as a text frame and the connection closed (code 1011), as openpi's
server does. `GET /healthz` answers 200 for load balancers and scripts; `GET /stats` says where a request's
time goes (decoding and checking, waiting for its batch, the act call, encoding and sending).

Requests from concurrent clients are batched into one `act` call (the policy's rows are independent:
a trained policy seeds each row's noise by its episode and step, so batching changes no result). The server
is safe to share: each request is checked on its own against the served policy's spec (`check_request`) before
it may join a batch, a batch holds only requests of one image shape, a batch the policy fails on is retried
row by row, and non-finite actions are an error for their request alone. A bad request is answered with its
reason (the connection stays open); messages over `max_message_bytes` are refused; every rejection and every
client leaving is one log line (logger `bench.serve`).
Clients that are `bench run --policy openpi` also send `bench/episode` (suite, task, init state, seed,
key) and `bench/step`, so the policy resets and seeds exactly as it would in-process; other clients
are one episode per connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import logging
import time
import traceback
from dataclasses import asdict, dataclass
from http import HTTPStatus

import numpy as np

from bench.policies.contract import EpisodeInfo, ObservationBatch, PolicySpec, validate_chunks
from bench.policies.transforms import OPENPI_KEYS, to_openpi_observation
from bench.sim.suites import layout_dim

BATCH_WINDOW_S = 0.005  # how long the first request waits for others to join its batch
MAX_BATCH = 64
MAX_MESSAGE_BYTES = 16 * 2**20  # two 1024 px RGB frames fit; a larger message is refused before it is read
CLIENT_KEY = {ours: theirs for theirs, ours in OPENPI_KEYS.items()}  # error messages name the client's keys

log = logging.getLogger("bench.serve")


class BadRequest(ValueError):
    """A request that does not fit the served policy: answered with this message, never batched."""


def check_request(row: dict, spec: PolicySpec) -> dict:
    """One observation row checked and normalised on its own against the policy's declared spec: uint8
    (H, W, 3) images of the declared size, a finite numeric state of the layout's length, a text prompt.
    Returns the row with numpy arrays (state as float32); raises BadRequest naming every problem."""
    problems, out = [], {}
    for cam in spec.cameras:
        img = row.get(cam)
        name = CLIENT_KEY.get(cam, cam)
        if not isinstance(img, np.ndarray):
            problems.append(f"{name!r} is a {type(img).__name__}, not an image array")
        elif img.dtype != np.uint8:
            problems.append(f"{name!r} has dtype {img.dtype}; send uint8 pixels (0-255)")
        elif img.ndim != 3 or img.shape[2] != 3:
            problems.append(f"{name!r} has shape {img.shape}; send (height, width, 3) RGB")
        elif spec.image_size is not None and img.shape[:2] != (spec.image_size, spec.image_size):
            problems.append(f"{name!r} is {img.shape[0]}x{img.shape[1]}; this policy takes "
                            f"{spec.image_size}x{spec.image_size}")
        else:
            out[cam] = img
    state, want = row.get("state"), layout_dim(spec.state_layout)
    state_name = CLIENT_KEY["state"]
    try:
        arr = np.asarray(state)
        numeric = arr.dtype.kind in "iuf"
    except (TypeError, ValueError):
        arr, numeric = None, False
    if not numeric:
        problems.append(f"{state_name!r} is not a numeric array (got {type(state).__name__})")
    elif arr.shape != (want,):
        problems.append(f"{state_name!r} has shape {arr.shape}; this policy takes ({want},): {spec.state_layout}")
    elif not np.isfinite(arr).all():
        problems.append(f"{state_name!r} holds {int((~np.isfinite(arr)).sum())} non-finite values (NaN/inf)")
    else:
        out["state"] = arr.astype(np.float32)
    prompt = row.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        problems.append(f"'prompt' must be a non-empty string (got {type(prompt).__name__} {prompt!r:.40})")
    else:
        out["prompt"] = prompt
    if problems:
        raise BadRequest("; ".join(problems))
    return out


def check_episode(obs: dict, conn: int) -> dict:
    """The `bench/episode` a bench client sends (suite, task, init state, seed, key); a foreign client's
    connection is one episode."""
    episode = obs.get("bench/episode")
    if episode is None:
        return {"key": f"connection{conn}"}
    if not isinstance(episode, dict) or not isinstance(episode.get("key"), str):
        raise BadRequest("'bench/episode' must be a map with a string 'key'")
    if episode.get("suite"):
        from bench.sim.suites import get_suite

        try:
            n = len(get_suite(str(episode["suite"])).tasks())
            if not 0 <= int(episode.get("task_id", -1)) < n:
                raise BadRequest(f"'bench/episode' task_id {episode.get('task_id')!r} is not a task of "
                                 f"{episode['suite']} (0-{n - 1})")
        except (KeyError, ValueError, TypeError) as exc:
            raise BadRequest(f"'bench/episode': {exc}") from None
    return dict(episode)


@dataclass
class _Request:
    row: dict  # our observation row
    episode: dict  # key, suite, task_id, init_id, seed
    step: int
    future: asyncio.Future
    act_s: float = 0.0  # the act call that answered it


class PolicyServer:
    def __init__(self, policy, metadata: dict, host: str = "127.0.0.1", port: int = 8000,
                 max_message_bytes: int = MAX_MESSAGE_BYTES, threads: int | None = None):
        import os

        self.policy, self.metadata, self.host, self.port = policy, metadata, host, port
        self.max_message_bytes = max_message_bytes
        # a batch's rows are shared among this many threads when the policy allows it (concurrent_rows)
        self.threads = max(1, threads or os.cpu_count() or 1)
        self.row_pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.threads)
        self.clients = 0  # connections open now
        self.queue: asyncio.Queue[_Request] = asyncio.Queue()
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)  # the policy runs on one thread
        self.episodes: set[str] = set()
        self.calls = 0  # act calls, and the rows they carried (batching at work)
        self.rows = 0
        # seconds spent per stage over every answered request (GET /stats): where a chunk's time goes
        self.seconds = {"decode_and_check": 0.0, "batch_wait": 0.0, "act": 0.0, "encode_and_send": 0.0}
        self.answered = 0
        self._ids = itertools.count()

    # ---------------------------------------------------------------- policy side
    def _act(self, requests: list[_Request]) -> np.ndarray:
        from bench.sim.suites import TaskInfo, get_suite

        for r in requests:
            if r.episode["key"] not in self.episodes:
                self.episodes.add(r.episode["key"])
                ep = r.episode
                if ep.get("suite"):
                    task = get_suite(ep["suite"]).task(int(ep["task_id"]))
                else:  # a foreign client: the instruction is all we know of its task
                    task = TaskInfo(suite="remote", task_id=-1, name=r.row["prompt"], language=r.row["prompt"],
                                    env_id="")
                self.policy.reset(EpisodeInfo(key=ep["key"], task=task, init_id=int(ep.get("init_id", 0)),
                                              seed=int(ep.get("seed", 0))))
        self.calls += 1
        self.rows += len(requests)
        parts = min(self.threads, len(requests)) if getattr(self.policy, "concurrent_rows", False) else 1
        if parts == 1:
            return np.asarray(self.policy.act(self._batch(requests)))
        # rows are independent and the policy acts on several at once from threads: one share per core
        shares = [requests[i::parts] for i in range(parts)]
        answers = list(self.row_pool.map(lambda share: np.asarray(self.policy.act(self._batch(share))), shares))
        out = np.empty((len(requests), *answers[0].shape[1:]), dtype=answers[0].dtype)
        for i, a in enumerate(answers):
            out[i::parts] = a
        return out

    def _batch(self, requests: list[_Request]) -> ObservationBatch:
        cams = self.policy.spec.cameras
        return ObservationBatch(
            episode_keys=[r.episode["key"] for r in requests],
            images={c: np.stack([np.asarray(r.row[c]) for r in requests]) for c in cams},
            state=np.stack([np.asarray(r.row["state"], dtype=np.float32) for r in requests]),
            prompts=[str(r.row["prompt"]) for r in requests],
            steps=np.array([r.step for r in requests], dtype=np.int64))

    async def _batcher(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self.queue.get()
            batch = [first]
            # others may join while a first request waits, but only when there are others: one client never waits
            deadline = loop.time() + (BATCH_WINDOW_S if self.clients > 1 else 0.0)
            while len(batch) < MAX_BATCH:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), timeout))
                except asyncio.TimeoutError:
                    break
            groups: dict[tuple, list[_Request]] = {}
            for r in batch:  # one act call per image shape (a policy of any resolution stacks its rows)
                groups.setdefault(tuple(r.row[c].shape for c in self.policy.spec.cameras), []).append(r)
            for group in groups.values():
                await self._answer(group)

    async def _answer(self, group: list[_Request]) -> None:
        """Act on a group; a group the policy fails on is retried row by row, so one request's failure is
        never another's."""
        loop = asyncio.get_running_loop()
        try:
            t = time.perf_counter()
            chunks = await loop.run_in_executor(self.executor, self._act, group)
            for r in group:
                r.act_s = time.perf_counter() - t
        except Exception as exc:
            if len(group) > 1:
                for r in group:
                    await self._answer([r])
                return
            (r,) = group
            log.warning("policy failed on a request of %s: %s: %s", r.episode["key"], type(exc).__name__, exc)
            if not r.future.done():
                r.future.set_exception(RuntimeError(f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"))
            return
        arr, errors = validate_chunks(chunks, len(group), self.policy.spec)
        for i, r in enumerate(group):
            if r.future.done():
                continue
            if errors[i] is not None:
                log.warning("no answer to a request of %s: %s", r.episode["key"], errors[i])
                r.future.set_exception(RuntimeError(errors[i]))
            else:
                r.future.set_result(arr[i].astype(np.float32))

    # ---------------------------------------------------------------- network side
    def _parse(self, message, conn: int, step: int) -> _Request:
        """A message as a request of its own, or BadRequest saying why not."""
        from openpi_client import msgpack_numpy

        if not isinstance(message, bytes):
            raise BadRequest("send observations as binary msgpack frames, not text")
        try:
            obs = msgpack_numpy.unpackb(message)
        except Exception as exc:
            raise BadRequest(f"the message is not msgpack: {type(exc).__name__}: {exc}") from None
        if not isinstance(obs, dict):
            raise BadRequest(f"the message is a msgpack {type(obs).__name__}, not a map of observation keys")
        try:
            row = to_openpi_observation(obs)
        except KeyError as exc:
            raise BadRequest(str(exc.args[0]) if exc.args else str(exc)) from None
        row = check_request(row, self.policy.spec)
        episode = check_episode(obs, conn)
        try:
            at = int(obs.get("bench/step", step))
        except (TypeError, ValueError):
            raise BadRequest(f"'bench/step' must be an integer (got {obs.get('bench/step')!r})") from None
        return _Request(row, episode, at, asyncio.get_running_loop().create_future())

    async def _handle(self, ws) -> None:
        from openpi_client import msgpack_numpy
        from websockets.exceptions import ConnectionClosed

        packer = msgpack_numpy.Packer()
        conn = next(self._ids)
        peer = "%s:%s" % tuple(ws.remote_address[:2]) if ws.remote_address else "?"
        log.info("client %d connected from %s", conn, peer)
        step = 0
        self.clients += 1
        try:
            await ws.send(packer.pack(self.metadata))
            async for message in ws:
                t0 = time.perf_counter()
                try:
                    request = self._parse(message, conn, step)
                except BadRequest as exc:
                    log.warning("client %d: rejected request: %s", conn, exc)
                    await ws.send(f"bench serve rejected the request: {exc}")
                    continue
                t1 = time.perf_counter()
                await self.queue.put(request)
                try:
                    chunk = await request.future
                except RuntimeError as exc:
                    await ws.send(f"bench serve could not answer: {exc}")
                    await ws.close(code=1011, reason="internal error")
                    log.info("client %d closed after %d answers (the policy could not answer)", conn, step)
                    return
                t2 = time.perf_counter()
                await ws.send(packer.pack({"actions": chunk}))
                self._account(t1 - t0, t2 - t1 - request.act_s, request.act_s, time.perf_counter() - t2)
                step += 1
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else "none"
            why = "message too big" if code == 1009 or (exc.sent and exc.sent.code == 1009) else f"close code {code}"
            log.info("client %d left after %d answers (%s)", conn, step, why)
            return
        finally:
            self.clients -= 1
        log.info("client %d left after %d answers", conn, step)

    def _account(self, *stages: float) -> None:
        for name, seconds in zip(self.seconds, stages):
            self.seconds[name] += seconds
        self.answered += 1

    def stats(self) -> dict:
        """Requests answered, act calls and their rows, and the mean milliseconds per request of each stage."""
        n = max(self.answered, 1)
        return {"answered": self.answered, "act_calls": self.calls, "rows": self.rows,
                "mean_ms": {k: 1e3 * v / n for k, v in self.seconds.items()}}

    def _health(self, connection, request):
        if request.path == "/healthz":
            return connection.respond(HTTPStatus.OK, "OK\n")
        if request.path == "/stats":
            return connection.respond(HTTPStatus.OK, json.dumps(self.stats()) + "\n")
        return None

    async def serve(self, ready=None) -> None:
        from websockets.asyncio.server import serve

        batcher = asyncio.create_task(self._batcher())
        async with serve(self._handle, self.host, self.port, compression=None, max_size=self.max_message_bytes,
                         process_request=self._health) as server:
            if ready is not None:
                ready(server)
            try:
                await server.serve_forever()
            finally:
                batcher.cancel()


def serve_policy(policy: str, checkpoint: str | None = None, policy_args: list[str] | tuple = (),
                 host: str = "127.0.0.1", port: int = 8000, math: str = "portable", on_ready=print,
                 max_message_bytes: int = MAX_MESSAGE_BYTES, threads: int | None = None) -> "PolicyServer":
    """Build a registered policy and serve it until interrupted (`bench serve`); `on_ready` gets one line with
    the address once the port is bound. Put the math mode in force (bench.core.mathmode.apply) before torch loads.
    Returns the stopped server (its call counts)."""
    import asyncio

    from bench.eval.evaluate import build_policy, canonical_policy
    from bench.core.mathmode import check, describe

    pol = build_policy(policy, checkpoint=checkpoint, policy_args=list(policy_args))
    check(math)
    desc = describe(math)
    name = canonical_policy(policy)
    server = PolicyServer(pol, server_metadata(name, pol, desc), host=host, port=port,
                          max_message_bytes=max_message_bytes, threads=threads)

    def ready(srv) -> None:
        bound = srv.sockets[0].getsockname()[1]
        on_ready(f"serving {name} on ws://{host}:{bound} (math {desc['id']}); GET /healthz, /stats; Ctrl-C stops")

    try:
        asyncio.run(server.serve(ready))
    except KeyboardInterrupt:
        pass
    return server


def server_metadata(name: str, policy, math: dict | None) -> dict:
    from bench.core.provenance import file_hash, package_versions, shown_path

    ckpt = getattr(policy, "checkpoint_path", None)
    return {"server": "bench serve", "policy": name, "checkpoint": shown_path(ckpt) if ckpt else None,
            "checkpoint_hash": file_hash(ckpt) if ckpt else None, "spec": asdict(policy.spec),
            "versions": package_versions(), "math": (math or {}).get("id")}


def wait_healthy(port: int, proc, timeout_s: float = 120.0, host: str = "127.0.0.1") -> None:
    """Block until a `bench serve` on `port` answers GET /healthz; raise if `proc` exits or time runs out."""
    import time
    import urllib.request

    deadline = time.time() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"bench serve exited (code {proc.returncode}) before it answered /healthz")
        try:
            if urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=1).status == 200:
                return
        except OSError:
            pass
        if time.time() > deadline:
            raise TimeoutError(f"bench serve on port {port} did not answer /healthz within {timeout_s:.0f} s")
        time.sleep(0.5)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (for a server started next)."""
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
