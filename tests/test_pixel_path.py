"""One pixel path: a demo's frame and the model's frame of the observation, for the same simulator state,
are the same bytes (bench/sim/frames.py)."""

from __future__ import annotations

import numpy as np
import torch

from bench.models.dit4dit import DiT4DiTConfig, frames_to_video
from bench.sim.frames import model_frames
from bench.sim.worker import record_frames
from bench.sim.suites import get_suite

CAMS = ("agentview", "eye_in_hand")


def test_demo_frames_are_the_frames_a_model_makes_of_the_observation(gl):
    from bench.sim.libero.env import LiberoSim

    suite = get_suite("libero_spatial")
    sim = LiberoSim(suite.task(0), suite.protocol)
    try:
        sim.reset_to(suite.initial_conditions(0)[0], suite.protocol.seed)
        for _ in range(6):  # move the arm: a state that is not the initial one
            sim.step(np.array([0.4, 0.2, -0.2, 0.0, 0.0, 0.0, -1.0]))
        stored = record_frames(sim, CAMS, 128)  # what a demo file holds (LIBERO's upside-down convention)
        observed = sim.render(CAMS)  # what the policy is given: the protocol's 224 px, upright
        native = sim.render(CAMS, 128)  # how demos were rendered before
    finally:
        sim.close()
    for cam in CAMS:
        assert observed[cam].shape == (224, 224, 3) and stored[cam].shape == (128, 128, 3)
        upright = np.ascontiguousarray(stored[cam][::-1, ::-1])  # as the dataset yields it (LiberoHDF5Source.frames)
        from_demo = frames_to_video({cam: torch.from_numpy(upright)[None, None]}, (cam,), 128)
        from_obs = frames_to_video({cam: torch.from_numpy(observed[cam])[None, None]}, (cam,), 128)
        assert torch.equal(from_demo, from_obs)
        # the native 128 px render is another image: the mismatch this path removes
        assert np.abs(native[cam].astype(int) - model_frames(observed[cam], 128).astype(int)).mean() > 1.0


def test_old_checkpoints_keep_their_pixel_path():
    old = DiT4DiTConfig.from_dict({"name": "tiny"})  # a config.json saved before the field existed
    assert old.pixel_path == "float_interpolate" and DiT4DiTConfig().pixel_path == "render_resize_uint8"
    frame = np.random.default_rng(0).integers(0, 256, (1, 1, 224, 224, 3), dtype=np.uint8)
    a = frames_to_video({"agentview": torch.from_numpy(frame)}, ("agentview",), 128, "float_interpolate")
    b = frames_to_video({"agentview": torch.from_numpy(frame)}, ("agentview",), 128, "render_resize_uint8")
    assert a.shape == b.shape and not torch.equal(a, b)
