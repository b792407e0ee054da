"""Starting a sim worker process with its backend's Python, and talking to it.

A worker is `python -m bench.sim.worker` on one end of a socket pair; the runner keeps the
other end. Not multiprocessing: its spawn start method hands the child the parent's sys.path,
which would load this environment's numpy into a worker that needs its own.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from multiprocessing.connection import Connection
from pathlib import Path

import bench
from bench.sim.backend import STATE_DIR, Backend
from bench.sim.codec import Channel


def source_path(backend: Backend) -> Path:
    """A directory holding only a link to this `bench` package: the PYTHONPATH of a worker in another
    environment, so it runs this very code without seeing this environment's site-packages."""
    root = STATE_DIR / f"{backend.name}-src"
    link, target = root / "bench", Path(bench.__file__).resolve().parent
    root.mkdir(parents=True, exist_ok=True)
    if not (link.is_symlink() and link.resolve() == target):
        tmp = root / f".bench-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target, target_is_directory=True)
        os.replace(tmp, link)  # atomic: a worker starting beside us never sees a missing link
    return root


class WorkerProcess:
    """One sim worker: `channel` for messages, the rest as multiprocessing.Process has it."""

    def __init__(self, backend: Backend, worker_id: int):
        python = backend.python()  # raises BackendNotReady before anything starts
        ours, theirs = socket.socketpair()
        env = dict(os.environ, **dict(backend.worker_env))
        if backend.own_environment:
            env["PYTHONPATH"] = str(source_path(backend))
            env["BENCH_BACKEND_SETTINGS"] = json.dumps(backend.settings())
        cmd = [python, "-m", "bench.sim.worker", "--fd", str(theirs.fileno()), "--backend", backend.name]
        try:
            self.popen = subprocess.Popen(cmd, pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        self.worker_id = worker_id
        self.channel = Channel(Connection(ours.detach()))

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def exitcode(self) -> int | None:
        """None while running; -N when killed by signal N (as multiprocessing reports it)."""
        return self.popen.poll()

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        if self.is_alive():
            self.popen.kill()

    def join(self, timeout: float | None = None) -> None:
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
