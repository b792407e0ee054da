"""`flare`: FLARE-style (arXiv 2505.15659) future-latent alignment on top of `groot`.

Learnable future tokens join the action DiT's token sequence (its self-attention
blocks see them). During training their activations after block `align_layer`,
through an MLP and averaged, are pulled by cosine similarity towards the embedding
of the frame `future_stride` steps ahead, computed by a target encoder: an EMA copy
of the policy's own image encoder that no gradient reaches. Loss:
action + align_weight * (1 - cosine). At inference the future tokens stay in the
sequence (they are parameters) and nothing else runs: no target encoder, no
future frame.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from baselines.groot import GR00T, GR00TConfig
from bench.demos.dataset import WindowSpec
from bench.models.action_dit import flow_action_loss
from bench.models.common import override
from bench.models.flow import euler_sample
from bench.models.registry import ModelEntry, register_model


@dataclass
class FLAREConfig(GR00TConfig):
    future_tokens: int = 4
    align_layer: int = 1  # action DiT block whose future-token activations are aligned
    align_weight: float = 0.2
    ema_decay: float = 0.99  # of the target encoder, per optimizer step
    future_stride: int = 8  # env steps to the frame whose embedding is the target (tiny DiT4DiT's)

    def validate(self) -> "FLAREConfig":
        super().validate()
        if not 0 <= self.align_layer < self.action.num_layers:
            raise ValueError(f"align_layer {self.align_layer} is not a block of the {self.action.num_layers}-block "
                             "action DiT")
        if not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"ema_decay {self.ema_decay} must be in (0, 1)")
        return self


def tiny_config() -> FLAREConfig:
    """groot's tiny config plus the future tokens and the alignment MLP."""
    return FLAREConfig().validate()


CONFIGS = {"tiny": tiny_config}


def make_config(name: str = "tiny", **overrides) -> FLAREConfig:
    return FLAREConfig.from_dict(override(CONFIGS[name]().to_dict(), overrides))


class FLARE(GR00T):
    TRAINING_ONLY = ("target_encoder",)  # the alignment target: a shipped checkpoint need not carry it

    def __init__(self, cfg: FLAREConfig):
        super().__init__(cfg)
        hidden = cfg.action.hidden
        self.future = nn.Parameter(torch.randn(1, cfg.future_tokens, hidden) * 0.02)
        self.align_mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, cfg.width))
        self.target_encoder = copy.deepcopy(self.image_encoder).requires_grad_(False)

    @torch.no_grad()
    def restore_training_only(self) -> None:
        """After loading a checkpoint exported without it: the EMA target restarts from the trained encoder."""
        self.target_encoder.load_state_dict(self.image_encoder.state_dict())

    @torch.no_grad()
    def after_step(self) -> None:
        """Move the target encoder towards the trained one (EMA)."""
        d = self.cfg.ema_decay
        for t, p in zip(self.target_encoder.parameters(), self.image_encoder.parameters()):
            t.mul_(d).add_(p.detach(), alpha=1 - d)

    def loss(self, batch: dict, text: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        images = batch["images"]
        ctx = self.context({c: v[:, :1] for c, v in images.items()}, text)
        b = ctx.shape[0]
        action, captured = flow_action_loss(
            self.action_dit, self.normalizer.normalize("actions", batch["actions"].float()),
            self.normalizer.normalize("state", batch["state"].float()), ctx, batch["action_mask"],
            cfg.action_timesteps, cfg.action_repeats, extra=self.future.expand(b, -1, -1), capture=cfg.align_layer)
        with torch.no_grad():
            target = self.target_encoder({c: v[:, 1:2] for c, v in images.items()}).mean(1)
        pred = self.align_mlp(captured).mean(1)
        align = 1 - F.cosine_similarity(pred, target.repeat_interleave(cfg.action_repeats, 0), dim=-1).mean()
        return {"loss": action + cfg.align_weight * align, "action": action, "align": align}

    @torch.no_grad()
    def predict(self, images: dict[str, torch.Tensor], state: torch.Tensor, text: torch.Tensor,
                generator: torch.Generator | None = None, steps: int | None = None) -> torch.Tensor:
        ctx = self.context({c: v[:, None] for c, v in images.items()}, text)
        s = self.normalizer.normalize("state", state.float())
        future = self.future.expand(ctx.shape[0], -1, -1)
        start = torch.randn((ctx.shape[0], *self.chunk_shape), generator=generator, device=ctx.device)
        actions = euler_sample(lambda a, t: self.action_dit(a, t, s, ctx, extra=future), start,
                               steps or self.cfg.euler_steps)
        return self.normalizer.unnormalize("actions", actions)

    def window_spec(self) -> WindowSpec:
        return WindowSpec(cameras=self.cfg.cameras, n_current=1, n_future=1, future_stride=self.cfg.future_stride,
                          chunk=self.cfg.action.chunk)


register_model(ModelEntry("flare", FLAREConfig, CONFIGS, FLARE,
                          "FLARE-style: groot + future tokens aligned to an EMA encoder's embedding of a future frame"))
