"""Video autoencoders: pixels (B, 3, T, H, W) in [-1, 1] <-> latents (B, C, T', h, w).

`pixel`: space-to-depth (pixel unshuffle) by `factor`, with no parameters. It is
the tiny config's choice because it is exact to invert and costs nothing: on two
CPU cores every cycle should go to the two DiTs, a randomly initialised VAE would
carry no information, and no trained small video VAE can be loaded offline here.
With factor 8 it keeps Wan's 8x spatial compression of positions (so a
(1, 2, 2) patch still covers 16x16 pixels) but stores 3*8*8 = 192 channels and
does no temporal compression (every frame is its own latent frame).

`wan`: diffusers' AutoencoderKLWan (16 channels, 8x spatial, 4x temporal), the
full config's VAE, loaded from a local diffusers folder (never a hub).
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F


class VideoVAE(Protocol):
    latent_channels: int
    spatial_factor: int
    temporal_factor: int  # the first frame is encoded alone, then every `temporal_factor` frames make one

    def encode(self, video: torch.Tensor) -> torch.Tensor: ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor: ...


class PixelVAE:
    """Space-to-depth 'VAE': lossless, parameter-free."""

    temporal_factor = 1

    def __init__(self, factor: int = 8):
        self.spatial_factor = factor
        self.latent_channels = 3 * factor * factor

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = video.shape
        x = video.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        z = F.pixel_unshuffle(x, self.spatial_factor)
        return z.reshape(b, t, *z.shape[1:]).permute(0, 2, 1, 3, 4).contiguous()

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = latents.shape
        x = F.pixel_shuffle(latents.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w), self.spatial_factor)
        return x.reshape(b, t, *x.shape[1:]).permute(0, 2, 1, 3, 4).contiguous()


class WanVAE:
    """diffusers AutoencoderKLWan from a local folder, latents normalised as the Wan pipelines do."""

    spatial_factor = 8
    temporal_factor = 4
    latent_channels = 16

    def __init__(self, folder: str, device="cpu", dtype=torch.float32):
        from diffusers import AutoencoderKLWan

        self.model = AutoencoderKLWan.from_pretrained(folder, subfolder="vae", local_files_only=True,
                                                      torch_dtype=dtype).to(device).eval()
        cfg = self.model.config
        self.mean = torch.tensor(cfg.latents_mean, device=device, dtype=dtype).view(1, -1, 1, 1, 1)
        self.inv_std = 1.0 / torch.tensor(cfg.latents_std, device=device, dtype=dtype).view(1, -1, 1, 1, 1)

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        z = self.model.encode(video).latent_dist.mode()
        return (z - self.mean) * self.inv_std

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.model.decode(latents / self.inv_std + self.mean).sample


VAES = {"pixel": PixelVAE, "wan": WanVAE}


def latent_frames(kind: str, frames: int) -> int:
    """Latent frames for `frames` pixel frames (known without loading the VAE's weights)."""
    return 1 + (frames - 1) // VAES[kind].temporal_factor
