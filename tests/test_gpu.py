"""The GPU path (the `paper` budget, `bench run --policy-gpus`): every registered model trains on a CUDA
device through the one training loop, in bf16 autocast, and its checkpoint serves there and on a CPU.

Skipped where torch sees no CUDA device (CI and the development machines have none); run them on a GPU
machine with `make test-gpu`. They need no simulator, no MiniLM and no hub: the fixture's instructions get
seeded random embeddings through the `precomputed` text encoder, which every model accepts.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (make test-gpu on a GPU machine)")]

FIXTURE = "tests/fixtures/libero_object_t0_2demos_32.hdf5"
MODELS = ["dit4dit", "groot", "flare", "pi05"]
# Each model's tiny config at the fixture's 32 px, small enough for seconds of training.
SMALL = {
    "dit4dit": {"image_size": 32, "video.num_layers": 3, "video.feature_layer": 1, "action.num_layers": 2},
    "groot": {"image_size": 32, "patch": 8, "vit_layers": 2, "adapter_layers": 1},
    "flare": {"image_size": 32, "patch": 8, "vit_layers": 2, "adapter_layers": 1},
    "pi05": {"image_size": 32, "patch": 8, "layers": 2},
}


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    """Seeded random embeddings (24 tokens x 384) for every instruction in the fixture."""
    from safetensors.torch import save_file

    from bench.demos.dataset import LiberoDemoDataset, WindowSpec

    data = LiberoDemoDataset([FIXTURE], WindowSpec(), stats_path=tmp_path_factory.mktemp("stats") / "stats.json")
    languages = sorted({d.language for d in data.demos})
    data.close()
    g = torch.Generator().manual_seed(0)
    path = tmp_path_factory.mktemp("text") / "embeddings.safetensors"
    save_file({lang: torch.randn(24, 384, generator=g) for lang in languages}, str(path))
    return str(path)


def _losses(run) -> list[float]:
    with open(run / "losses.csv") as f:
        return [float(r["action"]) for r in csv.DictReader(f)]


@pytest.mark.parametrize("name", MODELS)
def test_each_model_trains_on_the_gpu_in_bf16_and_serves_on_gpu_and_cpu(tmp_path, text_file, name):
    from bench.models.registry import model_config
    from bench.policies import make_policy
    from bench.policies.contract import EpisodeInfo, ObservationBatch
    from bench.sim.suites import TaskInfo
    from bench.train.loop import TrainConfig, load_checkpoint, train

    cfg = model_config(name, "tiny", text="precomputed", text_embeddings=text_file, **SMALL[name])
    run = tmp_path / "run"
    ckpt = train(cfg, [FIXTURE], run, TrainConfig(steps=120, batch_size=8, warmup=10, log_every=5,
                                                  checkpoint_every=60, precision="bf16"))
    losses = _losses(run)
    assert len(losses) == 24 and np.isfinite(losses).all(), losses
    assert np.mean(losses[-4:]) < 0.8 * np.mean(losses[:4]), f"{name} did not learn on the GPU: {losses}"
    assert torch.cuda.max_memory_allocated() > 0, "training never touched the GPU"

    model, _, _ = load_checkpoint(ckpt)  # a GPU-trained checkpoint loads on a machine without one
    assert all(p.device.type == "cpu" for p in model.parameters())

    rng = np.random.default_rng(0)
    gpu, cpu = make_policy(name, checkpoint=str(ckpt), device="cuda"), make_policy(name, checkpoint=str(ckpt))
    prompt = next(iter(gpu.text.table))
    task = TaskInfo(suite="libero_object", task_id=0, name="t", language=prompt, env_id="x.bddl")
    obs = ObservationBatch(["e"], {c: rng.integers(0, 256, (1, 224, 224, 3), dtype=np.uint8) for c in cfg.cameras},
                           rng.random((1, 8), dtype=np.float32), [prompt], np.array([0]))
    outs = []
    for policy in (gpu, gpu, cpu):
        policy.reset(EpisodeInfo(key="e", task=task, init_id=0, seed=7))
        outs.append(policy.act(obs))
    assert outs[0].shape == (1, gpu.spec.chunk_length, 7)
    assert np.isfinite(outs[0]).all()
    assert np.array_equal(outs[0], outs[1]), "the same episode and step must give the same chunk on one GPU"
    assert np.isfinite(outs[2]).all() and outs[2].shape == outs[0].shape


def test_full_config_trains_one_step_on_the_gpu():
    """The paper-scale DiT4DiT (2.2 B, random weights): one bf16 autocast step with AdamW fits and moves
    the weights (its fp32 optimizer state alone is about 26 GB)."""
    from bench.perf.policy import measure_config

    if torch.cuda.get_device_properties(0).total_memory < 60 * 2**30:
        pytest.skip("the full config's training needs a GPU with 60 GB or more")
    out = measure_config("full", batches=(1,), repeats=1, train_batch=2, device="cuda", train=True, log=print)
    assert out["train_samples_per_s"] and out["train_samples_per_s_bf16"] > 0
