"""DiT4DiT: shapes, flow-matching targets, early-exit features, samplers, overfitting,
checkpoint round trip, resumable training, and the policy adapter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from bench.models.dit4dit import (DiT4DiT, build_on_meta, count_parameters, full_config, make_config,
                                  tiny_config)
from bench.models.flow import TimestepSampler, euler_sample, interpolate, velocity_target
from bench.models.vae import PixelVAE

FIXTURE = "tests/fixtures/libero_object_t0_2demos_32.hdf5"


def small_config(**overrides):
    """The tiny config shrunk further (32x32 frames) so tests run in seconds."""
    base = {"image_size": 32, "video.num_layers": 3, "video.feature_layer": 1, "video.head_dim": 16,
            "video.num_heads": 2, "video.adaln_lora_dim": 16, "action.num_layers": 2, "action.num_heads": 2,
            "action.head_dim": 16, "action.cross_dim": 32, "action.dropout": 0.0}
    base.update(overrides)
    return make_config("tiny", **base)


def fake_batch(cfg, b=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    frames = 1 + cfg.n_future
    s = cfg.image_size
    return {"images": {c: torch.randint(0, 256, (b, frames, s, s, 3), generator=g, dtype=torch.uint8)
                       for c in cfg.cameras},
            "actions": torch.rand(b, cfg.action.chunk, 7, generator=g) * 2 - 1,
            "state": torch.rand(b, 8, generator=g), "action_mask": torch.ones(b, cfg.action.chunk, dtype=torch.bool),
            "language": ["pick up the bowl"] * b}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def test_shapes_through_the_model():
    cfg = small_config()
    model = DiT4DiT(cfg)
    batch = fake_batch(cfg)
    x0 = model.latents(batch["images"])
    # 2 cameras side by side, space-to-depth by 8: (B, 192, frames, 32/8, 64/8)
    assert x0.shape == (4, 192, 1 + cfg.n_future, 4, 8)
    text = torch.randn(4, cfg.text_max_tokens, 384)
    velocity, feats = model.video_dit(x0, torch.rand(4), text, capture_layer=cfg.video.feature_layer)
    assert velocity.shape == x0.shape
    tokens = (1 + cfg.n_future) * (4 // 2) * (8 // 2)  # patch (1, 2, 2)
    assert feats.shape == (4, tokens, cfg.video.hidden)
    out = model.action_dit(torch.randn(4, 8, 7), torch.rand(4), torch.randn(4, 8), feats)
    assert out.shape == (4, 8, 7)
    losses = model.loss(batch, text)
    assert set(losses) == {"loss", "action", "video"} and all(torch.isfinite(v) for v in losses.values())
    model.eval()
    chunk = model.predict({c: v[:, 0] for c, v in batch["images"].items()}, batch["state"], text)
    assert chunk.shape == (4, 8, 7) and torch.isfinite(chunk).all()


def test_pixel_vae_is_lossless():
    vae = PixelVAE(8)
    video = torch.rand(2, 3, 3, 32, 64) * 2 - 1
    z = vae.encode(video)
    assert z.shape == (2, 192, 3, 4, 8)
    assert torch.equal(vae.decode(z), video)


def test_flow_matching_path_and_target():
    x0, z = torch.randn(3, 8, 7), torch.randn(3, 8, 7)
    assert torch.allclose(interpolate(x0, z, torch.zeros(3)), x0)
    assert torch.allclose(interpolate(x0, z, torch.ones(3)), z)
    t = torch.tensor([0.25, 0.5, 0.9])
    xt = interpolate(x0, z, t)
    assert torch.allclose(xt, (1 - t)[:, None, None] * x0 + t[:, None, None] * z)
    v = velocity_target(x0, z)
    # moving along the target velocity from x_t for time t lands on x0
    assert torch.allclose(xt - t[:, None, None] * v, x0, atol=1e-6)
    # Euler integration with the exact velocity field recovers the data from noise in any number of steps
    exact = lambda x, tt: (x - x0) / tt[:, None, None]  # noqa: E731
    for steps in (1, 4):
        assert torch.allclose(euler_sample(exact, z, steps), x0, atol=1e-5)


def test_early_exit_features_equal_the_full_pass():
    cfg = small_config()
    model = DiT4DiT(cfg).eval()
    x0 = torch.randn(2, 192, 2, 4, 8)
    text = torch.randn(2, cfg.text_max_tokens, 384)
    t = torch.full((2,), cfg.feature_timestep)
    ran = []
    hooks = [b.register_forward_hook(lambda m, i, o, k=k: ran.append(k))
             for k, b in enumerate(model.video_dit.transformer.transformer_blocks)]
    with torch.no_grad():
        _, full = model.video_dit(x0, t, text, capture_layer=cfg.video.feature_layer)
        ran_full = list(ran)
        ran.clear()
        early = model.video_dit.features(x0, t, text)
    for h in hooks:
        h.remove()
    assert ran_full == [0, 1, 2] and ran == [0, 1]  # blocks after the feature block never run
    assert (early - full).abs().max().item() <= 1e-5


def test_trajectory_features_are_read_after_the_models_own_steps_from_noise():
    """feature_pass=trajectory: the future slot goes from pure noise at 1 down to tau_f in k Euler steps of the
    video DiT's own velocity, then the features are read at tau_f; label reads pure noise told tau_f."""
    cfg = small_config(feature_pass="trajectory", feature_timestep=0.4, feature_denoise_steps=2)
    model = DiT4DiT(cfg).eval()
    x0, noise = torch.randn(2, 192, 2, 4, 8), torch.randn(2, 192, 2, 4, 8)
    text = torch.randn(2, cfg.text_max_tokens, 384)
    with torch.no_grad():
        x = model.feature_input(x0, noise, "pure_noise")
        for now, nxt in ((1.0, 0.7), (0.7, 0.4)):
            v, _ = model.video_dit(x, torch.full((2,), now), text, cond_t=cfg.cond_timestep)
            x = torch.cat([x[:, :, :1], x[:, :, 1:] + (nxt - now) * v[:, :, 1:]], dim=2)
        want = model.video_dit.features(x, torch.full((2,), 0.4), text, cond_t=cfg.cond_timestep)
        got = model.features(x0, text, noise=noise)
        model.cfg.feature_pass = "label"
        label = model.features(x0, text, noise=noise)
    assert torch.allclose(got, want, atol=1e-6) and not torch.allclose(got, label, atol=1e-3)
    with pytest.raises(ValueError, match="needs future_slot=pure_noise"):
        small_config(feature_pass="trajectory", future_slot="noised")


