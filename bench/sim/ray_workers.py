"""Sim workers as Ray actors (`bench run --executor ray`): the same worker, reached through Ray.

Each actor runs the very `serve()` loop a local worker process runs, on one end of a socket pair
inside the actor; `call(message) -> reply` forwards one request and returns its one answer (the
protocol is strictly request/answer after the hello). On the runner's side a thread relays between
a local socket pair and the actor, so the runner sees an ordinary worker channel: waiting, timeouts,
faults and records are unchanged, and so are the episodes (same messages, same digests). An actor
that dies (its node lost, its process killed) closes the channel; the runner records its episode as
`worker_died`, which `--resume` runs again.
"""

from __future__ import annotations

import os
import socket
import threading
from multiprocessing.connection import Connection

from bench.sim.backend import Backend, BackendNotReady
from bench.sim.codec import Channel, pack

# what a worker's process needs from the runner's environment (headless GL choice, thread counts)
_FORWARDED = ("MUJOCO_GL", "PYOPENGL_PLATFORM", "MUJOCO_EGL_DEVICE_ID")


def connect(address: str | None) -> dict:
    """Join the Ray cluster at `address` (None: start a local one); returns its resources."""
    import ray

    if not ray.is_initialized():
        if address is None:  # a cluster of our own: Ray would run its workers (our simulators) at nice 15
            os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False,
                 logging_level="ERROR")
    return ray.cluster_resources()


def _actor_class():
    import ray

    @ray.remote(num_cpus=1, max_restarts=0, max_concurrency=2)
    class SimActor:
        def __init__(self, backend_name: str):
            from bench.sim.worker import serve

            ours, theirs = socket.socketpair()
            self.conn = Connection(ours.detach())
            self.thread = threading.Thread(target=serve, args=(Channel(Connection(theirs.detach())), backend_name),
                                           daemon=True)
            self.thread.start()

        def hello(self) -> bytes:
            return self.conn.recv_bytes()

        def call(self, data: bytes) -> bytes | None:
            self.conn.send_bytes(data)
            return None if data == _CLOSE else self.conn.recv_bytes()

        def pid(self) -> int:
            return os.getpid()

    return SimActor


_CLOSE = pack(["close"])
_ACTOR = None


class RayWorkerProcess:
    """One sim worker on the Ray cluster, with the interface of bench.sim.process.WorkerProcess."""

    def __init__(self, backend: Backend, worker_id: int):
        global _ACTOR
        import ray

        if backend.own_environment:
            raise BackendNotReady(f"the ray executor runs workers in the cluster's Python environment; the "
                                  f"{backend.name} simulator needs its own: use the local executor for it")
        if _ACTOR is None:
            _ACTOR = _actor_class()
        env = {k: os.environ[k] for k in _FORWARDED if k in os.environ}
        env.update({"OMP_NUM_THREADS": "1", "LP_NUM_THREADS": "1", **dict(backend.worker_env)})
        self.actor = _ACTOR.options(runtime_env={"env_vars": env}, name=None).remote(backend.name)
        self.worker_id = worker_id
        self._ray = ray
        ours, theirs = socket.socketpair()
        self.channel = Channel(Connection(ours.detach()))
        self._relay_end = Connection(theirs.detach())
        self._killed = False
        self._closed_cleanly = False
        self._pid: int | None = None
        self._thread = threading.Thread(target=self._relay, daemon=True, name=f"ray-sim-{worker_id}")
        self._thread.start()

    def _relay(self) -> None:
        ray = self._ray
        try:
            self._pid = ray.get(self.actor.pid.remote())
            self._relay_end.send_bytes(ray.get(self.actor.hello.remote()))
            while True:
                data = self._relay_end.recv_bytes()
                reply = ray.get(self.actor.call.remote(data))
                if reply is None:  # the runner closed this worker
                    self._closed_cleanly = True
                    break
                self._relay_end.send_bytes(reply)
        except Exception:  # the actor died (node lost, killed) or the runner hung up: end the channel
            pass
        finally:
            self._relay_end.close()
            if not self._closed_cleanly:
                self.kill()

    @property
    def pid(self) -> int | None:
        """The actor's process id on its node (None until it has started)."""
        return self._pid

    @property
    def exitcode(self) -> int | None:
        if self._thread.is_alive():
            return None
        return 0 if self._closed_cleanly else -9

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def kill(self) -> None:
        if not self._killed:
            self._killed = True
            try:
                self._ray.kill(self.actor, no_restart=True)
            except Exception:
                pass

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
