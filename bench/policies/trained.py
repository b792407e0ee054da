"""Every trained model behind the policy contract: one adapter for any registered model's checkpoint
(bench/models/registry.py), registered as a policy under the model's name (`dit4dit`, ...).

Each `act` call predicts one row at a time, its noise seeded by (episode, step): which rows the runner
batches together depends on worker timing, and a batched matmul differs from a single-row one in the last
bits, which closed-loop steps can grow into another outcome. Row by row, a rerun gives the same episodes.

Without --checkpoint a policy uses the checkpoint of its model shipped in bench/checkpoints/, if any.
"""

from __future__ import annotations

import inspect
import json
import zlib
from pathlib import Path

import numpy as np

from bench.policies import PolicyArg, register
from bench.policies.contract import EpisodeInfo, ObservationBatch, PolicySpec
from bench.policies.transforms import ACTION_POSTPROCESS, action_postprocess
from bench.sim.suites import LIBERO_ACTION_CONVENTION

FEATURE_NOISE = {"per_chunk": "a fresh draw for every chunk (as in training)",
                 "per_episode": "one draw per episode, held for every chunk: the features then change only with "
                                "what the cameras see"}
CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
BUNDLED = CHECKPOINTS / "dit4dit_tiny_libero_spatial"


def bundled() -> list[tuple[str, str | None, Path]]:
    """(model, suite, folder) of every checkpoint shipped in the package. A checkpoint's config.json names
    its suite; for checkpoints from before that, the folder name ends in it (`<model>_<config>_<suite>`)."""
    from bench.sim.suites import SUITES

    out = []
    for folder in sorted(p for p in CHECKPOINTS.iterdir() if (p / "config.json").exists()):
        raw = json.loads((folder / "config.json").read_text())
        suite = raw.get("suite") or next((s for s in SUITES if folder.name.endswith("_" + s)), None)
        out.append((raw.get("model", raw.get("policy", "dit4dit")), suite, folder))
    return out


def bundled_for(suite: str) -> tuple[str, Path] | None:
    """(policy, checkpoint folder) of a shipped checkpoint trained on `suite`'s demos: DiT4DiT's when there is
    one (the model this suite is built around; baselines ship beside it), else the first by name."""
    found = [(m, f) for m, s, f in bundled() if s == suite]
    return next((x for x in found if x[0] == "dit4dit"), found[0] if found else None)


# The training set every shipped model is compared on, and the one its zero-shot and LIBERO-PRO variants change.
HOME_SUITE = "libero_spatial"


def shipped_checkpoint(model: str, suite: str | None = None) -> Path | None:
    """The checkpoint of `model` shipped in the package for a run on `suite`: the one trained on that suite, else
    the one trained on libero_spatial, else the first by name (None: the package ships none of `model`). A model
    can ship several (libero_spatial and the GR1 proxy): the folder names alone would pick by alphabet."""
    mine = [(s, f) for m, s, f in bundled() if m == model]
    for want in (suite, HOME_SUITE):
        hit = next((f for s, f in mine if want is not None and s == want), None)
        if hit is not None:
            return hit
    return mine[0][1] if mine else None


