"""Baselines through the model seam: parameter-matched to tiny DiT4DiT, able to fit, trained and served like it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.models.common import count_parameters

FIXTURE = "tests/fixtures/libero_object_t0_2demos_32.hdf5"


@pytest.fixture(autouse=True)
def _one_thread():
    """Small models: one thread is faster than two fighting over two cores (and over sim workers)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", ["groot", "flare", "pi05"])
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
    assert float(losses["align"].detach()) > 0
    losses["loss"].backward()
    assert all(p.grad is None for p in model.target_encoder.parameters())
    assert all(p.grad is not None for p in model.align_mlp.parameters()) and model.future.grad is not None
    before = [p.clone() for p in model.target_encoder.parameters()]
    with torch.no_grad():
        for p in model.image_encoder.parameters():
            p.add_(0.1)
    model.after_step()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.target_encoder.parameters()))


@pytest.mark.parametrize("name", ["groot", "flare", "pi05"])
def test_each_baseline_overfits_one_small_batch(name):
    """On one fixed batch of two windows the action loss must fall below a fifth of where it started."""
    from bench.models.registry import load_models, model_config

    torch.manual_seed(0)
    small = ({"image_size": 32, "patch": 8, "layers": 2, "width": 32, "heads": 2} if name == "pi05" else
             dict(image_size=32, patch=8, vit_layers=1, adapter_layers=1, width=32, heads=2,
                  **{"action.cross_dim": 32, "action.num_layers": 2, "action.num_heads": 2, "action.head_dim": 16,
                     "action.dropout": 0.0}))
    model = load_models().get(name).build(model_config(name, "tiny", **small))
    batch, text = small_batch(model.cfg, frames=2 if name == "flare" else 1)
    key = "action"
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(200):
        out = model.loss(batch, text)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out[key].detach()))
    start, end = np.mean(losses[:5]), np.mean(losses[-20:])
    assert end < start / 5, (start, end)


@pytest.mark.parametrize("name", ["groot", "flare", "pi05"])
def test_baselines_train_save_and_serve_through_the_seam(tmp_path, name):
    from bench.models.registry import model_config
    from bench.policies import make_policy
    from bench.policies.contract import EpisodeInfo, ObservationBatch
    from bench.sim.suites import TaskInfo
    from bench.train.loop import TrainConfig, checkpoint_info, train

    small = {"layers": 1} if name == "pi05" else {"vit_layers": 1, "adapter_layers": 1}
    cfg = model_config(name, "tiny", image_size=32, patch=8, **small)
    ckpt = train(cfg, [FIXTURE], tmp_path / "run", TrainConfig(steps=2, batch_size=2, warmup=1, log_every=1))
    assert checkpoint_info(ckpt)["model"] == name
    policy = make_policy(name, checkpoint=str(ckpt))
    prompt = next(iter(policy.text.table))  # an instruction the checkpoint was trained on
    task = TaskInfo(suite="libero_object", task_id=0, name="t", language=prompt, env_id="x.bddl")
    policy.reset(EpisodeInfo(key="e", task=task, init_id=0, seed=7))
    rng = np.random.default_rng(0)
    obs = ObservationBatch(["e"], {c: rng.integers(0, 256, (1, 224, 224, 3), dtype=np.uint8) for c in cfg.cameras},
                           rng.random((1, 8), dtype=np.float32), [prompt], np.array([0]))
    out = policy.act(obs)
    assert out.shape == (1, 8, 7) and np.isfinite(out).all()
    with pytest.raises(ValueError, match=f"is a {name} checkpoint, not dit4dit"):
        make_policy("dit4dit", checkpoint=str(ckpt))
    # an export keeps what inference runs and leaves out what only training needs (FLARE's EMA target)
    from safetensors import safe_open

    from bench.train.loop import export_checkpoint

    shipped = export_checkpoint(ckpt, tmp_path / "shipped", dtype="fp32")
    keys = list(safe_open(str(shipped / "model.safetensors"), "pt").keys())
    assert any(k.startswith("target_encoder.") for k in keys) is False
    assert checkpoint_info(shipped)["dropped_modules"] == (["target_encoder"] if name == "flare" else [])
    again = make_policy(name, checkpoint=str(shipped))
    again.reset(EpisodeInfo(key="e", task=task, init_id=0, seed=7))
    assert np.array_equal(again.act(obs), out)
    if name == "flare":
        import torch

        for a, b in zip(again.model.target_encoder.parameters(), again.model.image_encoder.parameters()):
            assert torch.equal(a, b)


