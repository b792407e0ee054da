"""Parts every trainable model shares: config plumbing, the state/action normaliser, how camera frames
become a model's video tensor, the precision context, parameter counts."""

from __future__ import annotations

from dataclasses import asdict, fields, is_dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from bench.sim.frames import model_frames


def config_from_dict(cls, d: dict):
    """A (nested) dataclass config from its dict; keys it does not know are ignored (older checkpoints)."""
    kwargs = {}
    for f in fields(cls):
        if f.name not in d:
            continue
        v = d[f.name]
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        if is_dataclass(default):
            v = config_from_dict(type(default), v)
        elif isinstance(v, list):
            v = tuple(v)
        kwargs[f.name] = v
    return cls(**kwargs)


class ModelConfig:
    """Base of every model config dataclass: a dict round trip (checkpoints store configs as JSON) and
    `validate`, which checks the fields all models share (text encoder, pixel path) and returns self."""

    def validate(self):
        from bench.sim.frames import PIXEL_PATHS
        from bench.models.text import TEXT_ENCODERS

        check_choice("text encoder", self.text, TEXT_ENCODERS)  # type: ignore[attr-defined]
        check_choice("pixel path", self.pixel_path, PIXEL_PATHS)  # type: ignore[attr-defined]
        return self

    # Top-level fields added after trainings were cached and scores committed under keys made from the config:
    # at these defaults they are left out of `key_dict`, so those trainings keep their keys.
    ADDED_LATER: ClassVar[dict[str, Any]] = {}

    def to_dict(self) -> dict:
        return asdict(self)  # type: ignore[call-overload]

    def key_dict(self) -> dict:
        """to_dict for hashing: what defines the model, with later additions at their defaults left out."""
        return {k: v for k, v in self.to_dict().items()
                if not (k in self.ADDED_LATER and v == self.ADDED_LATER[k])}

    @classmethod
    def from_dict(cls, d: dict):
        return config_from_dict(cls, d).validate()


def check_choice(what: str, value, choices) -> None:
    """One message for a setting outside its choices: it names the value and the valid ones."""
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


def override(d: dict, overrides: dict[str, Any]) -> dict:
    """Set dotted keys ("video.feature_layer") in a config dict; an unknown key is an error naming it."""
    for key, value in overrides.items():
        target = d
        *path, last = key.split(".")
        for p in path:
            if not isinstance(target.get(p), dict):
                raise ValueError(f"unknown config key {key!r}")
            target = target[p]
        if last not in target:
            raise ValueError(f"unknown config key {key!r}")
        target[last] = value
    return d


class Normalizer(nn.Module):
    """Maps states and actions to [-1, 1] by their 1st/99th percentiles (buffers: saved with the weights)."""

    def __init__(self, state_dim: int = 8, action_dim: int = 7):
        super().__init__()
        for name, dim in (("state", state_dim), ("actions", action_dim)):
            self.register_buffer(f"{name}_lo", -torch.ones(dim))
            self.register_buffer(f"{name}_hi", torch.ones(dim))

    def set_stats(self, stats: dict) -> None:
        for name in ("state", "actions"):
            lo = torch.tensor(stats[name]["q01"], dtype=torch.float32)
            hi = torch.tensor(stats[name]["q99"], dtype=torch.float32)
            same = (hi - lo) < 1e-6  # constant dims pass through unscaled around their value
            getattr(self, f"{name}_lo").copy_(torch.where(same, lo - 1, lo))
            getattr(self, f"{name}_hi").copy_(torch.where(same, hi + 1, hi))

    def normalize(self, name: str, x: torch.Tensor) -> torch.Tensor:
        lo, hi = getattr(self, f"{name}_lo"), getattr(self, f"{name}_hi")
        return (2 * (x - lo) / (hi - lo) - 1).clamp(-1.5, 1.5)

    def unnormalize(self, name: str, x: torch.Tensor) -> torch.Tensor:
        lo, hi = getattr(self, f"{name}_lo"), getattr(self, f"{name}_hi")
        return (x + 1) / 2 * (hi - lo) + lo


def frames_to_video(images: dict[str, torch.Tensor], cameras: tuple[str, ...], size: int,
                    pixel_path: str = "render_resize_uint8") -> torch.Tensor:
    """{cam: (B, T, H, W, 3) uint8} -> (B, 3, T, size, size * n_cams) in [-1, 1], cameras side by side.
    Frames not at `size` are resized by the config's pixel path (bench/sim/frames.py)."""
    views = []
    for cam in cameras:
        x = images[cam]
        b, t, h, w, _ = x.shape
        if (h, w) != (size, size) and pixel_path == "render_resize_uint8":
            x = torch.from_numpy(model_frames(x.cpu().numpy(), size)).to(x.device)
            h = w = size
        x = x.reshape(b * t, h, w, 3).permute(0, 3, 1, 2).float()
        if (h, w) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        views.append(x.reshape(b, t, 3, size, size))
    video = torch.cat(views, dim=-1) / 127.5 - 1.0
    return video.permute(0, 2, 1, 3, 4).contiguous()


def precision_context(device: torch.device | str, precision: str):
    """The forward-pass context of a precision: "bf16" is autocast to bfloat16 with fp32 weights and
    optimizer state (what `bench train --precision bf16` and `bench perf policy` measure), "fp32" is plain."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")


ATTENTION = {
    "default": "each library's own kernel (diffusers: fused scaled-dot-product attention)",
    "math": "diffusers' plain softmax(QK^T)V: the same function; its backward is the faster one in bf16 on CPU "
            "(bench perf train)",
}


def set_attention(model: nn.Module, kind: str) -> int:
    """Choose the attention kernel of the diffusers parts of `model` (ATTENTION); returns how many were set.
    Not saved with a checkpoint: evaluation always runs the default kernel."""
    check_choice("attention", kind, ATTENTION)
    if kind == "default":
        return 0
    from diffusers import ModelMixin

    parts = [m for m in model.modules() if isinstance(m, ModelMixin)]
    for part in parts:
        part.set_attention_backend("_native_math")
    return len(parts)


def compile_blocks(model: nn.Module) -> int:
    """Compile the forward of every block in each list of like blocks (regional compilation: one graph per
    kind of block, reused by all of them, compiled in seconds rather than minutes for the whole model).
    The hooks the feature pass sets on a block run outside its compiled forward, so early exit still works.
    Returns how many blocks were compiled. Training only: inference keeps eager row-by-row math."""
    import torch._dynamo

    # one graph per block instance and grad mode (training, no-grad scoring): more than dynamo's default allows
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    n = 0
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) > 1 and len({type(c) for c in module}) == 1:
            for block in module:
                block.forward = torch.compile(block.forward, dynamic=False)
                n += 1
    return n


def count_parameters(module: nn.Module, trainable: bool = False) -> int:
    """All parameters, or only those that train (an EMA target copy does not)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)


def patchify(video: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, (H/p) * (W/p), C * p * p): non-overlapping p x p patches, row by row."""
    b, c = video.shape[:2]
    return video.unfold(2, p, p).unfold(3, p, p).permute(0, 2, 3, 1, 4, 5).reshape(b, -1, c * p * p)
