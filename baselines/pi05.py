"""`pi05`: a pi0.5-style policy, trained from scratch at DiT4DiT's scale.

One transformer, two sets of weights. The prefix (image patches of both cameras,
instruction tokens, and the state discretised into 256-bin tokens) runs through
the prefix weights; the action expert (one token per action of the chunk) runs
through its own weights, with adaptive RMSNorm conditioned on the flow time. The
two share attention under a prefix-LM mask: the expert attends to the prefix and
to itself, the prefix only to itself, so the prefix never depends on the noisy
actions. Flow matching on the expert's output (velocity, Beta(1.5, 1) times, 10
Euler steps at inference).

`knowledge_insulation` (pi0.5 + KI): the prefix also learns discrete action
tokens (each normalised action value binned into 256, read out from `chunk` query
tokens in the prefix, cross-entropy), and the expert reads the prefix's keys and
values through a stop-gradient, so the flow loss does not train the prefix.

Compared with pi0.5 itself: no pretrained VLM (a small ViT-style patch embedding
and MiniLM text tokens, trained from scratch here) and no FAST tokeniser (plain
per-value bins), at about tiny DiT4DiT's parameter count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from bench.demos.dataset import WindowSpec
from bench.models.action_dit import sinusoidal
from bench.models.common import ModelConfig, Normalizer, frames_to_video, override, patchify
from bench.models.flow import TimestepSampler, euler_sample, interpolate, velocity_target
from bench.models.registry import ModelEntry, register_model


@dataclass
class Pi05Config(ModelConfig):
    name: str = "tiny"
    cameras: tuple[str, ...] = ("agentview", "eye_in_hand")
    image_size: int = 128
    pixel_path: str = "render_resize_uint8"
    patch: int = 16
    width: int = 128
    heads: int = 4
    layers: int = 8
    state_dim: int = 8
    state_bins: int = 256
    action_bins: int = 256  # knowledge insulation's discrete action tokens
    chunk: int = 8
    action_dim: int = 7
    text: str = "minilm"
    text_embeddings: str | None = None
    text_max_tokens: int = 24
    text_dim: int = 384
    action_timesteps: TimestepSampler = field(default_factory=lambda: TimestepSampler("beta"))
    action_repeats: int = 1
    euler_steps: int = 10
    knowledge_insulation: bool = False

    def validate(self) -> "Pi05Config":
        if self.image_size % self.patch:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch {self.patch}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by heads {self.heads}")
        return super().validate()


CONFIGS = {"tiny": lambda: Pi05Config().validate()}


def make_config(name: str = "tiny", **overrides) -> Pi05Config:
    return Pi05Config.from_dict(override(CONFIGS[name]().to_dict(), overrides))


class RMSNorm(nn.Module):
    """RMSNorm; adaptive (scale and shift from a conditioning vector) when `cond_dim` is given."""

    def __init__(self, dim: int, cond_dim: int | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.ada = nn.Linear(cond_dim, 2 * dim) if cond_dim else None
        if self.ada is not None:
            nn.init.zeros_(self.ada.weight)
            nn.init.zeros_(self.ada.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight
        if self.ada is None:
            return x
        scale, shift = self.ada(cond)[:, None].chunk(2, dim=-1)
        return x * (1 + scale) + shift


class Stream(nn.Module):
    """One set of a layer's weights (the prefix's or the expert's)."""

    def __init__(self, width: int, cond_dim: int | None = None):
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(width, cond_dim), RMSNorm(width, cond_dim)
        self.qkv, self.out = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(approximate="tanh"), nn.Linear(4 * width, width))