def test_pi05_attention_is_prefix_lm():
    """On the mask, and on outputs: the prefix never sees the expert, so changing the noisy actions or the flow
    time leaves every prefix activation unchanged, while the expert's output changes."""
    from baselines.pi05 import Pi05, attention_mask, make_config

    mask = attention_mask(3, 2)
    assert mask[:3, :3].all() and not mask[:3, 3:].any() and mask[3:, :].all()
    for ki in (False, True):
        torch.manual_seed(0)
        model = Pi05(make_config("tiny", image_size=32, patch=8, layers=2, knowledge_insulation=ki))
        with torch.no_grad():
            for p in model.parameters():  # as if trained: zero-initialised adaptive norms would hide the time
                p.add_(0.05 * torch.randn_like(p))
        batch, text = small_batch(model.cfg)
        prefix = model.prefix_tokens({c: v[:, :1] for c, v in batch["images"].items()}, batch["state"], text)
        p1, v1 = model.run(prefix, torch.randn(2, 8, 7), torch.full((2,), 0.9))
        p2, v2 = model.run(prefix, torch.randn(2, 8, 7), torch.full((2,), 0.2))
        assert torch.equal(p1, p2) and not torch.allclose(v1, v2)
        # inference caches the prefix's keys and values once per chunk: the same velocity as the full pass
        cache, p = [], prefix
        for layer in model.layers:
            p, kv = layer.prefix_only(p)
            cache.append(kv)
        noisy, t = torch.randn(2, 8, 7), torch.full((2,), 0.5)
        with torch.no_grad():
            assert torch.allclose(model.expert_velocity(cache, noisy, t), model.run(prefix, noisy, t)[1], atol=1e-5)


def test_pi05_knowledge_insulation_stops_the_flow_gradient_at_the_prefix():
    from baselines.pi05 import Pi05, make_config

    for ki, reaches in ((True, False), (False, True)):
        torch.manual_seed(0)
        model = Pi05(make_config("tiny", image_size=32, patch=8, layers=2, knowledge_insulation=ki))
        batch, text = small_batch(model.cfg)
        model.loss(batch, text)["action"].backward()
        grad = model.patchify.weight.grad
        assert (grad is not None and float(grad.abs().sum()) > 0) == reaches


@pytest.mark.slow
@pytest.mark.parametrize("name", ["groot", "flare", "pi05"])
def test_every_baseline_runs_a_real_bench_run_episode(tmp_path, name, bench_cmd):
    import subprocess

    from bench.models.registry import model_config
    from bench.core.records import read_records
    from bench.train.loop import TrainConfig, train

    small = {"layers": 1} if name == "pi05" else {"vit_layers": 1, "adapter_layers": 1}
    ckpt = train(model_config(name, "tiny", **small), [FIXTURE], tmp_path / "train",
                 TrainConfig(steps=2, batch_size=2, warmup=1))
    done = subprocess.run([*bench_cmd, "run", "--suite", "libero_object", "--policy", name, "--checkpoint", str(ckpt),
                           "--tasks", "0", "--episodes", "1", "--max-steps", "8", "--workers", "1",
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    (rec,) = read_records(tmp_path / "run" / "episodes.jsonl")
    assert rec["policy"] == name and rec["error"] is None and rec["steps"] == 8
