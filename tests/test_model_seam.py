"""One seam for trainable models: a second model registered here trains through the same loop, saves the
same checkpoint format, reloads, and runs real episodes through the same policy adapter as DiT4DiT."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

import numpy as np
import pytest
import torch
from torch import nn

from bench.demos.dataset import WindowSpec
from bench.models.common import Normalizer, config_from_dict, frames_to_video
from bench.models.registry import MODELS, ModelEntry, register_model

FIXTURE = "tests/fixtures/libero_object_t0_2demos_32.hdf5"


@dataclass
class PixelMLPConfig:
    name: str = "pixel_mlp"
    cameras: tuple[str, ...] = ("agentview",)
    image_size: int = 8
    text: str = "minilm"
    text_max_tokens: int = 4
    text_embeddings: str | None = None
    pixel_path: str = "render_resize_uint8"
    chunk: int = 8
    action_dim: int = 7
    hidden: int = 32

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PixelMLPConfig":
        return config_from_dict(cls, d)


class PixelMLP(nn.Module):
    """Regresses the action chunk from a tiny image, the state and the mean text embedding."""

    def __init__(self, cfg: PixelMLPConfig):
        super().__init__()
        self.cfg = cfg
        self.normalizer = Normalizer(action_dim=cfg.action_dim)
        inputs = 3 * cfg.image_size ** 2 * len(cfg.cameras) + 8 + 384
        self.net = nn.Sequential(nn.Linear(inputs, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.chunk * cfg.action_dim))

    def _features(self, images, state, text):
        video = frames_to_video(images, self.cfg.cameras, self.cfg.image_size, self.cfg.pixel_path)
        return torch.cat([video[:, :, 0].flatten(1), self.normalizer.normalize("state", state.float()),
                          text.mean(1)], dim=1)

    def loss(self, batch, text):
        pred = self.net(self._features(batch["images"], batch["state"], text)).view(-1, self.cfg.chunk,
                                                                                    self.cfg.action_dim)
        target = self.normalizer.normalize("actions", batch["actions"].float())
        mask = batch["action_mask"].float()
        err = ((pred - target) ** 2).mean(-1)
        return {"loss": (err * mask).sum() / mask.sum(), "first_action": err[:, 0].mean()}

    def forward(self, batch, text):
        return self.loss(batch, text)

    @torch.no_grad()
    def predict(self, images, state, text, generator=None, steps=None):
        feats = self._features({c: v[:, None] for c, v in images.items()}, state, text)
        out = self.net(feats).view(-1, self.cfg.chunk, self.cfg.action_dim)
        return self.normalizer.unnormalize("actions", out)

    def param_groups(self):
        return [{"name": "net", "params": list(self.net.parameters())}]

    def window_spec(self):
        return WindowSpec(cameras=self.cfg.cameras, n_current=1, n_future=0, future_stride=1, chunk=self.cfg.chunk)

    @property
    def chunk_shape(self):
        return self.cfg.chunk, self.cfg.action_dim


@pytest.fixture(scope="module")
def pixel_mlp():
    from bench.policies import POLICIES, load_all, register
    from bench.policies.trained import TrainedPolicy

    if "pixel_mlp" not in MODELS:
        register_model(ModelEntry("pixel_mlp", PixelMLPConfig, {"small": PixelMLPConfig}, PixelMLP, "test model"))
    load_all()
    if "pixel_mlp" not in POLICIES:
        register("pixel_mlp", lambda checkpoint=None, seed=0: TrainedPolicy("pixel_mlp", checkpoint, seed),
                 help="test model", options=("checkpoint", "seed"))
    return PixelMLPConfig()


def test_a_second_model_trains_saves_reloads_and_runs_episodes(tmp_path, pixel_mlp, gl):
    from safetensors.torch import load_file

    from bench.core.records import read_records
    from bench.eval.runner import RunConfig, Runner
    from bench.sim.suites import get_suite
    from bench.train.loop import TrainConfig, checkpoint_info, load_checkpoint, train

    ckpt = train(pixel_mlp, [FIXTURE], tmp_path / "run", TrainConfig(steps=4, batch_size=2, warmup=1,
                                                                     checkpoint_every=2, log_every=1))
    header = (tmp_path / "run" / "losses.csv").read_text().splitlines()[0]
    assert header == "step,loss,first_action,lr_net,grad_norm,samples_per_s,elapsed_s"  # the model's losses and groups
    info = checkpoint_info(ckpt)
    assert info["model"] == "pixel_mlp" and info["suite"] == "libero_object" and info["trained_steps"] == 4
    assert info["layouts"]["cameras"] == ["agentview"] and info["layouts"]["chunk"] == 8
    model, _, stats = load_checkpoint(ckpt, text_encoder=False)
    saved = load_file(str(ckpt / "model.safetensors"))
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    assert stats == json.loads((tmp_path / "run" / "stats.json").read_text())

    from bench.policies import make_policy

    policy = make_policy("pixel_mlp", checkpoint=str(ckpt))
    assert policy.spec.cameras == ("agentview",)
    suite = get_suite("libero_object")
    cfg = RunConfig(suite=suite, policy_name="pixel_mlp", task_ids=[0], out=tmp_path / "eval", episodes=2, workers=1,
                    protocol=suite.protocol.replace(max_steps=16), checkpoint=str(ckpt))
    Runner(cfg, policy).run()
    records = read_records(tmp_path / "eval" / "episodes.jsonl")
    assert len(records) == 2 and all(r["error"] is None and r["steps"] == 16 for r in records)


def test_checkpoint_round_trip_keeps_layouts_and_stats(tmp_path):
    from bench.models.dit4dit import DiT4DiT, make_config
    from bench.models.text import TextCache
    from bench.train.loop import checkpoint_info, load_checkpoint, save_checkpoint

    cfg = make_config("tiny", **{"video.num_layers": 2, "video.feature_layer": 1, "action.num_layers": 2})
    stats = {"state": {"q01": [-1.0] * 8, "q99": [2.0] * 8}, "actions": {"q01": [-0.5] * 7, "q99": [0.5] * 7},
             "fingerprint": "abc"}
    model = DiT4DiT(cfg)
    model.normalizer.set_stats(stats)
    save_checkpoint(model, tmp_path / "ckpt", stats, TextCache(table={"x": torch.zeros(3, 384)}), {"suite": "s"})
    info = checkpoint_info(tmp_path / "ckpt")
    assert info["format"] == 2 and info["model"] == "dit4dit" and info["suite"] == "s"
    assert info["layouts"]["state"].startswith("eef_pos") or info["layouts"]["state"]
    loaded, cache, stats2 = load_checkpoint(tmp_path / "ckpt", text_encoder=False)
    assert stats2 == stats and list(cache.table) == ["x"]
    assert torch.equal(loaded.normalizer.state_lo, model.normalizer.state_lo)
    # a checkpoint saved before the format (one flat dict: `policy`, the config, training facts) reads as a
    # DiT4DiT trained on LIBERO's layouts
    flat = {"policy": "dit4dit", **info["config"], "trained_steps": 7, "batch_size": 16}
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(flat))
    legacy = checkpoint_info(tmp_path / "ckpt")
    assert legacy["model"] == "dit4dit" and legacy["format"] == 1 and legacy["layouts"]["action_dim"] == 7
    assert legacy["trained_steps"] == 7 and legacy["config"] == info["config"]
    reloaded, _, _ = load_checkpoint(tmp_path / "ckpt", text_encoder=False)
    assert torch.equal(reloaded.normalizer.state_lo, model.normalizer.state_lo)
    assert loaded.cfg == cfg and np.isfinite(float(loaded.normalizer.actions_hi[0]))


def test_export_stores_bf16_weights_that_load_back_into_the_model(tmp_path, pixel_mlp):
    from typer.testing import CliRunner

    from bench.cli import app
    from bench.train.loop import TrainConfig, checkpoint_info, load_checkpoint, train

    ckpt = train(pixel_mlp, [FIXTURE], tmp_path / "run", TrainConfig(steps=2, batch_size=2, warmup=1, log_every=1))
    result = CliRunner().invoke(app, ["export", str(ckpt), "--out", str(tmp_path / "small"), "--dtype", "bf16"])
    assert result.exit_code == 0, result.output
    small = tmp_path / "small"
    assert (small / "model.safetensors").stat().st_size < 0.6 * (ckpt / "model.safetensors").stat().st_size
    assert checkpoint_info(small)["weights_dtype"] == "bf16" and checkpoint_info(small)["model"] == "pixel_mlp"
    full, _, _ = load_checkpoint(ckpt, text_encoder=False)
    rounded, _, _ = load_checkpoint(small, text_encoder=False)
    for (k, a), b in zip(full.state_dict().items(), rounded.state_dict().values()):
        assert b.dtype == a.dtype and torch.equal(b, a.to(torch.bfloat16).to(a.dtype)), k
    result = CliRunner().invoke(app, ["export", str(ckpt), "--out", str(small)])
    assert result.exit_code == 2 and "not empty" in " ".join(result.output.split())  # rich wraps long paths
    result = CliRunner().invoke(app, ["export", str(ckpt), "--out", str(tmp_path / "x"), "--dtype", "fp8"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "fp8" in text and "bf16" in text


def test_log_with_tensorboard_writes_an_event_file(tmp_path, pixel_mlp):
    from bench.train.loop import TrainConfig, train

    train(pixel_mlp, [FIXTURE], tmp_path / "run", TrainConfig(steps=2, batch_size=2, warmup=1, log_every=1,
                                                              log_with="tensorboard"))
    events = list((tmp_path / "run" / "trackers").rglob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 100
    with pytest.raises(ValueError, match="unknown tracker 'mlflow'; choose one of tensorboard, wandb"):
        train(pixel_mlp, [FIXTURE], tmp_path / "run2", TrainConfig(steps=1, log_with="mlflow"))


@pytest.mark.parametrize("model,suite,folder", [pytest.param(*b, id=b[2].name) for b in __import__(
    "bench.policies.trained", fromlist=["bundled"]).bundled()])
def test_every_shipped_checkpoint_serves_through_its_policy(model, suite, folder):
    """Each checkpoint in bench/checkpoints (bf16 baselines included) rebuilds its registered model, answers
    an observation at the suite's render size with a finite chunk of its layout, repeats it for the same
    (episode, step) and changes it for another instruction."""
    from bench.policies import make_policy
    from bench.policies.contract import EpisodeInfo, ObservationBatch
    from bench.sim.suites import get_suite

    policy = make_policy(model, checkpoint=str(folder))
    s = get_suite(suite)
    task = s.task(0)
    size = s.protocol.resolution
    state_dim = sum(int(n) for n in re.findall(r"\((\d+)\)", policy.spec.state_layout))  # "eef_pos(3)+..."

    def chunk(prompt):
        policy.reset(EpisodeInfo("k", task, 0, s.protocol.seed))
        obs = {"key": "k", "images": {c: np.full((size, size, 3), 90, np.uint8) for c in policy.spec.cameras},
               "state": np.zeros(state_dim, np.float32), "prompt": prompt, "step": 0}
        return policy.act(ObservationBatch.stack([obs]))

    a, b = chunk(task.language), chunk(task.language)
    assert a.shape == (1, policy.spec.chunk_length, policy.spec.action_dim) and np.isfinite(a).all()
    assert np.array_equal(a, b)
    assert not np.array_equal(a, chunk(s.task(1).language))
