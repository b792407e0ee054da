"""Baselines through the model seam: parameter-matched to tiny DiT4DiT, able to fit, trained and served like it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.models.common import count_parameters

FIXTURE = "tests/fixtures/libero_object_t0_2demos_32.hdf5"


def test_groot_is_parameter_matched_to_tiny_dit4dit():
    from baselines.groot import GR00T, make_config
    from bench.models.dit4dit import DiT4DiT, make_config as dit4dit_config

    ours, theirs = count_parameters(GR00T(make_config("tiny"))), count_parameters(DiT4DiT(dit4dit_config("tiny")))
    assert abs(ours / theirs - 1) < 0.10, (ours, theirs)


def test_groot_overfits_one_small_batch():
    """On one fixed batch of two windows the action loss must fall below a fifth of where it started."""
    from baselines.groot import GR00T, make_config

    torch.manual_seed(0)
    cfg = make_config("tiny", image_size=32, patch=8, vit_layers=2, adapter_layers=1, width=64,
                      **{"action.cross_dim": 64, "action.num_layers": 2, "action.dropout": 0.0})
    model = GR00T(cfg)
    g = torch.Generator().manual_seed(0)
    batch = {"images": {c: torch.randint(0, 256, (2, 1, 32, 32, 3), generator=g, dtype=torch.uint8)
                        for c in cfg.cameras},
             "actions": torch.rand(2, 8, 7, generator=g) * 2 - 1, "state": torch.rand(2, 8, generator=g),
             "action_mask": torch.ones(2, 8, dtype=torch.bool)}
    text = torch.randn(2, cfg.text_max_tokens, cfg.text_dim, generator=g)
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


def test_groot_trains_saves_and_serves_through_the_seam(tmp_path):
    from bench.policies import make_policy
    from bench.policy import EpisodeInfo, ObservationBatch
    from bench.suites import TaskInfo
    from bench.training import TrainConfig, checkpoint_info, train
    from baselines.groot import make_config

    cfg = make_config("tiny", image_size=32, patch=8, vit_layers=1, adapter_layers=1)
    ckpt = train(cfg, [FIXTURE], tmp_path / "run", TrainConfig(steps=2, batch_size=2, warmup=1, log_every=1))
    assert checkpoint_info(ckpt)["model"] == "groot"
    policy = make_policy("groot", checkpoint=str(ckpt))
    prompt = next(iter(policy.text.table))  # an instruction the checkpoint was trained on
    task = TaskInfo(suite="libero_object", task_id=0, name="t", language=prompt, bddl_file="x.bddl")
    policy.reset(EpisodeInfo(key="e", task=task, init_id=0, seed=7))
    rng = np.random.default_rng(0)
    obs = ObservationBatch(["e"], {c: rng.integers(0, 256, (1, 224, 224, 3), dtype=np.uint8) for c in cfg.cameras},
                           rng.random((1, 8), dtype=np.float32), [prompt], np.array([0]))
    out = policy.act(obs)
    assert out.shape == (1, 8, 7) and np.isfinite(out).all()
    with pytest.raises(ValueError, match="is a groot checkpoint, not dit4dit"):
        make_policy("dit4dit", checkpoint=str(ckpt))