@pytest.mark.parametrize("sampler", [TimestepSampler("uniform"), TimestepSampler("beta"),
                                     TimestepSampler("logit_normal", high_frac=0.05, high_min=0.98)],
                         ids=["uniform", "beta", "logit_normal"])
def test_timestep_samplers_match_their_distributions(sampler):
    x = sampler(20000, generator=torch.Generator().manual_seed(1)).numpy().astype(np.float64)
    assert stats.kstest(x, np.vectorize(sampler.cdf)).pvalue > 1e-3
    if sampler.kind != "uniform":  # and the test can tell them apart from uniform
        assert stats.kstest(x, "uniform").pvalue < 1e-6


def test_beta_action_timesteps_favour_the_noisy_end():
    t = TimestepSampler("beta")(20000, generator=torch.Generator().manual_seed(2))
    assert abs(t.mean().item() - 0.6 / 0.999) < 0.01  # Beta(1.5, 1) has mean 0.6
    assert (t > 0.5).float().mean() > 0.6


def test_full_config_parameter_counts_on_meta():
    model = build_on_meta(full_config())
    video = count_parameters(model.video_dit)
    action = count_parameters(model.action_dit)
    assert 1.9e9 < video < 2.2e9, video  # Cosmos-Predict2.5-2B
    assert 1.0e8 < action < 2.0e8, action  # a 16 x 768 DiT-B head with 2048-d cross-attention
    assert next(model.parameters()).device.type == "meta"
    tiny = DiT4DiT(tiny_config())
    assert count_parameters(tiny) < 20e6


def test_loss_from_cached_latents_equals_loss_from_frames():
    """A batch may carry `latents` (frames a frozen VAE encoded once): the loss is the one its frames give."""
    cfg = small_config()
    model = DiT4DiT(cfg)
    batch = fake_batch(cfg)
    text = torch.randn(4, cfg.text_max_tokens, 384)
    torch.manual_seed(3)
    from_frames = model.loss(batch, text)
    torch.manual_seed(3)
    from_latents = model.loss({**batch, "latents": model.latents(batch["images"]), "images": None}, text)
    assert all(torch.equal(from_frames[k], from_latents[k]) for k in from_frames)


