"""The video DiT: diffusers' CosmosTransformer3DModel plus DiT4DiT's feature extraction.

Inputs are latent videos (B, C, T, h, w) whose frame 0 is the conditioning
(current) frame, kept near clean (its timestep `cond_timestep`, ~1e-4) and
flagged by the condition-mask channel, and whose later frames are noised future
frames at their own timestep. Timesteps go to the model per frame, times
`timestep_scale` (1 for Cosmos-Predict2.5's own convention, t in [0, 1]; the
tiny config trains from scratch with 1000 so its sinusoidal embedding resolves t).

`features(...)` returns the hidden states after block `feature_layer`
(0-indexed; the official LIBERO config hooks block 17 of 28) and stops the
forward pass there: the blocks after it never run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class VideoDiTConfig:
    latent_channels: int = 192
    num_heads: int = 4
    head_dim: int = 32
    num_layers: int = 6
    mlp_ratio: float = 4.0
    text_dim: int = 384
    adaln_lora_dim: int = 64
    max_size: tuple[int, int, int] = (8, 64, 64)
    patch_size: tuple[int, int, int] = (1, 2, 2)
    rope_scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    concat_padding_mask: bool = False  # Cosmos-Predict2.5's extra all-zero padding-mask channel (see VideoDiT)
    learnable_pos_embed: bool = True
    crossattn_proj_in: int | None = None  # Cosmos-Predict2.5 projects 100352-d Reason1 embeddings to text_dim
    feature_layer: int = 3
    timestep_scale: float = 1000.0

    def __post_init__(self):
        # Checked here, not when the model is built: a sweep then fails before its first job, not at its last.
        if not 0 <= self.feature_layer < self.num_layers:
            raise ValueError(f"feature_layer {self.feature_layer} is outside the video DiT's blocks "
                             f"0..{self.num_layers - 1} (0-based)")

    @property
    def hidden(self) -> int:
        return self.num_heads * self.head_dim


class _StopForward(Exception):
    pass


class VideoDiT(nn.Module):
    def __init__(self, cfg: VideoDiTConfig, pretrained: str | None = None):
        super().__init__()
        from diffusers import CosmosTransformer3DModel

        self.cfg = cfg
        # diffusers resizes the padding mask with torchvision, which has no CPU build here. Our frames are never
        # padded, so the mask is all zeros: we append that channel ourselves (after the condition mask, where
        # diffusers puts it) and build the model without the flag. Same weights, same numbers.
        self.extra_channels = 1 + int(cfg.concat_padding_mask)
        if pretrained:
            self.transformer = CosmosTransformer3DModel.from_pretrained(
                pretrained, subfolder="transformer", local_files_only=True, concat_padding_mask=False,
                in_channels=cfg.latent_channels + self.extra_channels)
            got = self.transformer.config
            want = {"num_layers": cfg.num_layers, "num_attention_heads": cfg.num_heads,
                    "attention_head_dim": cfg.head_dim, "out_channels": cfg.latent_channels}
            wrong = {k: (got[k], v) for k, v in want.items() if got[k] != v}
            if wrong:
                raise ValueError(f"{pretrained}/transformer does not match the config: "
                                 + ", ".join(f"{k} is {g} there, {w} in the config" for k, (g, w) in wrong.items()))
        else:
            extra = {}
            if cfg.crossattn_proj_in:
                extra = dict(use_crossattn_projection=True, crossattn_proj_in_channels=cfg.crossattn_proj_in,
                             encoder_hidden_states_channels=cfg.text_dim)
            self.transformer = CosmosTransformer3DModel(
                in_channels=cfg.latent_channels + self.extra_channels, out_channels=cfg.latent_channels,
                num_attention_heads=cfg.num_heads, attention_head_dim=cfg.head_dim, num_layers=cfg.num_layers,
                mlp_ratio=cfg.mlp_ratio, text_embed_dim=cfg.text_dim, adaln_lora_dim=cfg.adaln_lora_dim,
                max_size=tuple(cfg.max_size), patch_size=tuple(cfg.patch_size), rope_scale=tuple(cfg.rope_scale),
                concat_padding_mask=False,
                extra_pos_embed_type="learnable" if cfg.learnable_pos_embed else None, **extra)
            pos = self.transformer.learnable_pos_embed
            if pos is not None:  # diffusers starts these at zero, then normalises their sum: infinite gradients
                for p in (pos.pos_emb_t, pos.pos_emb_h, pos.pos_emb_w):
                    nn.init.normal_(p, std=0.02)

    def _inputs(self, latents: torch.Tensor, t_future: torch.Tensor, cond_t: float):
        b, _, frames, h, w = latents.shape
        mask = torch.zeros(b, self.extra_channels, frames, h, w, dtype=latents.dtype, device=latents.device)
        mask[:, 0, 0] = 1.0  # channel 0: the condition mask; channel 1 (if any): the all-zero padding mask
        t = t_future.reshape(b, 1, 1, 1, 1).expand(b, 1, frames, 1, 1).clone()
        t[:, :, 0] = cond_t
        return dict(hidden_states=latents, timestep=(t * self.cfg.timestep_scale).to(latents.dtype),
                    condition_mask=mask, return_dict=False)

    def forward(self, latents: torch.Tensor, t_future: torch.Tensor, text: torch.Tensor,
                cond_t: float = 1e-4, capture_layer: int | None = None):
        """Full pass: the velocity for every latent frame (B, C, T, h, w) and, if asked, block features."""
        captured = {}
        handle = None
        if capture_layer is not None:
            handle = self.transformer.transformer_blocks[capture_layer].register_forward_hook(
                lambda m, i, o: captured.setdefault("h", o))
        try:
            out = self.transformer(encoder_hidden_states=text, **self._inputs(latents, t_future, cond_t))[0]
        finally:
            if handle is not None:
                handle.remove()
        return out, captured.get("h")

    def features(self, latents: torch.Tensor, t_future: torch.Tensor, text: torch.Tensor,
                 cond_t: float = 1e-4, layer: int | None = None) -> torch.Tensor:
        """Hidden states (B, tokens, hidden) after block `layer`; later blocks are skipped."""
        layer = self.cfg.feature_layer if layer is None else layer
        captured = {}

        def stop(module, inputs, output):
            captured["h"] = output
            raise _StopForward

        handle = self.transformer.transformer_blocks[layer].register_forward_hook(stop)
        try:
            self.transformer(encoder_hidden_states=text, **self._inputs(latents, t_future, cond_t))
        except _StopForward:
            pass
        finally:
            handle.remove()
        return captured["h"]
