"""`bench serve`: any registered policy behind openpi's websocket protocol.

The protocol is openpi's (what `openpi-client`'s WebsocketClientPolicy speaks): on connect the server
sends its metadata (msgpack); then each request is one observation (msgpack with numpy arrays, openpi's
LIBERO keys, see bench.policies.transforms.PEERS["openpi"]) and each answer {"actions": (T, action_dim)}. A
failure is answered with its message as a text frame and the connection closed (code 1011), as openpi's
server does. `GET /healthz` answers 200 for load balancers and scripts.

Requests from concurrent clients are batched into one `act` call (the policy's rows are independent:
a trained policy seeds each row's noise by its episode and step, so batching changes no result).
Clients that are `bench run --policy openpi` also send `bench/episode` (suite, task, init state, seed,
key) and `bench/step`, so the policy resets and seeds exactly as it would in-process; other clients
are one episode per connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import traceback
from dataclasses import asdict, dataclass
from http import HTTPStatus

import numpy as np

from bench.policies.contract import EpisodeInfo, ObservationBatch
from bench.policies.transforms import to_openpi_observation

BATCH_WINDOW_S = 0.005  # how long the first request waits for others to join its batch
MAX_BATCH = 64


@dataclass
class _Request:
    row: dict  # our observation row
    episode: dict  # key, suite, task_id, init_id, seed
    step: int
    future: asyncio.Future


class PolicyServer:
    def __init__(self, policy, metadata: dict, host: str = "127.0.0.1", port: int = 8000):
        self.policy, self.metadata, self.host, self.port = policy, metadata, host, port
        self.queue: asyncio.Queue[_Request] = asyncio.Queue()
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)  # the policy runs on one thread
        self.episodes: set[str] = set()
        self.calls = 0  # act calls, and the rows they carried (batching at work)
        self.rows = 0
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
        cams = self.policy.spec.cameras
        batch = ObservationBatch(
            episode_keys=[r.episode["key"] for r in requests],
            images={c: np.stack([np.asarray(r.row[c]) for r in requests]) for c in cams},
            state=np.stack([np.asarray(r.row["state"], dtype=np.float32) for r in requests]),
            prompts=[str(r.row["prompt"]) for r in requests],
            steps=np.array([r.step for r in requests], dtype=np.int64))
        self.calls += 1
        self.rows += len(requests)
        return np.asarray(self.policy.act(batch))

    async def _batcher(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self.queue.get()
            batch = [first]
            deadline = loop.time() + BATCH_WINDOW_S
            while len(batch) < MAX_BATCH:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), timeout))
                except asyncio.TimeoutError:
                    break
            try:
                chunks = await loop.run_in_executor(self.executor, self._act, batch)
            except Exception as exc:  # the policy failed: every request of the batch hears why
                message = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
                for r in batch:
                    if not r.future.done():
                        r.future.set_exception(RuntimeError(message))
                continue
            for r, chunk in zip(batch, chunks):
                if not r.future.done():
                    r.future.set_result(chunk)

    # ---------------------------------------------------------------- network side
    async def _handle(self, ws) -> None:
        from openpi_client import msgpack_numpy

        packer = msgpack_numpy.Packer()
        await ws.send(packer.pack(self.metadata))
        conn = next(self._ids)
        step = 0
        async for message in ws:
            try:
                obs = msgpack_numpy.unpackb(message)
                episode = dict(obs.get("bench/episode") or {"key": f"connection{conn}"})
                row = to_openpi_observation(obs)
                future = asyncio.get_running_loop().create_future()
                await self.queue.put(_Request(row, episode, int(obs.get("bench/step", step)), future))
                chunk = await future
                await ws.send(packer.pack({"actions": chunk}))
                step += 1
            except Exception as exc:
                await ws.send(f"bench serve could not answer: {exc}")
                await ws.close(code=1011, reason="internal error")
                return

    @staticmethod
    def _health(connection, request):
        if request.path == "/healthz":
            return connection.respond(HTTPStatus.OK, "OK\n")
        return None

    async def serve(self, ready=None) -> None:
        from websockets.asyncio.server import serve

        batcher = asyncio.create_task(self._batcher())
        async with serve(self._handle, self.host, self.port, compression=None, max_size=None,
                         process_request=self._health) as server:
            if ready is not None:
                ready(server)
            try:
                await server.serve_forever()
            finally:
                batcher.cancel()


def serve_policy(policy: str, checkpoint: str | None = None, policy_args: list[str] | tuple = (),
                 host: str = "127.0.0.1", port: int = 8000, math: str = "portable", on_ready=print) -> "PolicyServer":
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
    server = PolicyServer(pol, server_metadata(name, pol, desc), host=host, port=port)

    def ready(srv) -> None:
        bound = srv.sockets[0].getsockname()[1]
        on_ready(f"serving {name} on ws://{host}:{bound} (math {desc['id']}); GET /healthz; Ctrl-C stops")

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