def test_a_small_model_overfits_one_batch():
    """Fresh noise and timesteps every step (the real objective); 8 fixed samples to memorise."""
    cfg = small_config()
    model = DiT4DiT(cfg)
    batch = fake_batch(cfg, b=8)
    text = torch.randn(8, cfg.text_max_tokens, 384)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    history = []
    for _ in range(400):
        losses = model.loss(batch, text)
        history.append(losses["action"].item())
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
    model.eval()
    pred = model.predict({c: v[:, 0] for c, v in batch["images"].items()}, batch["state"], text,
                         generator=torch.Generator().manual_seed(0))
    err = (pred - batch["actions"]).abs().mean().item()
    assert history[0] > 1.0
    assert np.mean(history[-20:]) < 0.3, f"action loss {np.mean(history[-20:]):.3f} after 400 steps (threshold 0.3)"
    # predicting the batch mean would give ~0.5 on these uniform [-1, 1] actions
    assert err < 0.3, f"mean abs action error {err:.3f} after overfitting (threshold 0.3)"


def test_checkpoint_round_trip_is_exact(tmp_path):
    from bench.models.text import TextCache
    from bench.train.loop import load_checkpoint, save_checkpoint

    cfg = small_config(gradient="joint", feature_timestep=0.9)
    model = DiT4DiT(cfg).eval()
    stats_ = {"state": {"q01": [-1.0] * 8, "q99": [2.0] * 8}, "actions": {"q01": [-0.5] * 7, "q99": [0.5] * 7}}
    model.normalizer.set_stats(stats_)
    cache = TextCache(table={"pick up the bowl": torch.randn(cfg.text_max_tokens, 384)})
    save_checkpoint(model, tmp_path / "ckpt", stats_, cache)
    loaded, cache2, stats2 = load_checkpoint(tmp_path / "ckpt", text_encoder=False)
    assert loaded.cfg == model.cfg
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(cache2.table["pick up the bowl"], cache.table["pick up the bowl"]) and stats2 == stats_
    batch = fake_batch(cfg)
    imgs = {c: v[:, 0] for c, v in batch["images"].items()}
    text = cache(["pick up the bowl"] * 4)
    p1 = model.predict(imgs, batch["state"], text, generator=torch.Generator().manual_seed(3))
    p2 = loaded.eval().predict(imgs, batch["state"], text, generator=torch.Generator().manual_seed(3))
    assert torch.equal(p1, p2)
    with pytest.raises(KeyError, match="not in the checkpoint's text cache"):
        cache2(["open the drawer"])


def test_config_errors_name_the_choices():
    with pytest.raises(ValueError, match="detached, joint, frozen_video"):
        make_config("tiny", gradient="sideways")
    with pytest.raises(ValueError, match="unknown config key"):
        make_config("tiny", **{"video.depth": 3})
    with pytest.raises(ValueError, match="tiny, full"):
        make_config("huge")
    with pytest.raises(ValueError, match="feature_layer 9 is outside"):
        DiT4DiT(make_config("tiny", **{"video.feature_layer": 9}))
    with pytest.raises(ValueError, match="logit_normal"):
        TimestepSampler("gamma")


def _train(out, steps, resume=False, precision="fp32"):
    from bench.train.loop import TrainConfig, train

    cfg = small_config()
    tc = TrainConfig(steps=steps, batch_size=4, warmup=2, checkpoint_every=3, log_every=1, precision=precision)
    return train(cfg, [FIXTURE], out, tc, resume=resume)


def test_bf16_training_is_autocast_with_fp32_weights(tmp_path):
    """bf16 changes the arithmetic (weights differ from fp32's after a step) but not the weights' dtype,
    and its losses stay close to fp32's on the same batches and noise."""
    from safetensors.torch import load_file

    fp32, bf16 = _train(tmp_path / "fp32", 3), _train(tmp_path / "bf16", 3, precision="bf16")
    a, b = load_file(str(fp32 / "model.safetensors")), load_file(str(bf16 / "model.safetensors"))
    assert all(v.dtype == a[k].dtype for k, v in b.items())
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())
    first = [float((tmp_path / run / "losses.csv").read_text().splitlines()[1].split(",")[1]) for run in ("fp32", "bf16")]
    assert np.isfinite(first).all() and abs(first[0] - first[1]) < 0.05 * first[0], first


