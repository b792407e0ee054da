import numpy as np
import pytest

from bench.policies import make_policy
from bench.policies.builtin import LIBERO_SPEC
from bench.policies.contract import EpisodeInfo, ObservationBatch, PolicySpec, SpecMismatch, check_spec, validate_chunks
from bench.core.registry import UnknownNameError
from bench.sim.suites import Protocol, TaskInfo


def _batch(n=2):
    return ObservationBatch([f"k{i}" for i in range(n)], {"agentview": np.zeros((n, 8, 8, 3), np.uint8)},
                            np.zeros((n, 8), np.float32), ["p"] * n, np.zeros(n, np.int64))


def test_spec_check_names_every_mismatch():
    spec = PolicySpec(cameras=("frontview",), state_layout="joint_pos(7)", action_dim=8,
                      action_convention="abs", chunk_length=4, image_size=128)
    with pytest.raises(SpecMismatch) as exc:
        check_spec(spec, Protocol(max_steps=10), "mine", "libero_spatial")
    msg = str(exc.value)
    for part in ["frontview", "image size 128", "state layout", "action dim 8", "action convention",
                 "chunk length 4"]:
        assert part in msg
    check_spec(LIBERO_SPEC, Protocol(max_steps=10), "zero", "libero_spatial")  # fits


def test_validate_chunks_catches_shape_and_nan_per_row():
    good = np.zeros((2, 8, 7))
    arr, errs = validate_chunks(good, 2, LIBERO_SPEC)
    assert arr is not None and errs == [None, None]
    _, errs = validate_chunks(np.zeros((2, 8, 6)), 2, LIBERO_SPEC)
    assert all("shape (2, 8, 6)" in e for e in errs)
    bad = good.copy()
    bad[1, 3, 2] = np.nan
    _, errs = validate_chunks(bad, 2, LIBERO_SPEC)
    assert errs[0] is None and "non-finite" in errs[1]
    _, errs = validate_chunks("nope", 2, LIBERO_SPEC)
    assert all("not a numeric array" in e for e in errs)


def test_builtin_policies():
    task = TaskInfo("libero_spatial", 0, "t", "do it", "x.bddl")
    zero = make_policy("zero")
    out = zero.act(_batch())
    assert out.shape == (2, 8, 7) and (out[..., :6] == 0).all() and (out[..., 6] == -1).all()
    rnd, rnd2 = make_policy("random", seed=3), make_policy("random", seed=3)
    for p in (rnd, rnd2):
        p.reset(EpisodeInfo("k0", task, 0, 7))
        p.reset(EpisodeInfo("k1", task, 1, 7))
    a, b = rnd.act(_batch()), rnd2.act(_batch())
    assert np.array_equal(a, b) and not np.array_equal(a[0], a[1]) and np.abs(a).max() <= 1


def test_make_policy_errors():
    with pytest.raises(UnknownNameError, match="Did you mean 'random'"):
        make_policy("randm")
    with pytest.raises(ValueError, match="needs --demos"):
        make_policy("replay")
    with pytest.raises(ValueError, match="does not use --checkpoint"):
        make_policy("zero", checkpoint="x.pt")


def test_no_gl_backend_says_what_is_missing(monkeypatch):
    from bench.sim import rendering

    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(rendering, "probe", lambda backend, timeout_s=60: (False, f"{backend} library not found"))
    with pytest.raises(rendering.HeadlessGLError) as exc:
        rendering.configure_headless_gl()
    msg = str(exc.value)
    assert "egl library not found" in msg and "libegl1" in msg and "libosmesa6" in msg and "MUJOCO_GL" in msg
