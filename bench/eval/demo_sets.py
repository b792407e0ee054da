"""The named demo sets every training, ablation and probe here reads: what each holds and how it is made.

Demo files are large (gigabytes) and machine-local, so they are made, not committed: `make_set` runs the
scripted expert until the set is complete (a rerun tops a file up, so a stopped one continues), and the
commands that need a set (`bench ablate`, `bench demos make`) build it when it is missing, after saying what
it will make and roughly how long that takes. Files live under $DIT4DIT_BENCH_DATA/demos (default
~/.cache/dit4dit-bench/demos).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


def data_dir() -> Path:
    return Path(os.environ.get("DIT4DIT_BENCH_DATA", Path.home() / ".cache" / "dit4dit-bench")) / "demos"


@dataclass(frozen=True)
class DemoSet:
    name: str
    suite: str
    per_task: int
    file: str  # under data_dir()
    what: str
    minutes: float  # about how long making it takes on 2 cores (measured on the CI kind of machine)
    resolution: int = 128
    pixel_path: str = "render_resize_uint8"
    frame_every: int = 4
    first_attempt: int = 0  # held-out sets number their attempts from 1000: no training set can hold them

    @property
    def path(self) -> Path:
        return data_dir() / self.file

    def left(self) -> int:
        """Demos still to make (0: complete)."""
        from bench.demos.libero_hdf5 import demo_counts, file_unsolved
        from bench.sim.suites import get_suite

        suite = get_suite(self.suite)
        have = demo_counts(self.path) if self.path.exists() else {}
        unsolved = set(file_unsolved(self.path)) if self.path.exists() else set()
        return sum(max(0, self.per_task - have.get(t.name, 0)) for t in suite.tasks() if t.name not in unsolved)


SETS = {s.name: s for s in (
    DemoSet("libero_spatial", "libero_spatial", 50, "libero_spatial_128_from224.hdf5",
            "the training set of every libero_spatial model: 50 expert demos per task", 61),
    DemoSet("libero_spatial_heldout", "libero_spatial", 2, "libero_spatial_128_from224_heldout.hdf5",
            "held-out demos for action errors: 2 per task, attempts from 1000", 4, first_attempt=1000),
    DemoSet("libero_object", "libero_object", 50, "libero_object_128_from224.hdf5",
            "libero_object's training set: 50 expert demos per task", 70),
    DemoSet("libero_spatial_native_heldout", "libero_spatial", 2, "libero_spatial_128_heldout.hdf5",
            "held-out demos rendered natively at 128 px (the first bundled checkpoint's pixel path)", 6,
            pixel_path="native_render", frame_every=1, first_attempt=1000),
    DemoSet("gr1_tabletop_proxy", "gr1_tabletop_proxy", 20, "gr1_tabletop_proxy_128_from224.hdf5",
            "the GR1 proxy's training set: 20 expert demos per task", 55),
)}


def get_set(name: str) -> DemoSet:
    if name not in SETS:
        raise ValueError(f"unknown demo set {name!r}; valid: {', '.join(SETS)}")
    return SETS[name]


def set_of_file(path: Path) -> DemoSet | None:
    """The named set a file is the default location of (None: a file of the user's own)."""
    return next((s for s in SETS.values() if Path(path).expanduser().resolve() == s.path.resolve()), None)


def make_set(name: str, workers: int = 2, on_episode: Callable | None = None) -> dict:
    """Make (or top up) a demo set; returns the generator's summary."""
    from bench.eval.demos import generate
    from bench.sim.rendering import configure_headless_gl
    from bench.sim.suites import get_suite

    s = get_set(name)
    suite = get_suite(s.suite)
    configure_headless_gl()
    s.path.parent.mkdir(parents=True, exist_ok=True)
    return generate(suite, [t.task_id for t in suite.tasks()], s.per_task, s.path, resolution=s.resolution,
                    workers=workers, on_episode=on_episode, first_attempt=s.first_attempt, pixel_path=s.pixel_path,
                    frame_every=s.frame_every)