def test_training_writes_checkpoint_curve_and_resumes_exactly(tmp_path):
    from safetensors.torch import load_file

    straight = _train(tmp_path / "a", 6)
    _train(tmp_path / "b", 3)
    with pytest.raises(FileExistsError, match="--resume"):
        _train(tmp_path / "b", 6)
    resumed = _train(tmp_path / "b", 6, resume=True)
    a, b = load_file(str(straight / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a), "a resumed run must end with the uninterrupted run's weights"
    rows = (tmp_path / "b" / "losses.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 6 and rows[0].startswith("step,loss,action,video")
    assert [int(r.split(",")[0]) for r in rows[1:]] == [1, 2, 3, 4, 5, 6]
    # training time adds up over the resumed invocations, for loss-against-wall-time curves
    assert rows[0].endswith(",elapsed_s")
    elapsed = [float(r.split(",")[-1]) for r in rows[1:]]
    assert all(x > 0 for x in elapsed) and elapsed == sorted(elapsed)
    assert (tmp_path / "a" / "losses.png").stat().st_size > 0


def test_policy_adapter_acts_and_does_not_depend_on_batching_bit_for_bit(tmp_path):
    from bench.policies import make_policy
    from bench.policies.contract import EpisodeInfo, ObservationBatch
    from bench.sim.suites import TaskInfo
    from bench.train.loop import save_checkpoint
    from bench.models.text import TextCache

    cfg = small_config()
    model = DiT4DiT(cfg)
    prompt = "pick up the bowl"
    save_checkpoint(model, tmp_path / "ckpt", {"state": {"q01": [0] * 8, "q99": [1] * 8},
                                                "actions": {"q01": [-1] * 7, "q99": [1] * 7}},
                    TextCache(table={prompt: torch.randn(cfg.text_max_tokens, 384)}))
    policy = make_policy("dit4dit", checkpoint=str(tmp_path / "ckpt"))
    task = TaskInfo(suite="libero_object", task_id=0, name="t", language=prompt, env_id="x.bddl")
    keys = ["e0", "e1", "e2"]
    for i, k in enumerate(keys):
        policy.reset(EpisodeInfo(key=k, task=task, init_id=i, seed=7))
    rng = np.random.default_rng(0)
    imgs = {c: rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8) for c in cfg.cameras}
    batch = ObservationBatch(episode_keys=keys, images=imgs, state=rng.random((3, 8), dtype=np.float32),
                             prompts=[prompt] * 3, steps=np.array([0, 8, 16]))
    out = policy.act(batch)
    assert out.shape == (3, 8, 7) and np.isfinite(out).all()
    one = policy.act(ObservationBatch(episode_keys=keys[1:2], images={c: v[1:2] for c, v in imgs.items()},
                                      state=batch.state[1:2], prompts=[prompt], steps=batch.steps[1:2]))
    # bit for bit: a row's actions must not depend on which rows the runner batched it with
    np.testing.assert_array_equal(one[0], out[1])


def test_perf_policy_measures_the_tiny_config():
    from bench.perf.policy import measure_config

    r = measure_config("tiny", batches=(1,), repeats=1, train_batch=2, log=lambda *_: None)
    assert r["parameters"] == r["video_parameters"] + r["action_parameters"]
    assert r["latency_s"][1] > 0 and r["features_early_exit_s"][1] > 0 and r["video_full_pass_s"][1] > 0
    assert r["early_exit_speedup"][1] == pytest.approx(r["video_full_pass_s"][1] / r["features_early_exit_s"][1])
    assert r["train_samples_per_s"] > 0 and r["train_samples_per_s_bf16"] > 0 and r["train_bf16_speedup"] > 0


def test_pretrained_folder_loads_through_diffusers(tmp_path):
    """The full config's path (a local diffusers folder with transformer/ and vae/) on a small stand-in."""
    from diffusers import AutoencoderKLWan, CosmosTransformer3DModel

    from bench.models.vae import WanVAE

    v = small_config().video
    CosmosTransformer3DModel(in_channels=5, out_channels=4, num_attention_heads=v.num_heads,
                             attention_head_dim=v.head_dim, num_layers=v.num_layers, text_embed_dim=v.text_dim,
                             adaln_lora_dim=v.adaln_lora_dim, max_size=v.max_size, concat_padding_mask=True,
                             ).save_pretrained(tmp_path / "transformer")
    AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                     latents_mean=[0.0] * 4, latents_std=[1.0] * 4).save_pretrained(tmp_path / "vae")
    # saved with concat_padding_mask=True, as Cosmos-Predict2.5 is: we feed that channel ourselves
    model = DiT4DiT(small_config(vae="wan", n_future=4, future_stride=2, pretrained=str(tmp_path),
                                 **{"video.latent_channels": 4, "video.concat_padding_mask": True}))
    assert isinstance(model.vae, WanVAE)
    ref = CosmosTransformer3DModel.from_pretrained(tmp_path / "transformer")
    assert all(torch.equal(a, b) for a, b in zip(model.video_dit.transformer.state_dict().values(),
                                                 ref.state_dict().values()))
    batch = fake_batch(model.cfg, b=2)
    x0 = model.latents(batch["images"])
    assert x0.shape == (2, 4, 2, 4, 8)  # 5 frames -> 2 latent frames (Wan's 4x temporal), 8x spatial
    losses = model.loss(batch, torch.randn(2, model.cfg.text_max_tokens, 384))
    assert torch.isfinite(losses["loss"])
    with pytest.raises(ValueError, match="num_layers is 3 there, 4 in the config"):
        DiT4DiT(small_config(vae="wan", pretrained=str(tmp_path), **{"video.num_layers": 4,
                                                                     "video.latent_channels": 4,
                                                                     "video.concat_padding_mask": True}))


