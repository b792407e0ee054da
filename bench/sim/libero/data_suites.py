"""LIBERO suites of our own: BDDL problems and committed initial states, as package data.

A suite written here (the GR1 tabletop proxy, the zero-shot splits) is a directory
`bench/sim/libero/suites/<name>/` holding `suite.json` (its tasks: name, instruction, BDDL file,
tags), the BDDL files, and `init_states.npz` (one array of simulator states per task, made once by
`bench init-states`, seeded and checked for physical validity, then committed). Registered
suites point at it with `source="data:<name>"`; the LIBERO catalog reads it like LIBERO's own
benchmark registry, so runs, demos and training treat both alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent / "suites"


@dataclass(frozen=True)
class DataTask:
    name: str
    language: str
    bddl: str  # file name inside the suite directory
    tags: tuple[str, ...] = ()


@lru_cache(maxsize=None)
def manifest(name: str) -> tuple[DataTask, ...]:
    path = ROOT / name / "suite.json"
    if not path.is_file():
        raise FileNotFoundError(f"no suite data at {path}")
    tasks = json.loads(path.read_text())["tasks"]
    return tuple(DataTask(t["name"], t["language"], t["bddl"], tuple(t.get("tags", ()))) for t in tasks)


def bddl_path(name: str, task: DataTask) -> Path:
    return ROOT / name / task.bddl


def init_states_path(name: str) -> Path:
    return ROOT / name / "init_states.npz"


@lru_cache(maxsize=8)
def init_states(name: str) -> dict[str, np.ndarray]:
    path = init_states_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"suite {name} has no initial states yet ({path}): run `bench init-states --suite {name}`")
    with np.load(path) as f:
        return {k: f[k] for k in f.files}
