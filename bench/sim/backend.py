"""Simulator backends: the seam between the harness and a simulator.

A backend has two halves, so neither process imports what it cannot:
- a *catalog*, imported by the runner: a suite's tasks and each task's initial conditions
  (`tasks(suite) -> list[TaskInfo]`, `initial_conditions(suite, task_id) -> sequence`), which
  must not import the simulator when it can avoid it (`bench list tasks` for GR1 works without
  the GR1 environment);
- a *worker module*, imported inside the sim worker only: `make(task, protocol) -> Sim` builds
  the environment of one task, `versions() -> dict` names the simulator stack it runs.

Each backend says which Python runs its workers: LIBERO the current one, RoboCasa GR1 the
environment `bench setup robocasa-gr1` made (its numpy and MuJoCo differ from LIBERO's).
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol as TypingProtocol, Sequence

import numpy as np

from bench.core.registry import Registry

# Where `bench setup <backend>` records the environments it made.
STATE_DIR = Path(os.environ.get("BENCH_HOME", Path.home() / ".cache" / "dit4dit-bench")) / "backends"


class Sim(TypingProtocol):
    """One task's environment inside a worker, reused across that task's episodes."""

    steps: int  # policy steps since the last reset_to (the worker zeroes it after the wait steps)
    step_s: float  # seconds spent stepping / rendering since the episode began (perf accounting)
    render_s: float

    def reset_to(self, initial: Any, seed: int) -> None:
        """Start an episode from an initial condition: a state array or a seed, as the catalog gives it."""

    def step(self, action: np.ndarray) -> bool:
        """One control step; True once the task succeeded."""

    def render(self, cameras: Sequence[str], resolution: int | None = None, raw: bool = False
               ) -> dict[str, np.ndarray]:
        """The cameras as the policy sees them (uint8 HxWx3); `raw` = the simulator's own orientation."""

    def state(self) -> np.ndarray:
        """The proprioceptive state in the protocol's state layout."""

    def lowdim(self) -> dict[str, np.ndarray]:
        """Per-step low-dimensional data recorded into demos."""

    def privileged(self) -> dict:
        """Scene state for scripted experts."""

    def sim_state(self) -> np.ndarray:
        """The whole simulator state (its digest proves a rerun was exact)."""

    def close(self) -> None: ...


class BackendNotReady(RuntimeError):
    """The backend's environment or assets are missing; the message names the step that makes them."""


@dataclass(frozen=True)
class Backend:
    name: str
    catalog: str  # module imported in the runner's process
    worker: str  # module imported inside sim workers
    description: str
    own_environment: bool = False  # workers run in the Python of `bench setup <name>`, not this one
    worker_env: tuple[tuple[str, str], ...] = ()  # environment variables its workers need
    needs_assets: bool = False  # `bench setup` must have pointed it at assets before anything runs

    def setup_record(self) -> Path:
        return STATE_DIR / f"{self.name}.json"

    def python(self) -> str:
        """The interpreter that runs this backend's workers."""
        if not self.own_environment:
            return sys.executable
        record = self.setup_record()
        setup = f"bench setup {self.name.replace('_', '-')}"
        if not record.is_file():
            raise BackendNotReady(f"the {self.name} simulator runs in its own Python environment, which is not set "
                                  f"up on this machine: run `{setup}` first (it creates it and records it in {record})")
        info = json.loads(record.read_text())
        python = Path(info["python"])
        if not python.exists():
            raise BackendNotReady(f"{record} names {python}, which no longer exists: run `{setup}` again")
        if self.needs_assets and not info.get("assets"):
            raise BackendNotReady(f"the {self.name} environment has no assets yet: download them (see `bench setup "
                                  f"--help`) and run `{setup} --assets DIR`, or `{setup} --standin` to try the path")
        return str(python)

    def settings(self) -> dict:
        """What `bench setup` recorded (empty for a backend that runs in this environment)."""
        record = self.setup_record()
        return json.loads(record.read_text()) if self.own_environment and record.is_file() else {}

    def catalog_module(self):
        return importlib.import_module(self.catalog)


BACKENDS: Registry[Backend] = Registry("simulator backend")
# The controllers' numpy linear algebra runs on OpenBLAS, which picks its kernels by CPU: on an AVX-512 CPU its
# SkylakeX kernels round differently from the Haswell (AVX2) ones, enough to change an episode's final state.
# Workers pin the AVX2 kernels on every x86-64 CPU, so the simulator's floats are the same on all of them.
PORTABLE_BLAS = (("OPENBLAS_CORETYPE", "Haswell"),) if platform.machine().lower() in ("x86_64", "amd64") else ()
BACKENDS.add("libero", Backend("libero", "bench.sim.libero.catalog", "bench.sim.libero.worker",
                               "LIBERO (robosuite 1.4, MuJoCo 2.3) in this Python environment",
                               worker_env=PORTABLE_BLAS))
BACKENDS.add("robocasa_gr1", Backend("robocasa_gr1", "bench.sim.robocasa_gr1.catalog", "bench.sim.robocasa_gr1.worker",
                                     "RoboCasa GR1 tabletop (robosuite 1.5, MuJoCo 3.3) in its own environment",
                                     own_environment=True,
                                     # task classes hash their names (str hash: randomised per process otherwise)
                                     worker_env=(("PYTHONHASHSEED", "0"), *PORTABLE_BLAS), needs_assets=True))


def get_backend(name: str) -> Backend:
    return BACKENDS.get(name)


def episode_seed(protocol_seed: int, trial: int) -> int:
    """The env seed of trial `trial` for a backend whose initial conditions are seeds: one rule for all."""
    return protocol_seed * 1_000_003 + trial