class TrainedPolicy:
    concurrent_rows = True  # act on disjoint rows from several threads at once (bench serve shares a batch so)
    def __init__(self, model_name: str, checkpoint: str | None = None, seed: int = 0, steps: int | None = None,
                 device: str = "cpu", postprocess: str | None = None, feature_noise: str = "per_chunk"):
        import torch  # imported here: listing policies stays fast

        # The policy runs in the runner's process beside the sim workers; torch's default of one
        # spinning thread per core fights them for the CPU.
        torch.set_num_threads(1)

        from bench.train.loop import checkpoint_info, load_checkpoint

        if checkpoint is None:
            path = shipped_checkpoint(model_name)
            if path is None:
                raise FileNotFoundError(
                    f"no --checkpoint given and no {model_name} checkpoint ships with the package; train one with "
                    f"`bench train --policy {model_name} --data <demos.hdf5> --out <dir>` and pass "
                    "--checkpoint <dir>/checkpoint")
        else:
            path = Path(checkpoint)
        info = checkpoint_info(path)
        if info["model"] != model_name:
            raise ValueError(f"{path} is a {info['model']} checkpoint, not {model_name}: use --policy {info['model']}")
        self.checkpoint_path = path  # the runner hashes it into every episode record
        self.model, self.text, self.stats = load_checkpoint(path)
        self.device = torch.device(device)  # "cuda" when hosted on a GPU (bench run --policy-gpus)
        self.model.to(self.device).eval()
        self.seed, self.steps = seed, steps
        lay = info["layouts"]
        self.cameras = tuple(lay["cameras"])
        self.spec = PolicySpec(cameras=self.cameras, state_layout=lay["state"], action_dim=lay["action_dim"],
                               action_convention=lay["action"], chunk_length=lay["chunk"])
        # how the unnormalised chunk becomes actions: asked for, else the checkpoint's own, else as predicted
        self.postprocess = postprocess or info.get("action_postprocess", "continuous")
        self._post = action_postprocess(self.postprocess)
        if feature_noise not in FEATURE_NOISE:
            raise ValueError(f"unknown feature_noise {feature_noise!r}; valid: {', '.join(FEATURE_NOISE)}")
        if feature_noise != "per_chunk" and "feature_generator" not in inspect.signature(self.model.predict).parameters:
            raise ValueError(f"feature_noise={feature_noise}: a {model_name} has no video features to hold fixed")
        self.feature_noise = feature_noise
        if self.postprocess != "continuous" and lay["action"] != LIBERO_ACTION_CONVENTION:
            raise ValueError(f"postprocess={self.postprocess} is LIBERO's convention; this {model_name} checkpoint "
                             f"acts in {lay['action']!r}: use postprocess=continuous")
        self._episode_seed: dict[str, int] = {}

    def reset(self, episode: EpisodeInfo) -> None:
        mix = zlib.crc32(f"{episode.task.suite}/{episode.task.task_id}/{episode.init_id}".encode())
        self._episode_seed[episode.key] = (self.seed * 1_000_003 + episode.seed * 7919 + mix) & 0x7FFFFFFF

    def act(self, batch: ObservationBatch) -> np.ndarray:
        import torch

        chunks = []
        for i, (key, step) in enumerate(zip(batch.episode_keys, batch.steps)):
            dev = self.device
            images = {c: torch.from_numpy(np.ascontiguousarray(batch.images[c][i:i + 1])).to(dev) for c in self.cameras}
            seed = self._episode_seed.get(key, self.seed)
            generator = torch.Generator(dev).manual_seed(seed + int(step))
            fixed = {} if self.feature_noise == "per_chunk" else {
                "feature_generator": torch.Generator(dev).manual_seed(seed ^ 0x5EED)}  # the same draw every chunk
            chunk = self.model.predict(images, torch.from_numpy(batch.state[i:i + 1]).to(dev),
                                       self.text([batch.prompts[i]]).to(dev), generator=generator, steps=self.steps,
                                       **fixed)
            chunks.append(self._post({"actions": chunk.cpu().numpy()})["actions"].astype(np.float32))
        return np.concatenate(chunks)


def register_models() -> None:
    """One policy per registered model, under its name."""
    from bench.models.registry import load_models

    models = load_models()
    for name in models:
        entry = models.get(name)
        register(name, lambda checkpoint=None, seed=0, device="cpu", postprocess=None, feature_noise="per_chunk",
                 _name=name: TrainedPolicy(_name, checkpoint, seed, device=device, postprocess=postprocess,
                                           feature_noise=feature_noise),
                 help=f"{entry.help}; --checkpoint DIR (default: the shipped one, if any)",
                 options=("checkpoint", "seed", "device"),
                 args=(PolicyArg("postprocess", str, None, "how the predicted chunk becomes actions: "
                                 + "; ".join(f"{k}: {v[0]}" for k, v in ACTION_POSTPROCESS.items())
                                 + " (default: the checkpoint's own, else continuous)"),
                       PolicyArg("feature_noise", str, "per_chunk", "DiT4DiT's video noise in the future slot: "
                                 + "; ".join(f"{k}: {v}" for k, v in FEATURE_NOISE.items()))))
