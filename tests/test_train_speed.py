"""Faster training must train the same model: the new path's loss equals the old one's on a fixed batch,
`bench perf train` reports what it measured, and a training killed mid-run resumes to the uninterrupted
run's weights (also when the resumed part reads frames from the cache)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

FIXTURE = Path(__file__).parent / "fixtures" / "libero_object_t0_2demos_32.hdf5"
SMALL = {"image_size": 32, "video.num_layers": 3, "video.feature_layer": 1, "video.head_dim": 16,
         "video.num_heads": 2, "video.adaln_lora_dim": 16, "action.num_layers": 2, "action.num_heads": 2,
         "action.head_dim": 16, "action.cross_dim": 32}


@pytest.fixture
def data(tmp_path) -> str:
    """A copy of the fixture: the frame cache is written beside the demo file."""
    path = tmp_path / FIXTURE.name
    shutil.copyfile(FIXTURE, path)
    return str(path)


def test_compiled_blocks_and_math_attention_compute_the_same_loss(data, tmp_path):
    """The new path's arithmetic changes (compiled blocks, math attention) on one fixed batch: the same loss in
    fp32. The whole benchmark, bf16 and timings included, is the slow test below."""
    from torch.utils.data import default_collate

    from bench.demos.dataset import LiberoDemoDataset
    from bench.models.common import compile_blocks, set_attention
    from bench.models.registry import load_models, model_config
    from bench.models.text import TextCache, make_text_encoder

    cfg = model_config("dit4dit", "tiny", **SMALL)
    torch.manual_seed(0)
    model = load_models().get("dit4dit").build(cfg).eval()
    dataset = LiberoDemoDataset([data], model.window_spec(), stats_path=tmp_path / "stats.json")
    model.normalizer.set_stats(dataset.stats)
    batch = default_collate([dataset[i] for i in range(2)])
    text = TextCache(make_text_encoder(cfg.text, cfg.text_max_tokens, cfg.text_embeddings))(batch["language"])
    losses = []
    for change in (lambda: None, lambda: (set_attention(model, "math"), compile_blocks(model))):
        change()
        torch.manual_seed(1)
        with torch.no_grad():
            losses.append(float(model(batch, text)["loss"]))
    assert abs(losses[0] - losses[1]) < 1e-4 * abs(losses[0]) and losses[0] > 0, losses


@pytest.mark.slow
def test_perf_train_old_and_new_path_compute_the_same_loss(data):
    from bench.perf.train import run_train_benchmark

    torch.set_num_threads(1)
    out = run_train_benchmark(["dit4dit"], [data], batch_size=2, steps=1, rounds=1,
                              overrides={"dit4dit": SMALL}, log=lambda *_: None)
    r = out["results"][0]
    assert r["frame_cache_same_frames"], "the cached frames are the HDF5 file's frames"
    assert r["loss_fp32_rel_diff"] < 1e-4, r["loss_fixed_batch"]  # compiled blocks: the same function
    assert r["loss_bf16_rel_diff"] < 0.05, r["loss_fixed_batch"]  # bf16: other arithmetic, close
    assert r["compiled_blocks"] == 3 + 2  # the video DiT's and the action DiT's blocks
    assert r["flops_per_sample"] > 0 and out["dit4dit_speedup"] == r["speedup"] > 0
    for path in ("old", "new"):
        p = r["paths"][path]
        # no upper bound: the peak is a short matmul timed on a shared machine, so the ratio can pass 1
        assert p["samples_per_s"] > 0 and p["fraction_of_peak"] > 0
        assert {"data", "text", "forward", "backward", "optimizer"} <= set(p["step_s"])
        assert {"video_dit", "action_dit"} <= set(p["forward_by_module_s"])
    json.dumps(out)  # what bench perf train writes


def test_math_attention_is_the_same_function_and_bad_kinds_are_named():
    from bench.models.common import set_attention
    from bench.models.registry import load_models, model_config

    cfg = model_config("dit4dit", "tiny", **SMALL)
    torch.manual_seed(0)
    model = load_models().get("dit4dit").build(cfg).eval()
    x0 = torch.randn(2, cfg.video.latent_channels, 2, 4, 8)
    text = torch.randn(2, 5, cfg.video.text_dim)
    noise = torch.randn_like(x0)
    fused = model.features(x0, text, noise=noise)
    assert set_attention(model, "math") == 1  # the video DiT, diffusers' only part
    math = model.features(x0, text, noise=noise)
    assert torch.allclose(fused, math, atol=1e-5) and not torch.equal(fused, torch.zeros_like(fused))
    with pytest.raises(ValueError, match="'flash'.*default, math"):
        set_attention(model, "flash")


def _train_cmd(data: str, out: Path, steps: int, *extra: str) -> list[str]:
    sets = [a for k, v in SMALL.items() for a in ("--set", f"{k}={v}")]
    return [sys.executable, "-m", "bench.cli", "train", "--policy", "dit4dit", "--data", data, "--steps", str(steps),
            "--batch-size", "2", "--warmup", "3", "--checkpoint-every", "5", "--threads", "1", "--out", str(out),
            *sets, *extra]


def test_a_killed_training_resumes_to_the_uninterrupted_runs_weights(tmp_path, data):
    from safetensors.torch import load_file

    steps = 120
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    subprocess.run(_train_cmd(data, tmp_path / "straight", steps), check=True, env=env, capture_output=True)
    killed = subprocess.Popen(_train_cmd(data, tmp_path / "killed", steps), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    state = tmp_path / "killed" / "train_state.pt"
    deadline = time.monotonic() + 300
    while not state.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    at = torch.load(state, weights_only=False)["step"]
    assert 0 < at < steps, f"the run should be killed part way (its last checkpoint is at step {at})"
    # the rest reads its frames from the cache: the same bytes, so the same training
    subprocess.run(_train_cmd(data, tmp_path / "killed", steps, "--resume", "--frame-cache"), check=True, env=env,
                   capture_output=True)
    a = load_file(str(tmp_path / "straight" / "checkpoint" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "checkpoint" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), \
        f"resumed from step {at}: the weights must equal the uninterrupted run's"
    rows = (tmp_path / "killed" / "losses.csv").read_text().strip().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(10, steps + 1, 10))
