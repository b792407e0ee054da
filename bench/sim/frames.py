"""One pixel path: how a rendered camera frame becomes the frame a model sees.

The policy sees the protocol's render (224 px, upright) and a model that works at 128 px
resizes it; a demo recorded for training must hold the very pixels the policy would have
seen in the same simulator state. So both go through `model_frames`: the render at the
protocol's resolution, resized to the model's size by Pillow's antialiased bilinear filter
(fixed-point integer arithmetic: the same bytes on every CPU) and kept as uint8. The sim
worker calls it when it records demos, the models when an observation is not yet at their
size. numpy and Pillow only: the sim workers import this without torch.
"""

from __future__ import annotations

import numpy as np

# How demo frames are recorded (a demo file says which in its `pixel_path` attribute).
DEMO_PIXEL_PATHS = {
    "render_resize_uint8": "rendered at the protocol's resolution, upright, then model_frames to the demo size",
    "native_render": "rendered directly at the demo size (the demos made before one pixel path)",
}
# How a model turns an observation into its input frame (a model config's `pixel_path`).
PIXEL_PATHS = {
    "render_resize_uint8": "render at the protocol's resolution, Pillow bilinear (antialiased) to the model's "
                           "size, uint8: the same for demos and observations",
    "float_interpolate": "torch bilinear antialiased interpolation in float (checkpoints from before one pixel "
                         "path; their demos were rendered natively at the model's size)",
}


def model_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """(..., H, W, 3) uint8 -> (..., size, size, 3) uint8; frames already at `size` pass unchanged."""
    from PIL import Image

    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise TypeError(f"model_frames takes uint8 frames, got {frames.dtype}")
    if frames.shape[-3:-1] == (size, size):
        return frames
    flat = frames.reshape(-1, *frames.shape[-3:])
    out = np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.Resampling.BILINEAR)) for f in flat])
    return out.reshape(*frames.shape[:-3], size, size, 3)
