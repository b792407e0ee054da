"""Baselines through the model seam: parameter-matched to tiny DiT4DiT, able to fit, trained and served like it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.models.common import count_parameters

FIXTURE = "tests/fixtures/libero_object_t0_2demos_32.hdf5"


@pytest.mark.parametrize("name", ["groot", "flare"])
def test_baselines_are_parameter_matched_to_tiny_dit4dit(name):
    from bench.models.registry import load_models, model_config

    entry = load_models().get(name)
    ours = count_parameters(entry.build(model_config(name, "tiny")), trainable=True)
    theirs = count_parameters(load_models().get("dit4dit").build(model_config("dit4dit", "tiny")), trainable=True)
    assert abs(ours / theirs - 1) < 0.10, (ours, theirs)


def small_batch(cfg, frames=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ({"images": {c: torch.randint(0, 256, (2, frames, 32, 32, 3), generator=g, dtype=torch.uint8)
                        for c in cfg.cameras},
             "actions": torch.rand(2, 8, 7, generator=g) * 2 - 1, "state": torch.rand(2, 8, generator=g),
             "action_mask": torch.ones(2, 8, dtype=torch.bool)},
            torch.randn(2, cfg.text_max_tokens, cfg.text_dim, generator=g))


SMALL = dict(image_size=32, patch=8, vit_layers=2, adapter_layers=1, width=64,
             **{"action.cross_dim": 64, "action.num_layers": 2, "action.dropout": 0.0})


def test_flare_alignment_never_reaches_the_target_encoder():
    """The target encoder gets no gradient from any loss; it moves only by the EMA after a step."""
    from baselines.flare import FLARE, make_config

    torch.manual_seed(0)
    model = FLARE(make_config("tiny", **SMALL))
    batch, text = small_batch(model.cfg, frames=2)
    losses = model.loss(batch, text)
    assert float(losses["align"]) > 0
    losses["loss"].backward()
    assert all(p.grad is None for p in model.target_encoder.parameters())
    assert all(p.grad is not None for p in model.align_mlp.parameters()) and model.future.grad is not None
    before = [p.clone() for p in model.target_encoder.parameters()]
    with torch.no_grad():
        for p in model.image_encoder.parameters():
            p.add_(0.1)
    model.after_step()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.target_encoder.parameters()))


def test_groot_overfits_one_small_batch():
    """On one fixed batch of two windows the action loss must fall below a fifth of where it started."""
    from baselines.groot import GR00T, make_config

    torch.manual_seed(0)
    model = GR00T(make_config("tiny", **SMALL))
    batch, text = small_batch(model.cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(200):
        loss = model.loss(batch, text)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    start, end = np.mean(losses[:5]), np.mean(losses[-20:])
    assert end < start / 5, (start, end)


@pytest.mark.parametrize("name", ["groot", "flare"])
def test_baselines_train_save_and_serve_through_the_seam(tmp_path, name):
    from bench.models.registry import model_config
    from bench.policies import make_policy
    from bench.policy import EpisodeInfo, ObservationBatch
    from bench.suites import TaskInfo
    from bench.training import TrainConfig, checkpoint_info, train

    cfg = model_config(name, "tiny", image_size=32, patch=8, vit_layers=1, adapter_layers=1)
    ckpt = train(cfg, [FIXTURE], tmp_path / "run", TrainConfig(steps=2, batch_size=2, warmup=1, log_every=1))
    assert checkpoint_info(ckpt)["model"] == name
    policy = make_policy(name, checkpoint=str(ckpt))
    prompt = next(iter(policy.text.table))  # an instruction the checkpoint was trained on
    task = TaskInfo(suite="libero_object", task_id=0, name="t", language=prompt, bddl_file="x.bddl")
    policy.reset(EpisodeInfo(key="e", task=task, init_id=0, seed=7))
    rng = np.random.default_rng(0)
    obs = ObservationBatch(["e"], {c: rng.integers(0, 256, (1, 224, 224, 3), dtype=np.uint8) for c in cfg.cameras},
                           rng.random((1, 8), dtype=np.float32), [prompt], np.array([0]))
    out = policy.act(obs)
    assert out.shape == (1, 8, 7) and np.isfinite(out).all()
    with pytest.raises(ValueError, match=f"is a {name} checkpoint, not dit4dit"):
        make_policy("dit4dit", checkpoint=str(ckpt))
