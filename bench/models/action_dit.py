"""The action DiT, GR00T style, shared by DiT4DiT and the trainable baselines.

Tokens: one state token (an MLP of the sin/cos-encoded, zero-padded state; see
`state_encoding`) then
`chunk` action tokens (an MLP of the noisy actions), plus learned positions.
Blocks alternate: even blocks cross-attend to the conditioning features (video
DiT hidden states for DiT4DiT, other features for the baselines), odd blocks
self-attend. Each attention is preceded by an AdaLN whose scale and shift come
from the flow timestep (discretised into `timestep_buckets` as GR00T does).
The output is the velocity for the action tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class ActionDiTConfig:
    num_layers: int = 4
    num_heads: int = 4
    head_dim: int = 32
    cross_dim: int = 128  # width of the conditioning features
    chunk: int = 8
    action_dim: int = 7
    state_dim: int = 8  # the state is zero-padded to this width
    # sincos_raw: sin and cos of the raw state, once (the official DiT4DiT head), the default: smooth in the
    # state, so the head cannot key on exact states. fourier: sin/cos of the normalised state at state_freqs
    # octaves (times pi), whose finest period is 1/2**(state_freqs-1) of the state's range (kept for checkpoints
    # made with it, and as an ablation arm).
    state_encoding: str = "sincos_raw"
    state_freqs: int = 8  # octaves of the fourier encoding
    dropout: float = 0.2
    timestep_buckets: int = 1000
    ff_mult: int = 4

    @property
    def hidden(self) -> int:
        return self.num_heads * self.head_dim


# What the state token sees: the normalised state (fourier) or the raw one (sincos_raw); see ActionDiTConfig.
STATE_ENCODINGS = ("fourier", "sincos_raw")


def sinusoidal(x: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sin/cos embedding of x (...,) -> (..., dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angles = x.float()[..., None] * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class AdaLayerNorm(nn.Module):
    """LayerNorm whose scale and shift are predicted from the timestep embedding."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.proj = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        nn.init.zeros_(self.proj[1].weight)
        nn.init.zeros_(self.proj[1].bias)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.proj(temb)[:, None].chunk(2, dim=-1)
        return self.norm(x) * (1 + scale) + shift


class Block(nn.Module):
    def __init__(self, cfg: ActionDiTConfig, cross: bool):
        super().__init__()
        d = cfg.hidden
        self.cross = cross
        self.norm1 = AdaLayerNorm(d)
        self.attn = nn.MultiheadAttention(d, cfg.num_heads, dropout=cfg.dropout, batch_first=True,
                                          kdim=cfg.cross_dim if cross else d, vdim=cfg.cross_dim if cross else d)
        self.norm2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, cfg.ff_mult * d), nn.GELU(approximate="tanh"), nn.Dropout(cfg.dropout),
                                nn.Linear(cfg.ff_mult * d, d))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, temb: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x, temb)
        kv = context if self.cross else h
        x = x + self.drop(self.attn(h, kv, kv, need_weights=False)[0])
        return x + self.drop(self.ff(self.norm2(x)))


class ActionDiT(nn.Module):
    def __init__(self, cfg: ActionDiTConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.hidden
        self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        if cfg.state_encoding not in STATE_ENCODINGS:
            raise ValueError(f"unknown state encoding {cfg.state_encoding!r}; choose one of {', '.join(STATE_ENCODINGS)}")
        width = cfg.state_dim * 2 * (cfg.state_freqs if cfg.state_encoding == "fourier" else 1)
        self.state_mlp = nn.Sequential(nn.Linear(width, d), nn.SiLU(), nn.Linear(d, d))
        self.action_mlp = nn.Sequential(nn.Linear(cfg.action_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.pos = nn.Parameter(torch.zeros(1, 1 + cfg.chunk, d))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(Block(cfg, cross=(i % 2 == 0)) for i in range(cfg.num_layers))
        self.norm_out = AdaLayerNorm(d)
        self.out = nn.Linear(d, cfg.action_dim)

    def encode_state(self, state: torch.Tensor) -> torch.Tensor:
        if state.shape[-1] > self.cfg.state_dim:
            raise ValueError(f"state has {state.shape[-1]} dims, more than the configured state_dim {self.cfg.state_dim}")
        padded = torch.nn.functional.pad(state, (0, self.cfg.state_dim - state.shape[-1]))
        if self.cfg.state_encoding == "sincos_raw":
            angles = padded[..., None]
        else:
            freqs = 2.0 ** torch.arange(self.cfg.state_freqs, device=state.device, dtype=state.dtype)
            angles = padded[..., None] * freqs * math.pi
        enc = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(-2)
        return self.state_mlp(enc)[:, None]

    def forward(self, noisy_actions: torch.Tensor, t: torch.Tensor, state: torch.Tensor,
                context: torch.Tensor, extra: torch.Tensor | None = None,
                capture: int | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Velocity (B, chunk, action_dim) for noisy actions at flow time t (B,) in [0, 1].

        `extra` (B, k, hidden): more tokens appended to the sequence (FLARE's future tokens), seen by the
        self-attention blocks; with `capture`, also returns their hidden states after block `capture`."""
        buckets = (t.clamp(0, 1) * (self.cfg.timestep_buckets - 1)).round()
        temb = self.time_mlp(sinusoidal(buckets, self.cfg.hidden))
        x = torch.cat([self.encode_state(state), self.action_mlp(noisy_actions)], dim=1) + self.pos
        n = x.shape[1]
        if extra is not None:
            x = torch.cat([x, extra], dim=1)
        captured = None
        for i, block in enumerate(self.blocks):
            x = block(x, temb, context)
            if i == capture:
                captured = x[:, n:]
        velocity = self.out(self.norm_out(x[:, 1:n], temb))
        return velocity if capture is None else (velocity, captured)


def flow_action_loss(action_dit: ActionDiT, actions: torch.Tensor, state: torch.Tensor, context: torch.Tensor,
                     mask: torch.Tensor, sampler, repeats: int = 1, extra: torch.Tensor | None = None,
                     capture: int | None = None):
    """The action head's flow-matching loss, the same for DiT4DiT and every baseline: each sample drawn `repeats`
    times with fresh noise and timestep t ~ `sampler`, velocity target noise - actions, masked mean over the
    chunk. `actions` are normalised (B, chunk, dim); `context` the conditioning tokens (B, n, cross_dim).
    With `extra`/`capture` (ActionDiT.forward) it returns (loss, captured extra tokens, B * repeats rows)."""
    from bench.models.flow import interpolate, velocity_target

    actions, state = actions.repeat_interleave(repeats, 0), state.repeat_interleave(repeats, 0)
    context, mask = context.repeat_interleave(repeats, 0), mask.float().repeat_interleave(repeats, 0)
    if extra is not None:
        extra = extra.repeat_interleave(repeats, 0)
    t = sampler(actions.shape[0], device=actions.device)
    noise = torch.randn_like(actions)
    out = action_dit(interpolate(actions, noise, t), t, state, context, extra=extra, capture=capture)
    pred, captured = out if capture is not None else (out, None)
    err = (pred - velocity_target(actions, noise)).pow(2).mean(-1)
    loss = (err * mask).sum() / mask.sum().clamp(min=1)
    return loss if capture is None else (loss, captured)
