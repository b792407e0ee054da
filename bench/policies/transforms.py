"""Small composable observation and action transforms, shared by the remote adapters and `bench serve`.

A transform takes a dict and returns a new one. Our side of every exchange is one observation row:

    {"agentview": (H, W, 3) uint8 upright, "eye_in_hand": (H, W, 3) uint8 upright,
     "state": (8,) eef pos, eef axis-angle, gripper qpos (LIBERO_STATE_LAYOUT), "prompt": str}

and one action chunk {"actions": (T, 7)} in LIBERO's convention (delta eef pose, gripper -1 open / +1
closed). `PEERS` is the one place that says what each peer expects and answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Transform = Callable[[dict], dict]


def compose(*transforms: Transform) -> Transform:
    def run(data: dict) -> dict:
        for t in transforms:
            data = t(data)
        return data
    return run


@dataclass(frozen=True)
class RepackKeys:
    """{new key: old key}; keys not named are dropped (a peer's extra keys never leak through)."""
    mapping: dict

    def __call__(self, data: dict) -> dict:
        missing = [old for old in self.mapping.values() if old not in data]
        if missing:
            raise KeyError(f"missing {', '.join(map(repr, missing))} (have {', '.join(map(repr, data))})")
        return {new: data[old] for new, old in self.mapping.items()}


@dataclass(frozen=True)
class ResizeWithPad:
    """Images to size x size without distortion, zero-padded (openpi's image handling)."""
    keys: tuple[str, ...]
    size: int

    def __call__(self, data: dict) -> dict:
        from openpi_client.image_tools import convert_to_uint8, resize_with_pad

        out = dict(data)
        for k in self.keys:
            out[k] = convert_to_uint8(resize_with_pad(np.asarray(data[k]), self.size, self.size))
        return out


@dataclass(frozen=True)
class Rotate180:
    """Turn images half a turn (LIBERO renders upside down; peers differ in whether they expect that)."""
    keys: tuple[str, ...]

    def __call__(self, data: dict) -> dict:
        return {**data, **{k: np.ascontiguousarray(np.asarray(data[k])[..., ::-1, ::-1, :]) for k in self.keys}}


@dataclass(frozen=True)
class SplitVector:
    """One vector into named pieces: {name: (start, stop)}, each with `lead` leading axes of size 1 (a later
    Batch adds the batch axis)."""
    key: str
    pieces: dict
    lead: int = 0

    def __call__(self, data: dict) -> dict:
        vec = np.asarray(data[self.key], dtype=np.float64)
        out = {k: v for k, v in data.items() if k != self.key}
        for name, (a, b) in self.pieces.items():
            out[name] = vec[a:b].reshape((1,) * self.lead + (b - a,))
        return out


@dataclass(frozen=True)
class JoinVector:
    """Named pieces (each (T,) or (T, n)) into one (T, sum n) array under `key`, in `names` order."""
    names: tuple[str, ...]
    key: str = "actions"

    def __call__(self, data: dict) -> dict:
        missing = [n for n in self.names if n not in data]
        if missing:
            raise KeyError(f"missing {', '.join(map(repr, missing))} (have {', '.join(map(repr, data))})")
        parts = [np.asarray(data[n], dtype=np.float64) for n in self.names]
        parts = [p[:, None] if p.ndim == 1 else p for p in parts]
        return {self.key: np.concatenate(parts, axis=1)}


@dataclass(frozen=True)
class GripperUnitToSigned:
    """The last action dimension from [0, 1] (0 open) to LIBERO's -1 / +1, binarised by its sign."""
    key: str = "actions"

    def __call__(self, data: dict) -> dict:
        a = np.array(data[self.key], dtype=np.float64)
        a[..., -1] = np.sign(2.0 * a[..., -1] - 1.0)
        return {**data, self.key: a}


@dataclass(frozen=True)
class ClipActions:
    """Clip the first `dims` action dimensions to [low, high] (the pose part of LIBERO's delta actions)."""
    low: float = -1.0
    high: float = 1.0
    dims: int = 6
    key: str = "actions"

    def __call__(self, data: dict) -> dict:
        a = np.array(data[self.key], dtype=np.float64)
        a[..., : self.dims] = np.clip(a[..., : self.dims], self.low, self.high)
        return {**data, self.key: a}


@dataclass(frozen=True)
class BinarizeGripper:
    """The last action dimension to LIBERO's -1 (open) / +1 (closed): above `threshold` is closed (0 in LIBERO's
    signed units is the official clients' 0.5 in [0, 1] units)."""
    threshold: float = 0.0
    key: str = "actions"

    def __call__(self, data: dict) -> dict:
        a = np.array(data[self.key], dtype=np.float64)
        a[..., -1] = np.where(a[..., -1] > self.threshold, 1.0, -1.0)
        return {**data, self.key: a}


# How a trained policy's unnormalised chunk becomes the actions the simulator gets (`--policy-arg
# postprocess=NAME`; a checkpoint may name its own as config.json "action_postprocess").
ACTION_POSTPROCESS: dict[str, tuple[str, Transform]] = {
    "continuous": ("the chunk as predicted: every dimension unnormalised from its 1st/99th percentiles, the gripper "
                   "continuous (the tiny models' training target)", compose()),
    "official": ("the official LIBERO clients' convention: the six pose dimensions clipped to [-1, 1], the gripper "
                 "binarised to -1 / +1", compose(ClipActions(), BinarizeGripper())),
}


def action_postprocess(name: str) -> Transform:
    if name not in ACTION_POSTPROCESS:
        raise ValueError(f"unknown action post-processing {name!r}; valid: {', '.join(ACTION_POSTPROCESS)}")
    return ACTION_POSTPROCESS[name][1]


@dataclass(frozen=True)
class Batch:
    """Give every array a leading batch axis of 1 and wrap the prompt in a list (peers that take batches)."""
    prompt_key: str

    def __call__(self, data: dict) -> dict:
        return {k: [v] if k == self.prompt_key else np.asarray(v)[None] for k, v in data.items()}


@dataclass(frozen=True)
class SideBySide:
    """Two images resized (area averaging, as cv2.INTER_AREA) to size x size and joined left to right under
    `key` as a one-element list (the official DiT4DiT client's camera layout)."""
    left: str
    right: str
    size: int
    key: str = "image"

    def __call__(self, data: dict) -> dict:
        import cv2

        imgs = [cv2.resize(np.asarray(data[k]), (self.size, self.size), interpolation=cv2.INTER_AREA)
                for k in (self.left, self.right)]
        out = {k: v for k, v in data.items() if k not in (self.left, self.right)}
        out[self.key] = [np.ascontiguousarray(np.concatenate(imgs, axis=1))]
        return out


@dataclass(frozen=True)
class SinCosState:
    """The state as interleaved sin/cos pairs [sin x0, cos x0, sin x1, ...], zero-padded to `width`, shape
    (1, width) float32 (the official DiT4DiT state token's input)."""
    key: str = "state"
    width: int = 16

    def __call__(self, data: dict) -> dict:
        x = np.asarray(data[self.key], dtype=np.float64)
        enc = np.stack([np.sin(x), np.cos(x)], axis=-1).reshape(-1)
        out = np.zeros((1, self.width), dtype=np.float32)
        out[0, : min(self.width, enc.size)] = enc[: self.width]
        return {**data, self.key: out}


@dataclass(frozen=True)
class Dit4ditActions:
    """The official DiT4DiT LIBERO client's post-processing of `normalized_actions` (B, T, D): the first 7
    dims, clipped to [-1, 1]; the gripper (dim 6) to 0 / 1 at 0.5; min-max unnormalised with the training
    set's action statistics (`low`, `high`, 7 each; identity when absent); then the gripper to LIBERO's
    +1 closed / -1 open (above 0.5 is open)."""
    low: tuple | None = None
    high: tuple | None = None

    def __call__(self, data: dict) -> dict:
        a = np.clip(np.asarray(data["normalized_actions"], dtype=np.float64)[0, :, :7], -1.0, 1.0)
        a[:, 6] = (a[:, 6] >= 0.5).astype(np.float64)
        if self.low is not None and self.high is not None:
            lo, hi = np.asarray(self.low, dtype=np.float64), np.asarray(self.high, dtype=np.float64)
            a = 0.5 * (a + 1.0) * (hi - lo) + lo
        a[:, 6] = 1.0 - 2.0 * (a[:, 6] > 0.5)
        return {"actions": a}


@dataclass(frozen=True)
class Peer:
    """How to talk to one peer: our observation row -> its request, its response -> our action chunk."""
    name: str
    doc: str
    request: Transform
    response: Transform


OPENPI_KEYS = {"observation/image": "agentview", "observation/wrist_image": "eye_in_hand",
               "observation/state": "state", "prompt": "prompt"}
GR00T_STATE = {"state.x": (0, 1), "state.y": (1, 2), "state.z": (2, 3), "state.roll": (3, 4), "state.pitch": (4, 5),
               "state.yaw": (5, 6), "state.gripper": (6, 8)}
GR00T_ACTIONS = ("action.x", "action.y", "action.z", "action.roll", "action.pitch", "action.yaw", "action.gripper")

PEERS = {
    "openpi": Peer(
        "openpi", "openpi's LIBERO example: upright 224 px images (resized with padding), the 8-d eef state, the "
                  "prompt; answers {'actions': (T, 7)} in LIBERO's convention",
        request=compose(RepackKeys(OPENPI_KEYS), ResizeWithPad(("observation/image", "observation/wrist_image"), 224)),
        response=RepackKeys({"actions": "actions"})),
    "gr00t": Peer(
        "gr00t", "Isaac-GR00T's LIBERO example: video.image / video.wrist_image (1, H, W, 3), state.x ... state.yaw "
                 "(1, 1) and state.gripper (1, 2), annotation.human.action.task_description [prompt]; answers "
                 "action.x ... action.gripper over T steps, the gripper in [0, 1]",
        request=compose(RepackKeys({"video.image": "agentview", "video.wrist_image": "eye_in_hand", "state": "state",
                                    "annotation.human.action.task_description": "prompt"}),
                        SplitVector("state", GR00T_STATE, lead=0),
                        Batch("annotation.human.action.task_description")),
        response=compose(JoinVector(GR00T_ACTIONS), GripperUnitToSigned())),
    "dit4dit": Peer(
        "dit4dit", "the official DiT4DiT websocket server's LIBERO client: {'type': 'infer', 'examples': [{'image': "
                   "[agent view | wrist view, each 224 px, side by side], 'lang': prompt, 'state': sin/cos of the "
                   "8-d eef state (1, 16)}]}; answers data.normalized_actions (1, 8, 8)",
        request=compose(SideBySide("agentview", "eye_in_hand", 224), RepackKeys(
            {"image": "image", "lang": "prompt", "state": "state"}), SinCosState()),
        response=Dit4ditActions()),
}


def to_openpi_observation(obs: dict) -> dict:
    """What `bench serve` receives, back to our observation row (the inverse of the openpi request)."""
    return RepackKeys({ours: theirs for theirs, ours in OPENPI_KEYS.items()})(obs)
