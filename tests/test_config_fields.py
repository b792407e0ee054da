"""Every DiT4DiT config field has an effect: perturbing it changes the model's parameters, its training
losses or gradients, its sampled actions, or its inputs (window, text encoder), or the perturbation is
refused by validation (a field tied to another). A field that does nothing fails here, unless it is
declared metadata below with the reason."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from bench.models.action_dit import STATE_ENCODINGS
from bench.models.dit4dit import (FEATURE_PASSES, FUTURE_SLOTS, GRADIENT_MODES, DiT4DiT, DiT4DiTConfig, build_on_meta, make_config)
from bench.models.flow import SAMPLERS
from bench.sim.frames import PIXEL_PATHS
from bench.models.text import TEXT_ENCODERS, make_text_encoder
from bench.models.vae import VAES
from bench.models.dit4dit import window_spec

METADATA = {
    "name": "a label for the config",
    "pretrained": "where the full config's weights load from (a local folder; none exists here)",
    "text_embeddings": "the file behind text='precomputed' (checked in test_text_encoder_is_the_configs)",
}
CHOICES = {"gradient": GRADIENT_MODES, "vae": tuple(VAES), "text": TEXT_ENCODERS, "pixel_path": tuple(PIXEL_PATHS),
           "future_slot": tuple(FUTURE_SLOTS), "feature_pass": tuple(FEATURE_PASSES), "state_encoding": STATE_ENCODINGS, "kind": tuple(SAMPLERS)}
# sampler parameters act only under their own distribution: perturb them there
# fields that act only under another field's setting: perturbed from a base with that setting
CONDITIONAL = {"action.state_freqs": {"action.state_encoding": "fourier"}}
SAMPLER_KIND = {"mean": "logit_normal", "std": "logit_normal", "high_frac": "logit_normal", "high_min": "logit_normal",
                "alpha": "beta", "beta": "beta", "s": "beta"}


def small(**overrides) -> dict:
    base = {"image_size": 32, "video.num_layers": 3, "video.feature_layer": 1, "video.head_dim": 16,
            "video.num_heads": 2, "video.adaln_lora_dim": 16, "video.max_size": (8, 16, 16),
            "action.num_layers": 2, "action.num_heads": 2, "action.head_dim": 16, "action.cross_dim": 32,
            "action.dropout": 0.0}
    base.update(overrides)
    return make_config("tiny", **base).to_dict()


def leaves(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        out += leaves(v, f"{prefix}{k}.") if isinstance(v, dict) else [prefix + k]
    return out


def get(d: dict, key: str):
    for part in key.split("."):
        d = d[part]
    return d


def put(d: dict, key: str, value) -> None:
    *path, last = key.split(".")
    for part in path:
        d = d[part]
    d[last] = value


def perturb(d: dict, key: str) -> dict:
    """A copy of config dict d with `key` changed to another valid-looking value (and what it is tied to)."""
    d = copy.deepcopy(d)
    last, value = key.split(".")[-1], get(d, key)
    prefix = key[: -len(last)]
    if last in SAMPLER_KIND and prefix.endswith("timesteps."):
        put(d, prefix + "kind", SAMPLER_KIND[last])
        put(d, prefix + "high_frac", 0.5 if last != "high_frac" else 0.0)
    if last in CHOICES:
        new = next(c for c in CHOICES[last] if c != value)
    elif isinstance(value, bool):
        new = not value
    elif last == "image_size":
        new = value * 2
    elif last == "vae_factor":
        new = value // 2
        put(d, "video.latent_channels", 3 * new * new)
    elif isinstance(value, int):
        new = value + 1
    elif isinstance(value, float):
        new = value * 0.5 if value else 0.1
    elif isinstance(value, (list, tuple)):
        new = list(value[:-1]) if last == "cameras" else [v * 2 for v in value]
    elif value is None and last == "crossattn_proj_in":
        new = 64
    else:
        raise AssertionError(f"no perturbation for {key}={value!r}")
    put(d, key, new)
    if key in ("video.num_heads", "video.head_dim"):  # the action DiT cross-attends to the video width
        put(d, "action.cross_dim", get(d, "video.num_heads") * get(d, "video.head_dim"))
    return d


def shapes(model) -> dict:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def inputs(cfg: DiT4DiTConfig) -> dict:
    try:
        enc = make_text_encoder(cfg.text, cfg.text_max_tokens, cfg.text_embeddings)
        encoder = (type(enc).__name__, enc.max_tokens)
    except ValueError as exc:
        encoder = str(exc)
    return {"window": window_spec(cfg), "encoder": encoder}


def behaviour(cfg: DiT4DiTConfig) -> dict:
    """Training losses and the video DiT's gradient norm on a fixed batch, and actions sampled from fixed
    observations at another size (so the pixel path resizes)."""
    torch.manual_seed(0)
    model = DiT4DiT(cfg)
    with torch.no_grad():  # as if trained: zero-initialised layers (AdaLN, output heads) would hide inputs
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    g = torch.Generator().manual_seed(0)
    b, s = 2, cfg.image_size
    batch = {"images": {c: torch.randint(0, 256, (b, 1 + cfg.n_future, s, s, 3), generator=g, dtype=torch.uint8)
                        for c in cfg.cameras},
             "actions": torch.rand(b, cfg.action.chunk, cfg.action.action_dim, generator=g) * 2 - 1,
             "state": torch.rand(b, 8, generator=g),
             "action_mask": torch.ones(b, cfg.action.chunk, dtype=torch.bool)}
    text = torch.randn(b, cfg.text_max_tokens, cfg.video.text_dim, generator=g)
    model.normalizer.set_stats({n: {"q01": [-0.5] * dim, "q99": [0.7] * dim}
                                for n, dim in (("state", 8), ("actions", cfg.action.action_dim))})
    model.train()
    torch.manual_seed(1)
    losses = model.loss(batch, text)
    losses["loss"].backward()
    grad = sum(float(p.grad.norm()) for p in model.video_dit.parameters() if p.grad is not None)
    model.eval()
    images = {c: torch.randint(0, 256, (b, s + s // 2, s + s // 2, 3), generator=g, dtype=torch.uint8)
              for c in cfg.cameras}
    actions = model.predict(images, batch["state"], text, generator=torch.Generator().manual_seed(2))
    return {"losses": {k: float(v.detach()) for k, v in losses.items()}, "video_grad": grad,
            "actions": actions.numpy()}


def differs(a: dict, b: dict) -> bool:
    if a["losses"] != b["losses"] or a["video_grad"] != b["video_grad"]:
        return True
    return a["actions"].shape != b["actions"].shape or not np.array_equal(a["actions"], b["actions"])


BASE = small()
FIELDS = [k for k in leaves(BASE) if k.split(".")[-1] not in METADATA]


@pytest.fixture(scope="module")
def base_behaviour():
    torch.set_num_threads(1)
    return behaviour(DiT4DiTConfig.from_dict(BASE))


@pytest.mark.parametrize("key", FIELDS)
def test_every_field_has_an_effect(key, base_behaviour):
    torch.set_num_threads(1)
    base = small(**CONDITIONAL[key]) if key in CONDITIONAL else BASE
    base_cfg = DiT4DiTConfig.from_dict(base)
    try:
        cfg = DiT4DiTConfig.from_dict(perturb(base, key))
        model = DiT4DiT(cfg) if cfg.vae == "pixel" else None
    except ValueError:
        return  # tied to another field, and validation says so
    if model is None:  # the Wan VAE needs a pretrained folder: a model without one has no VAE
        assert DiT4DiT(base_cfg).vae is not None and DiT4DiT(cfg).vae is None
        return
    if shapes(model) != shapes(DiT4DiT(base_cfg)) or inputs(cfg) != inputs(base_cfg):
        return
    before = behaviour(base_cfg) if key in CONDITIONAL else base_behaviour
    assert differs(behaviour(cfg), before), f"{key}: perturbing it changed nothing"


def test_structural_fields_shape_the_full_config_too():
    """The full config (2 B parameters, built on the meta device): every field that shapes the tiny model's
    parameters shapes the full one's as well."""
    for key in ("video.num_layers", "video.mlp_ratio", "video.adaln_lora_dim", "action.num_layers", "action.ff_mult",
                "action.state_freqs", "action.state_dim", "action.chunk", "video.text_dim"):
        full = make_config("full", **CONDITIONAL.get(key, {})).to_dict()
        base = shapes(build_on_meta(DiT4DiTConfig.from_dict(full)))
        assert shapes(build_on_meta(DiT4DiTConfig.from_dict(perturb(full, key)))) != base, key


def test_text_encoder_is_the_configs(tmp_path):
    from safetensors.torch import save_file

    cfg = DiT4DiTConfig.from_dict(small(text="precomputed"))
    with pytest.raises(ValueError, match="needs text_embeddings"):
        make_text_encoder(cfg.text, cfg.text_max_tokens, cfg.text_embeddings)
    save_file({"pick up the bowl": torch.ones(5, 384)}, str(tmp_path / "emb.safetensors"))
    enc = make_text_encoder("precomputed", 24, str(tmp_path / "emb.safetensors"))
    assert enc("pick up the bowl").shape == (5, 384)
    assert type(make_text_encoder("minilm", 24)).__name__ == "MiniLMText"
