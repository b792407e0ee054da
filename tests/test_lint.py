"""`bench lint` catches the conventions that silently cost points: a policy that acts like the demos passes,
and each deliberately wrong variant of it (flipped camera, gripper sign or units, scaled actions, rotations a
turn off) is caught with a message that names the fix."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from bench.eval.lint import demo_windows, lint_policy
from bench.policies.builtin import LIBERO_SPEC

FIXTURE = "tests/fixtures/libero_object_t0_2demos_32.hdf5"


class NearestDemo:
    """Acts as the demo whose frames are nearest to what it sees: right on the demos' own frames, wrong on
    frames it would not see upright."""

    spec = LIBERO_SPEC
    _table: tuple | None = None  # every window of the fixture, read once

    def __init__(self):
        if NearestDemo._table is None:
            rows = demo_windows([FIXTURE], self.spec.cameras, self.spec.chunk_length, windows=10_000)
            NearestDemo._table = (np.stack([self.flat(r["images"]) for r in rows]), np.stack([r["actions"] for r in rows]))
        self.keys, self.chunks = NearestDemo._table

    @staticmethod
    def flat(images: dict) -> np.ndarray:
        return np.concatenate([np.asarray(images[c], dtype=np.float32).ravel() for c in sorted(images)])

    def reset(self, episode) -> None:
        pass

    def act(self, batch):
        out = []
        for i in range(len(batch)):
            q = self.flat({c: v[i] for c, v in batch.images.items()})
            out.append(self.chunks[np.argmin(((self.keys - q) ** 2).sum(1))])
        return np.stack(out)


class Wrong(NearestDemo):
    def __init__(self, fault: str):
        super().__init__()
        self.fault = fault

    def act(self, batch):
        if self.fault == "camera":
            batch.images = {c: np.ascontiguousarray(v[:, ::-1, ::-1]) for c, v in batch.images.items()}
        a = super().act(batch).astype(np.float64)
        if self.fault == "gripper sign":
            a[..., -1] *= -1
        elif self.fault == "gripper range":
            a[..., -1] = (a[..., -1] + 1) / 2
        elif self.fault == "scale":
            a[..., :6] *= 4
        elif self.fault == "rotation":  # the same rotation the long way round, as a quaternion sign flip gives it
            r = a[..., 3:6]
            norm = np.linalg.norm(r, axis=-1, keepdims=True)
            a[..., 3:6] = np.where(norm > 1e-6, r - 2 * np.pi * r / np.maximum(norm, 1e-6), r)
        return a


@pytest.fixture(scope="module")
def correct():
    return NearestDemo()


def test_a_policy_that_acts_like_the_demos_passes(correct):
    report = lint_policy(correct, "nearest", "libero_object", [FIXTURE], windows=24)
    assert report.windows == 24 and not report.problems, [f for f in report.findings]
    assert {f.check for f in report.findings} == {"spec", "rotation", "scale", "gripper range", "gripper sign",
                                                  "camera"}


@pytest.mark.parametrize("fault,check,says", [
    ("camera", "camera", "rotated 180 degrees"),
    ("gripper sign", "gripper sign", "negate the policy's gripper"),
    ("gripper range", "gripper range", "map a [0, 1] gripper to -1 / +1"),
    ("scale", "scale", "x4.00 of the demos' scale"),
    ("rotation", "rotation", "quaternion and its negative are one rotation"),
])
def test_each_wrong_convention_is_caught_with_its_fix(fault, check, says):
    report = lint_policy(Wrong(fault), fault, "libero_object", [FIXTURE], windows=24)
    caught = {f.check: f for f in report.problems}
    assert check in caught, report.findings
    assert says in caught[check].detail + " " + caught[check].fix


def test_a_policy_that_does_not_fit_the_protocol_stops_at_the_spec(correct):
    from dataclasses import replace

    short = NearestDemo.__new__(NearestDemo)
    short.spec = replace(LIBERO_SPEC, chunk_length=4)
    report = lint_policy(short, "short", "libero_object", [FIXTURE])
    assert [f.check for f in report.problems] == ["spec"] and "executed chunk 8" in report.problems[0].detail


def test_bench_lint_exits_1_on_a_problem_and_names_the_fix(bench_cmd):
    ok = subprocess.run([*bench_cmd, "lint", "--policy", "zero", "--suite", "libero_object", "--demos", FIXTURE,
                         "--windows", "8", "--no-camera"], capture_output=True, text=True, timeout=300)
    text = " ".join(ok.stdout.split())
    assert ok.returncode == 1 and "scale" in text and "unnormalise" in text, ok.stdout + ok.stderr
    bad = subprocess.run([*bench_cmd, "lint", "--policy", "zero", "--suite", "libero_object", "--demos", "nope.hdf5"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "nope.hdf5" in bad.stderr


def test_bench_run_warns_with_lint_problems_when_held_out_demos_are_here(tmp_path, monkeypatch):
    """bench run's first step: with the suite's held-out demo set on this machine, lint's problems become the
    run's notes; without it, nothing runs."""
    import shutil

    from bench.eval.demo_sets import SETS
    from bench.eval.evaluate import lint_notes
    from bench.policies import make_policy

    monkeypatch.setenv("DIT4DIT_BENCH_DATA", str(tmp_path))
    lines = []
    assert lint_notes(make_policy("zero"), "zero", "libero_spatial", lines.append) == [] and not lines
    held = SETS["libero_spatial_heldout"].path
    held.parent.mkdir(parents=True)
    shutil.copy(FIXTURE, held)  # a stand-in of the same format
    notes = lint_notes(make_policy("zero"), "zero", "libero_spatial", lines.append)
    assert notes and notes[0].startswith("lint: scale:") and "unnormalise" in notes[0]
    assert lines and "lint on 16 held-out windows" in lines[0]
