"""DiT4DiT: a video DiT whose intermediate denoising features condition an action DiT.

Training (`DiT4DiT.loss`) runs two flow-matching losses with decoupled timesteps:
  video   tau_v ~ `video_timesteps` on the future latent frames (frame 0, the
          current observation, stays at `cond_timestep`), velocity target z - x0;
  action  tau_a ~ `action_timesteps` (Beta(1.5, 1)/0.999) on the normalised
          action chunk, conditioned on the video DiT's block-`feature_layer`
          hidden states at the fixed `feature_timestep` tau_f.
total = action + video_loss_weight * video.

`gradient` chooses how the two DiTs interact:
  detached      features are detached: the action loss does not train the video DiT (the released code)
  joint         the action loss back-propagates into the video DiT (the paper's description)
  frozen_video  the video DiT is frozen and its loss is not computed

The feature pass (`future_slot`): as the official code, the future slot holds
pure Gaussian noise, in training and at inference alike (the future is unknown at
inference, so training must not see it there either); the video loss keeps its
own noised real future. `noised` (the real future noised to tau_f in training,
the current frame noised to it at inference) is kept for older checkpoints and
as an ablation arm. The action loss is drawn `action_repeats` times per sample
(fresh noise and timestep each; the official repeated_diffusion_steps).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from bench.demos.dataset import WindowSpec
from bench.models.action_dit import ActionDiT, ActionDiTConfig, flow_action_loss
from bench.models.common import (ModelConfig, Normalizer, check_choice, config_from_dict, count_parameters,  # noqa: F401
                                  frames_to_video, override, precision_context)
from bench.models.registry import ModelEntry, register_model
from bench.models.flow import TimestepSampler, euler_sample, interpolate, velocity_target
from bench.models.vae import VAES, latent_frames
from bench.models.video_dit import VideoDiT, VideoDiTConfig

GRADIENT_MODES = ("detached", "joint", "frozen_video")
FEATURE_PASSES = {
    "label": "the future slot as `future_slot` says, the video DiT told time feature_timestep (the official pass: "
             "at 0.995 the slot's pure noise is where generation starts); k = feature_denoise_steps > 1 first "
             "denoises it k - 1 Euler steps from feature_timestep and reads the features at feature_timestep / k",
    "trajectory": "features on the generation trajectory: the future slot starts as pure noise at time 1 and is "
                  "denoised by the model's own k = feature_denoise_steps Euler steps down to feature_timestep, "
                  "where the features are read (a future that far along its generation)",
}
FUTURE_SLOTS = {
    "pure_noise": "Gaussian noise in training and inference alike (the official code)",
    "noised": "training: the real future noised to feature_timestep; inference: the current frame noised to it "
              "(checkpoints from before this setting)",
}


@dataclass
class DiT4DiTConfig(ModelConfig):
    name: str = "tiny"
    cameras: tuple[str, ...] = ("agentview", "eye_in_hand")  # side by side in one frame, as the official LIBERO setup
    image_size: int = 128
    n_future: int = 1  # future pixel frames after the current one
    future_stride: int = 8  # env steps between frames
    vae: str = "pixel"
    vae_factor: int = 8
    text: str = "minilm"  # the instruction encoder (bench.models.text.TEXT_ENCODERS)
    text_embeddings: str | None = None  # for text="precomputed": a safetensors file, instruction -> embedding
    text_max_tokens: int = 24
    video: VideoDiTConfig = field(default_factory=VideoDiTConfig)
    action: ActionDiTConfig = field(default_factory=ActionDiTConfig)
    video_timesteps: TimestepSampler = field(default_factory=lambda: TimestepSampler("uniform"))
    action_timesteps: TimestepSampler = field(default_factory=lambda: TimestepSampler("beta"))
    cond_timestep: float = 1e-4
    feature_timestep: float = 0.995
    # video Euler steps from feature_timestep towards a clean future before the features are taken (the official
    # capture_step_index + 1): 1 reads them from the first pass; k > 1 first takes k - 1 no-grad steps
    # (feature_pass "trajectory": the steps from pure noise down to feature_timestep)
    feature_denoise_steps: int = 1
    feature_pass: str = "label"  # how feature_timestep is reached (FEATURE_PASSES)

    ADDED_LATER: ClassVar[dict[str, Any]] = {"feature_pass": "label"}
    video_loss_weight: float = 1.0
    action_loss_weight: float = 1.0  # 0: the video DiT alone learns video prediction (video pretraining)
    gradient: str = "detached"
    future_slot: str = "pure_noise"  # what the feature pass sees after the current frame (FUTURE_SLOTS)
    action_repeats: int = 4  # action-loss draws per sample, each with fresh noise and timestep (the official
    #                          repeated_diffusion_steps); the video pass runs once
    euler_steps: int = 4
    pretrained: str | None = None  # local diffusers Cosmos-Predict2.5 folder (full config)
    pixel_path: str = "render_resize_uint8"  # how observations become model frames (bench.sim.frames.PIXEL_PATHS)

    def validate(self) -> "DiT4DiTConfig":
        super().validate()  # text encoder, pixel path
        check_choice("gradient mode", self.gradient, GRADIENT_MODES)
        check_choice("vae", self.vae, VAES)
        check_choice("future slot", self.future_slot, FUTURE_SLOTS)
        check_choice("feature pass", self.feature_pass, FEATURE_PASSES)
        if self.feature_pass == "trajectory" and self.future_slot != "pure_noise":
            raise ValueError("feature_pass=trajectory starts generation from pure noise: it needs "
                             f"future_slot=pure_noise, not {self.future_slot!r}")
        if self.feature_denoise_steps < 1:
            raise ValueError(f"feature_denoise_steps={self.feature_denoise_steps} must be at least 1")
        if self.action_repeats < 1:
            raise ValueError(f"action_repeats={self.action_repeats} must be at least 1")
        if not 0.0 <= self.feature_timestep <= 1.0:
            raise ValueError(f"feature_timestep {self.feature_timestep} is outside [0, 1]")
        return self

    @classmethod
    def from_dict(cls, d: dict) -> "DiT4DiTConfig":
        # checkpoints saved before these were settings: float resizing, the noised future slot, one action draw
        # and the Fourier state encoding
        legacy = {"pixel_path": "float_interpolate", "future_slot": "noised", "action_repeats": 1}
        action = {"state_encoding": "fourier", **d.get("action", {})}
        return config_from_dict(cls, {**legacy, **d, "action": action}).validate()


def tiny_config() -> DiT4DiTConfig:
    """Under 5M parameters: trains on two CPU cores; fits a 20 MB checkpoint in fp32.

    Joint gradients: trained from scratch, the video DiT's features are only useful for actions if the
    action loss shapes them (`bench ablate --gradient` measures joint against detached).
    """
    return DiT4DiTConfig(gradient="joint").validate()


def full_config(pretrained: str | None = None) -> DiT4DiTConfig:
    """Cosmos-Predict2.5-2B's transformer (28 x 2048) and GR00T's DiT-B action head (16 x 768)."""
    video = VideoDiTConfig(latent_channels=16, num_heads=16, head_dim=128, num_layers=28, text_dim=1024,
                           adaln_lora_dim=256, max_size=(128, 240, 240), rope_scale=(1.0, 3.0, 3.0),
                           concat_padding_mask=True, learnable_pos_embed=False, crossattn_proj_in=100352,
                           feature_layer=17, timestep_scale=1.0)
    action = ActionDiTConfig(num_layers=16, num_heads=12, head_dim=64, cross_dim=2048, chunk=8, action_dim=7,
                             state_dim=16, dropout=0.2)
    return DiT4DiTConfig(name="full", image_size=224, n_future=4, future_stride=2, vae="wan", text="precomputed",
                         text_max_tokens=512, video=video, action=action,
                         # the official LIBERO launch script's uniform video timesteps (its yaml's logit-normal with
                         # 5% above 0.98 is TimestepSampler("logit_normal", high_frac=0.05, high_min=0.98))
                         video_timesteps=TimestepSampler("uniform"), pretrained=pretrained).validate()


CONFIGS = {"tiny": tiny_config, "full": full_config}


def make_config(name: str, **overrides: Any) -> DiT4DiTConfig:
    """A named DiT4DiT config with dotted-key overrides ("video.feature_layer": 2)."""
    if name not in CONFIGS:
        raise ValueError(f"unknown DiT4DiT config {name!r}; choose one of {', '.join(CONFIGS)}")
    return DiT4DiTConfig.from_dict(override(CONFIGS[name]().to_dict(), overrides))


class DiT4DiT(nn.Module):
    def __init__(self, cfg: DiT4DiTConfig):
        super().__init__()
        self.cfg = cfg.validate()
        if cfg.action.cross_dim != cfg.video.hidden:
            raise ValueError(f"action.cross_dim {cfg.action.cross_dim} must equal the video DiT width {cfg.video.hidden}")
        self.video_dit = VideoDiT(cfg.video, pretrained=cfg.pretrained)
        self.action_dit = ActionDiT(cfg.action)
        self.normalizer = Normalizer(action_dim=cfg.action.action_dim)
        # The pixel VAE has no weights; the Wan VAE is frozen, loaded from the local folder, and not saved with us.
        self.vae = VAES["pixel"](cfg.vae_factor) if cfg.vae == "pixel" else (
            VAES["wan"](cfg.pretrained) if cfg.pretrained else None)
        if cfg.gradient == "frozen_video":
            self.video_dit.requires_grad_(False)

    # ------------------------------------------------------------------ pieces
    @property
    def latent_frames(self) -> int:
        """Latent frames of one window: the current frame then the future ones."""
        return latent_frames(self.cfg.vae, 1 + self.cfg.n_future)

    def latents(self, images: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.vae is None:
            raise RuntimeError("no VAE attached: set model.vae (e.g. bench.models.vae.WanVAE(folder)) first")
        return self.vae.encode(frames_to_video(images, self.cfg.cameras, self.cfg.image_size, self.cfg.pixel_path))

    def features(self, x0: torch.Tensor, text: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Block-L features at timestep tau_f; frame 0 of x0 is the condition, the future slot holds what
        `future_slot` says (pure noise, or x0's future frames noised to tau_f)."""
        cfg = self.cfg
        noise = torch.randn_like(x0) if noise is None else noise
        x = self.feature_input(x0, noise, cfg.future_slot)
        k, t = cfg.feature_denoise_steps, cfg.feature_timestep
        if cfg.feature_pass == "trajectory":  # k Euler steps t_i = 1 - i (1 - tau_f) / k from noise down to tau_f
            x = self._denoise_future(x, text, [1 - i * (1 - t) / k for i in range(k + 1)] if t < 1 else [1.0])
        elif k > 1:  # k - 1 Euler steps along t_i = tau_f (1 - i / k), the features then read at tau_f / k
            x = self._denoise_future(x, text, [t * (1 - i / k) for i in range(k)])
        tf = torch.full((x0.shape[0],), self.feature_read_time(), device=x0.device, dtype=x0.dtype)
        return self.video_dit.features(x, tf, text, cond_t=cfg.cond_timestep)

    def feature_read_time(self) -> float:
        """The denoising time at which the features are read: feature_timestep, or feature_timestep / k after the
        label pass's k - 1 steps."""
        cfg = self.cfg
        k = 1 if cfg.feature_pass == "trajectory" else cfg.feature_denoise_steps
        return cfg.feature_timestep / k

    def features_given_future(self, x0: torch.Tensor, text: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The features read, at the read time, with the future slot holding x0's future frames noised to that
        time and no denoising steps: what the feature pass would read if the model's own future were x0's."""
        t = torch.full((x0.shape[0],), self.feature_read_time(), device=x0.device, dtype=x0.dtype)
        return self.video_dit.features(self._noised(x0, noise, t), t, text, cond_t=self.cfg.cond_timestep)

    @torch.no_grad()
    def _denoise_future(self, x: torch.Tensor, text: torch.Tensor, times: list[float]) -> torch.Tensor:
        """Euler steps of the future slot through `times` (descending) by the video DiT's own velocity; the
        condition frame is kept."""
        for now, nxt in zip(times, times[1:]):
            v, _ = self.video_dit(x, torch.full((x.shape[0],), now, device=x.device, dtype=x.dtype), text,
                                  cond_t=self.cfg.cond_timestep)
            x = torch.cat([x[:, :, :1], x[:, :, 1:] + (nxt - now) * v[:, :, 1:]], dim=2)
        return x

    def feature_input(self, x0: torch.Tensor, noise: torch.Tensor, future_slot: str) -> torch.Tensor:
        """The feature pass's latents: frame 0 of x0 at cond_timestep, the future slot pure noise or x0's future
        frames noised to feature_timestep (FUTURE_SLOTS)."""
        tf = torch.full((x0.shape[0],), self.cfg.feature_timestep, device=x0.device, dtype=x0.dtype)
        x = self._noised(x0, noise, tf)
        return torch.cat([x[:, :, :1], noise[:, :, 1:]], dim=2) if future_slot == "pure_noise" else x

    def _noised(self, x0: torch.Tensor, noise: torch.Tensor, t_future: torch.Tensor) -> torch.Tensor:
        cond = interpolate(x0[:, :, :1], noise[:, :, :1], torch.full_like(t_future, self.cfg.cond_timestep))
        future = interpolate(x0[:, :, 1:], noise[:, :, 1:], t_future)
        return torch.cat([cond, future], dim=2)

    def param_groups(self) -> list[dict]:
        """The action DiT and the video DiT learn at their own rates (`--group-lr video=...`)."""
        groups = [{"name": "action", "params": [p for p in self.action_dit.parameters() if p.requires_grad]}]
        video = [p for p in self.video_dit.parameters() if p.requires_grad]
        return groups + ([{"name": "video", "params": video}] if video else [])

    def window_spec(self) -> WindowSpec:
        return window_spec(self.cfg)

    @property
    def chunk_shape(self) -> tuple[int, int]:
        return self.cfg.action.chunk, self.cfg.action.action_dim

    def action_state(self, state: torch.Tensor) -> torch.Tensor:
        """The state as the action DiT's state token takes it: raw for sincos_raw, normalised otherwise."""
        state = state.float()
        return state if self.cfg.action.state_encoding == "sincos_raw" else self.normalizer.normalize("state", state)

    # ------------------------------------------------------------------ training
    def forward(self, batch: dict, text: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.loss(batch, text)

    def loss(self, batch: dict, text: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        # "latents": frames already encoded by a frozen VAE (how the full config trains without its VAE here)
        x0 = batch["latents"] if "latents" in batch else self.latents(batch["images"])
        b = x0.shape[0]
        out = {}
        if cfg.gradient == "frozen_video":
            video_loss = x0.new_zeros(())
        else:
            tv = cfg.video_timesteps(b, device=x0.device)
            noise = torch.randn_like(x0)
            pred, _ = self.video_dit(self._noised(x0, noise, tv), tv, text, cond_t=cfg.cond_timestep)
            video_loss = F.mse_loss(pred[:, :, 1:], velocity_target(x0, noise)[:, :, 1:])
        if cfg.gradient == "joint":
            feats = self.features(x0, text)
        else:
            with torch.no_grad():
                feats = self.features(x0, text)
        # each sample's action loss drawn action_repeats times; the features are computed once
        action_loss = flow_action_loss(self.action_dit, self.normalizer.normalize("actions", batch["actions"].float()),
                                       self.action_state(batch["state"]), feats, batch["action_mask"],
                                       cfg.action_timesteps, cfg.action_repeats)
        out["action"] = action_loss
        out["video"] = video_loss
        out["loss"] = cfg.action_loss_weight * action_loss + cfg.video_loss_weight * video_loss
        return out

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict(self, images: dict[str, torch.Tensor], state: torch.Tensor, text: torch.Tensor,
                generator: torch.Generator | list[torch.Generator] | None = None,
                steps: int | None = None, feature_generator: torch.Generator | None = None) -> torch.Tensor:
        """Action chunks (B, chunk, action_dim) in env units from current frames {cam: (B, H, W, 3) uint8}.

        `generator` may be a list with one generator per row: each row's noise then depends only on its
        own generator, so a row's result does not depend on which other rows share its batch.
        `feature_generator` (one row): draws the feature pass's video noise instead of `generator`, so a caller
        can hold it fixed across chunks (the features then change only with the observation).
        """
        x_now = self.latents({c: v[:, None] for c, v in images.items()})  # (B, C, 1, h, w)
        return self.predict_from_latents(x_now, state, text, generator, steps, feature_generator)

    @torch.no_grad()
    def predict_from_latents(self, x_now: torch.Tensor, state: torch.Tensor, text: torch.Tensor,
                             generator: torch.Generator | list[torch.Generator] | None = None,
                             steps: int | None = None, feature_generator: torch.Generator | None = None
                             ) -> torch.Tensor:
        cfg = self.cfg
        x0 = x_now.expand(-1, -1, self.latent_frames, -1, -1)  # the present stands in for the unknown future
        b = x0.shape[0]
        per_row = isinstance(generator, list)
        noise, start = [], []
        for g in (generator if per_row else [generator]):  # per draw: the video noise, then the action noise
            n = 1 if per_row else b
            noise.append(torch.randn((n, *x0.shape[1:]), generator=g, device=x0.device, dtype=x0.dtype))
            if feature_generator is not None:  # g's video draw is still made: its action noise stays the default's
                noise[-1] = torch.randn((n, *x0.shape[1:]), generator=feature_generator, device=x0.device,
                                        dtype=x0.dtype)
            start.append(torch.randn((n, cfg.action.chunk, cfg.action.action_dim), generator=g, device=x0.device,
                                     dtype=x0.dtype))
        feats = self.features(x0, text, noise=torch.cat(noise))
        s = self.action_state(state)
        actions = euler_sample(lambda a, t: self.action_dit(a, t, s, feats), torch.cat(start),
                               steps or cfg.euler_steps)
        return self.normalizer.unnormalize("actions", actions)


def window_spec(cfg: DiT4DiTConfig) -> WindowSpec:
    """Training windows: the current frame and `n_future` frames `future_stride` steps apart, a chunk of actions."""
    return WindowSpec(cameras=cfg.cameras, n_current=1, n_future=cfg.n_future, future_stride=cfg.future_stride,
                      chunk=cfg.action.chunk)


register_model(ModelEntry("dit4dit", DiT4DiTConfig, CONFIGS, DiT4DiT,
                          "DiT4DiT: video DiT features condition a flow-matching action DiT"))


def build_on_meta(cfg: DiT4DiTConfig) -> DiT4DiT:
    """Build without allocating weights (parameter counts of the full config on any machine)."""
    cfg = copy.deepcopy(cfg)
    cfg.pretrained = None
    with torch.device("meta"):
        return DiT4DiT(cfg)
