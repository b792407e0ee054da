"""`groot`: a GR00T N1.5-style policy, trained from scratch at DiT4DiT's scale.

GR00T N1.5 conditions its action DiT on a frozen VLM's tokens passed through a
LayerNorm and a 4-layer self-attention adapter. No VLM can be loaded offline
here, so a small ViT (both cameras, trained with the policy) and MiniLM text
tokens stand in for it; everything after that is the same as DiT4DiT's head:
the same action DiT (bench/models/action_dit.py), the same flow-matching loss
with the same timestep distribution and repeated draws, the same normaliser and
pixel path. What differs from DiT4DiT is only what conditions the head: image
and text tokens instead of a video DiT's denoising features, and there is no
video loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from bench.demos.dataset import WindowSpec
from bench.models.action_dit import ActionDiT, ActionDiTConfig, flow_action_loss
from bench.models.common import ModelConfig, Normalizer, frames_to_video, override, patchify
from bench.models.flow import TimestepSampler, euler_sample
from bench.models.registry import ModelEntry, register_model


@dataclass
class GR00TConfig(ModelConfig):
    name: str = "tiny"
    cameras: tuple[str, ...] = ("agentview", "eye_in_hand")
    image_size: int = 128
    pixel_path: str = "render_resize_uint8"
    patch: int = 16  # ViT patch side in pixels
    width: int = 128  # ViT, text projection and adapter width (= the action DiT's cross_dim)
    vit_layers: int = 9
    heads: int = 4
    adapter_layers: int = 4  # GR00T N1.5's self-attention adapter after the LayerNorm
    text: str = "minilm"
    text_embeddings: str | None = None
    text_max_tokens: int = 24
    text_dim: int = 384
    action: ActionDiTConfig = field(default_factory=ActionDiTConfig)
    action_timesteps: TimestepSampler = field(default_factory=lambda: TimestepSampler("beta"))
    action_repeats: int = 4
    euler_steps: int = 4

    def validate(self) -> "GR00TConfig":
        if self.image_size % self.patch:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch {self.patch}")
        if self.action.cross_dim != self.width:
            raise ValueError(f"action.cross_dim {self.action.cross_dim} must equal width {self.width}")
        return super().validate()


def tiny_config() -> GR00TConfig:
    """About tiny DiT4DiT's trainable parameters (its action DiT, and a ViT + adapter the size of its video DiT)."""
    return GR00TConfig().validate()


CONFIGS = {"tiny": tiny_config}


def make_config(name: str = "tiny", **overrides) -> GR00TConfig:
    return GR00TConfig.from_dict(override(CONFIGS[name]().to_dict(), overrides))


def _encoder(width: int, heads: int, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class ImageEncoder(nn.Module):
    """A ViT over both cameras (side by side): frames {cam: (B, 1, H, W, 3)} -> tokens (B, cams * patches, width)."""

    def __init__(self, cfg: GR00TConfig):
        super().__init__()
        self.cfg = cfg
        n = (cfg.image_size // cfg.patch) ** 2
        self.patchify = nn.Linear(3 * cfg.patch * cfg.patch, cfg.width)
        self.pos = nn.Parameter(torch.randn(1, len(cfg.cameras) * n, cfg.width) * 0.02)
        self.vit = _encoder(cfg.width, cfg.heads, cfg.vit_layers)

    def forward(self, images: dict[str, torch.Tensor]) -> torch.Tensor:
        video = frames_to_video(images, self.cfg.cameras, self.cfg.image_size, self.cfg.pixel_path)[:, :, 0]
        return self.vit(self.patchify(patchify(video, self.cfg.patch)) + self.pos)  # cameras side by side


class GR00T(nn.Module):
    def __init__(self, cfg: GR00TConfig):
        super().__init__()
        self.cfg = cfg.validate()
        self.image_encoder = ImageEncoder(cfg)
        self.text_proj = nn.Linear(cfg.text_dim, cfg.width)
        self.norm = nn.LayerNorm(cfg.width)
        self.adapter = _encoder(cfg.width, cfg.heads, cfg.adapter_layers)
        self.action_dit = ActionDiT(cfg.action)
        self.normalizer = Normalizer(action_dim=cfg.action.action_dim)

    def context(self, images: dict[str, torch.Tensor], text: torch.Tensor) -> torch.Tensor:
        """Current frames {cam: (B, 1, H, W, 3)} and text tokens -> the action DiT's conditioning tokens."""
        tokens = torch.cat([self.image_encoder(images), self.text_proj(text)], dim=1)
        return self.adapter(self.norm(tokens))

    def forward(self, batch: dict, text: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.loss(batch, text)

    def loss(self, batch: dict, text: torch.Tensor) -> dict[str, torch.Tensor]:
        ctx = self.context({c: v[:, :1] for c, v in batch["images"].items()}, text)
        action = flow_action_loss(self.action_dit, self.normalizer.normalize("actions", batch["actions"].float()),
                                  self.normalizer.normalize("state", batch["state"].float()), ctx,
                                  batch["action_mask"], self.cfg.action_timesteps, self.cfg.action_repeats)
        return {"loss": action, "action": action}

    @torch.no_grad()
    def predict(self, images: dict[str, torch.Tensor], state: torch.Tensor, text: torch.Tensor,
                generator: torch.Generator | None = None, steps: int | None = None) -> torch.Tensor:
        ctx = self.context({c: v[:, None] for c, v in images.items()}, text)
        s = self.normalizer.normalize("state", state.float())
        start = torch.randn((ctx.shape[0], *self.chunk_shape), generator=generator, device=ctx.device)
        actions = euler_sample(lambda a, t: self.action_dit(a, t, s, ctx), start, steps or self.cfg.euler_steps)
        return self.normalizer.unnormalize("actions", actions)

    def param_groups(self) -> list[dict]:
        head = list(self.action_dit.parameters())
        ids = {id(p) for p in head}
        return [{"name": "action", "params": head},
                {"name": "backbone", "params": [p for p in self.parameters() if id(p) not in ids]}]

    def window_spec(self) -> WindowSpec:
        return WindowSpec(cameras=self.cfg.cameras, n_current=1, n_future=0, future_stride=1,
                          chunk=self.cfg.action.chunk)

    @property
    def chunk_shape(self) -> tuple[int, int]:
        return self.cfg.action.chunk, self.cfg.action.action_dim


register_model(ModelEntry("groot", GR00TConfig, CONFIGS, GR00T,
                          "GR00T N1.5-style: ViT + text tokens through a 4-layer adapter condition the action DiT"))