def test_resume_refuses_other_data(tmp_path):
    import shutil

    import h5py

    from bench.train.loop import TrainConfig, train

    other = tmp_path / "one_demo.hdf5"
    shutil.copy(FIXTURE, other)
    with h5py.File(other, "a") as f:
        del f["data"][sorted(f["data"])[-1]]
    tc = TrainConfig(steps=2, batch_size=2, warmup=1, checkpoint_every=1)
    train(small_config(), [FIXTURE], tmp_path / "run", tc)
    with pytest.raises(ValueError, match="trained on other data"):
        train(small_config(), [str(other)], tmp_path / "run", TrainConfig(steps=4, batch_size=2), resume=True)


def test_bundled_checkpoint_serves_libero_spatial_with_no_argument():
    """`bench run --suite libero_spatial --policy dit4dit` (the README's main job) needs no
    --checkpoint, no text encoder and no hub: the package ships everything it reads."""
    from bench.policies import make_policy
    from bench.policies.trained import BUNDLED
    from bench.policies.contract import EpisodeInfo, ObservationBatch, check_spec
    from bench.sim.suites import get_suite

    assert sum(f.stat().st_size for f in BUNDLED.iterdir()) <= 20 * 2**20
    suite = get_suite("libero_spatial")
    policy = make_policy("dit4dit")
    assert policy.checkpoint_path == BUNDLED
    assert count_parameters(policy.model) < 20e6
    check_spec(policy.spec, suite.protocol, "dit4dit", suite.name)
    policy.text.encoder = None  # every libero_spatial instruction must come from the checkpoint's cache
    tasks = suite.tasks()
    for i, task in enumerate(tasks):
        policy.reset(EpisodeInfo(key=f"e{i}", task=task, init_id=0, seed=7))
    rng = np.random.default_rng(0)
    r = suite.protocol.resolution
    batch = ObservationBatch(episode_keys=[f"e{i}" for i in range(len(tasks))],
                             images={c: rng.integers(0, 256, (len(tasks), r, r, 3), dtype=np.uint8)
                                     for c in suite.protocol.cameras},
                             state=rng.random((len(tasks), 8), dtype=np.float32),
                             prompts=[t.language for t in tasks], steps=np.zeros(len(tasks), dtype=np.int64))
    out = policy.act(batch)
    assert out.shape == (len(tasks), policy.spec.chunk_length, 7) and np.isfinite(out).all()
