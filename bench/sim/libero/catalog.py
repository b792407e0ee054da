"""LIBERO suites' tasks and initial states, read from libero's benchmark registry (runner side)."""

from __future__ import annotations

import contextlib
import io
from functools import lru_cache

import numpy as np

from bench.sim.libero import data_suites
from bench.sim.suites import Suite, TaskInfo


def _quiet_benchmark(name: str):
    """libero prints '[info] ...' on every benchmark construction; keep stdout clean."""
    from libero.libero import benchmark

    with contextlib.redirect_stdout(io.StringIO()):
        return benchmark.get_benchmark_dict()[name]()


@lru_cache(maxsize=None)
def _tasks(benchmark_name: str, suite_name: str) -> tuple[TaskInfo, ...]:
    b = _quiet_benchmark(benchmark_name)
    return tuple(
        TaskInfo(suite_name, i, b.get_task(i).name, b.get_task(i).language, b.get_task_bddl_file_path(i))
        for i in range(b.n_tasks)
    )


@lru_cache(maxsize=64)
def _init_states(benchmark_name: str, task_id: int) -> np.ndarray:
    return np.asarray(_quiet_benchmark(benchmark_name).get_task_init_states(task_id))


def _data_name(suite: Suite) -> str | None:
    return suite.source[len("data:"):] if suite.source.startswith("data:") else None


def tasks(suite: Suite) -> list[TaskInfo]:
    data = _data_name(suite)
    if data is None:
        return list(_tasks(suite.source, suite.name))
    return [TaskInfo(suite.name, i, t.name, t.language, str(data_suites.bddl_path(data, t)), tags=t.tags)
            for i, t in enumerate(data_suites.manifest(data))]


def initial_conditions(suite: Suite, task_id: int) -> np.ndarray:
    """Trial i starts from init state i of the task's committed init file."""
    data = _data_name(suite)
    if data is None:
        return _init_states(suite.source, task_id)
    name = data_suites.manifest(data)[task_id].name
    states = data_suites.init_states(data)
    if name not in states:
        raise ValueError(f"{suite.name} task {task_id} ({name}) has no initial states yet: run "
                         f"`bench init-states --suite {suite.name} --tasks {task_id}`")
    return states[name]