class Layer(nn.Module):
    def __init__(self, cfg: Pi05Config):
        super().__init__()
        self.heads = cfg.heads
        self.prefix, self.expert = Stream(cfg.width), Stream(cfg.width, cond_dim=cfg.width)

    def forward(self, p: torch.Tensor, e: torch.Tensor, temb: torch.Tensor, insulate: bool):
        b, n_p, w = p.shape
        n_e = e.shape[1]

        def heads(x):
            return x.view(b, -1, self.heads, w // self.heads).transpose(1, 2)

        qp, kp, vp = self.prefix.qkv(self.prefix.norm1(p)).chunk(3, dim=-1)
        qe, ke, ve = self.expert.qkv(self.expert.norm1(e, temb)).chunk(3, dim=-1)
        if insulate:  # the same prefix-LM attention, but the expert reads the prefix without training it
            ap = F.scaled_dot_product_attention(heads(qp), heads(kp), heads(vp))
            ae = F.scaled_dot_product_attention(heads(qe), heads(torch.cat([kp.detach(), ke], 1)),
                                                heads(torch.cat([vp.detach(), ve], 1)))
        else:  # one attention over both streams under the prefix-LM mask
            a = F.scaled_dot_product_attention(heads(torch.cat([qp, qe], 1)), heads(torch.cat([kp, ke], 1)),
                                               heads(torch.cat([vp, ve], 1)),
                                               attn_mask=attention_mask(n_p, n_e).to(p.device))
            ap, ae = a[:, :, :n_p], a[:, :, n_p:]
        p = p + self.prefix.out(ap.transpose(1, 2).reshape(b, n_p, w))
        e = e + self.expert.out(ae.transpose(1, 2).reshape(b, n_e, w))
        p = p + self.prefix.mlp(self.prefix.norm2(p))
        e = e + self.expert.mlp(self.expert.norm2(e, temb))
        return p, e

    # Inference: the prefix never attends to the expert, so its keys and values are computed once per chunk
    # and each Euler step runs the expert alone against them (pi0's KV cache).
    def prefix_only(self, p: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        b, n_p, w = p.shape
        qp, kp, vp = self.prefix.qkv(self.prefix.norm1(p)).chunk(3, dim=-1)
        h = lambda x: x.view(b, -1, self.heads, w // self.heads).transpose(1, 2)  # noqa: E731
        ap = F.scaled_dot_product_attention(h(qp), h(kp), h(vp))
        p = p + self.prefix.out(ap.transpose(1, 2).reshape(b, n_p, w))
        return p + self.prefix.mlp(self.prefix.norm2(p)), (kp, vp)

    def expert_only(self, e: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor], temb: torch.Tensor) -> torch.Tensor:
        b, n_e, w = e.shape
        kp, vp = kv
        qe, ke, ve = self.expert.qkv(self.expert.norm1(e, temb)).chunk(3, dim=-1)
        h = lambda x: x.view(b, -1, self.heads, w // self.heads).transpose(1, 2)  # noqa: E731
        ae = F.scaled_dot_product_attention(h(qe), h(torch.cat([kp, ke], 1)), h(torch.cat([vp, ve], 1)))
        e = e + self.expert.out(ae.transpose(1, 2).reshape(b, n_e, w))
        return e + self.expert.mlp(self.expert.norm2(e, temb))


@lru_cache(maxsize=8)
def attention_mask(n_prefix: int, n_expert: int) -> torch.Tensor:
    """The prefix-LM mask (True = may attend; rows are queries), built once per shape (do not modify it)."""
    n = n_prefix + n_expert
    mask = torch.zeros(n, n, dtype=torch.bool)
    mask[:n_prefix, :n_prefix] = True
    mask[n_prefix:, :] = True
    return mask


class Pi05(nn.Module):
    def __init__(self, cfg: Pi05Config):
        super().__init__()
        self.cfg = cfg.validate()
        w = cfg.width
        self.n_patches = len(cfg.cameras) * (cfg.image_size // cfg.patch) ** 2
        self.patchify = nn.Linear(3 * cfg.patch * cfg.patch, w)
        self.text_proj = nn.Linear(cfg.text_dim, w)
        self.state_embed = nn.Embedding(cfg.state_bins, w)
        n_prefix = self.n_patches + cfg.text_max_tokens + cfg.state_dim + (cfg.chunk if cfg.knowledge_insulation else 0)
        self.prefix_pos = nn.Parameter(torch.randn(1, n_prefix, w) * 0.02)
        if cfg.knowledge_insulation:
            self.action_queries = nn.Parameter(torch.randn(1, cfg.chunk, w) * 0.02)
            self.action_logits = nn.Linear(w, cfg.action_dim * cfg.action_bins)
        self.action_in = nn.Linear(cfg.action_dim, w)
        self.expert_pos = nn.Parameter(torch.randn(1, cfg.chunk, w) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        self.layers = nn.ModuleList(Layer(cfg) for _ in range(cfg.layers))
        self.norm_out = RMSNorm(w, cond_dim=w)
        self.action_out = nn.Linear(w, cfg.action_dim)
        self.normalizer = Normalizer(state_dim=cfg.state_dim, action_dim=cfg.action_dim)

    def prefix_tokens(self, images: dict[str, torch.Tensor], state: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        video = frames_to_video(images, cfg.cameras, cfg.image_size, cfg.pixel_path)[:, :, 0]
        b, patches = video.shape[0], patchify(video, cfg.patch)
        s = self.normalizer.normalize("state", state.float())  # in [-1.5, 1.5]; bins cover [-1, 1], clamped
        bins = ((s.clamp(-1, 1) + 1) / 2 * (cfg.state_bins - 1)).round().long()
        parts = [self.patchify(patches), self.text_proj(text), self.state_embed(bins)]
        if cfg.knowledge_insulation:
            parts.append(self.action_queries.expand(b, -1, -1))
        return torch.cat(parts, dim=1) + self.prefix_pos

    def run(self, prefix: torch.Tensor, noisy: torch.Tensor, t: torch.Tensor):
        """(prefix activations after the last layer, velocity) for noisy normalised actions at flow time t."""
        temb = self.time_mlp(sinusoidal(t * 1000, self.cfg.width))
        p, e = prefix, self.action_in(noisy) + self.expert_pos
        for layer in self.layers:
            p, e = layer(p, e, temb, self.cfg.knowledge_insulation)
        return p, self.action_out(self.norm_out(e, temb))

    def forward(self, batch: dict, text: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.loss(batch, text)

    def loss(self, batch: dict, text: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg, r = self.cfg, self.cfg.action_repeats
        prefix = self.prefix_tokens({c: v[:, :1] for c, v in batch["images"].items()}, batch["state"], text)
        actions = self.normalizer.normalize("actions", batch["actions"].float())
        mask = batch["action_mask"].float()
        prefix_r, actions_r, mask_r = (x.repeat_interleave(r, 0) for x in (prefix, actions, mask))
        t = cfg.action_timesteps(actions_r.shape[0], device=actions.device)
        noise = torch.randn_like(actions_r)
        p_out, velocity = self.run(prefix_r, interpolate(actions_r, noise, t), t)
        err = (velocity - velocity_target(actions_r, noise)).pow(2).mean(-1)
        flow = (err * mask_r).sum() / mask_r.sum().clamp(min=1)
        out = {"action": flow, "loss": flow}  # "action": every model's name for its action flow-matching loss
        if cfg.knowledge_insulation:
            logits = self.action_logits(p_out[:, -cfg.chunk:]).view(-1, cfg.chunk, cfg.action_dim, cfg.action_bins)
            target = ((actions_r.clamp(-1, 1) + 1) / 2 * (cfg.action_bins - 1)).round().long()
            ce = F.cross_entropy(logits.permute(0, 3, 1, 2), target, reduction="none").mean(-1)
            tokens = (ce * mask_r).sum() / mask_r.sum().clamp(min=1)
            out["action_tokens"] = tokens
            out["loss"] = flow + tokens
        return out

    @torch.no_grad()
    def predict(self, images: dict[str, torch.Tensor], state: torch.Tensor, text: torch.Tensor,
                generator: torch.Generator | None = None, steps: int | None = None) -> torch.Tensor:
        p = self.prefix_tokens({c: v[:, None] for c, v in images.items()}, state, text)
        cache = []
        for layer in self.layers:  # the prefix once per chunk
            p, kv = layer.prefix_only(p)
            cache.append(kv)
        start = torch.randn((p.shape[0], *self.chunk_shape), generator=generator, device=p.device)
        actions = euler_sample(lambda a, t: self.expert_velocity(cache, a, t), start, steps or self.cfg.euler_steps)
        return self.normalizer.unnormalize("actions", actions)

    def expert_velocity(self, cache: list, noisy: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The velocity from the expert alone, against the prefix's cached keys and values (the same function
        as `run`'s second output: the expert's attention is unmasked either way)."""
        temb = self.time_mlp(sinusoidal(t * 1000, self.cfg.width))
        e = self.action_in(noisy) + self.expert_pos
        for layer, kv in zip(self.layers, cache):
            e = layer.expert_only(e, kv, temb)
        return self.action_out(self.norm_out(e, temb))

    def param_groups(self) -> list[dict]:
        expert = [p for n, p in self.named_parameters() if ".expert." in n or n.startswith(
            ("action_in", "expert_pos", "time_mlp", "norm_out", "action_out"))]
        ids = {id(p) for p in expert}
        return [{"name": "expert", "params": expert},
                {"name": "prefix", "params": [p for p in self.parameters() if id(p) not in ids]}]

    def window_spec(self) -> WindowSpec:
        return WindowSpec(cameras=self.cfg.cameras, n_current=1, n_future=0, future_stride=1, chunk=self.cfg.chunk)

    @property
    def chunk_shape(self) -> tuple[int, int]:
        return self.cfg.chunk, self.cfg.action_dim


register_model(ModelEntry("pi05", Pi05Config, CONFIGS, Pi05,
                          "pi0.5-style: prefix (patches, text, 256-bin state) + action expert under a prefix-LM mask"))
