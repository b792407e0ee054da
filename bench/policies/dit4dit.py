"""`dit4dit`: a trained DiT4DiT checkpoint behind the policy contract.

Each `act` call runs one early-exit video-DiT pass per observation (up to the
feature block) and `euler_steps` action-DiT passes (4 by default), then returns
the whole predicted chunk; the suite's protocol decides how much of it runs
before the next call (8 of 8 on LIBERO, as in the official config).

Without --checkpoint the bundled tiny checkpoint (trained here on our
libero_spatial demos) is used when the package has one.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from bench.policies import register
from bench.policy import EpisodeInfo, ObservationBatch, PolicySpec
from bench.suites import LIBERO_ACTION_CONVENTION, LIBERO_STATE_LAYOUT

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
BUNDLED = CHECKPOINTS / "dit4dit_tiny_libero_spatial"


def bundled_for(suite: str) -> tuple[str, Path] | None:
    """(policy, checkpoint folder) of a checkpoint shipped in the package and trained on `suite`'s demos: its
    config.json says so (`suite`), or, for checkpoints from before that, its folder name ends in the suite's."""
    import json

    for folder in sorted(CHECKPOINTS.glob("*/")):
        cfg_path = folder / "config.json"
        if not cfg_path.exists():
            continue
        cfg = json.loads(cfg_path.read_text())
        if cfg.get("suite", suite if folder.name.endswith("_" + suite) else None) == suite:
            return cfg.get("policy", "dit4dit"), folder
    return None


class DiT4DiTPolicy:
    def __init__(self, checkpoint: str | None = None, seed: int = 0, steps: int | None = None):
        import torch  # imported here: listing policies stays fast

        # The policy runs in the runner's process beside the sim workers; torch's default of one
        # spinning thread per core fights them for the CPU (measured here: ~6x slower episodes).
        torch.set_num_threads(1)

        from bench.training import load_checkpoint

        path = Path(checkpoint) if checkpoint else BUNDLED
        if checkpoint is None and not (path / "model.safetensors").exists():
            raise FileNotFoundError(
                f"no --checkpoint given and no bundled checkpoint at {path}; train one with "
                "`bench train --policy dit4dit --config tiny --data <demos.hdf5> --out <dir>` and pass "
                "--checkpoint <dir>/checkpoint")
        self.checkpoint_path = path  # the runner hashes it into every episode record
        self.model, self.text, self.stats = load_checkpoint(path)
        self.model.eval()
        self.cfg = self.model.cfg
        self.seed = seed
        self.steps = steps
        self.spec = PolicySpec(cameras=tuple(self.cfg.cameras), state_layout=LIBERO_STATE_LAYOUT,
                               action_dim=self.cfg.action.action_dim, action_convention=LIBERO_ACTION_CONVENTION,
                               chunk_length=self.cfg.action.chunk)
        self._episode_seed: dict[str, int] = {}

    def reset(self, episode: EpisodeInfo) -> None:
        mix = zlib.crc32(f"{episode.task.suite}/{episode.task.task_id}/{episode.init_id}".encode())
        self._episode_seed[episode.key] = (self.seed * 1_000_003 + episode.seed * 7919 + mix) & 0x7FFFFFFF

    def act(self, batch: ObservationBatch) -> np.ndarray:
        import torch

        # One row at a time, each with noise seeded by (episode, step). Which rows share a batch depends on
        # worker timing, and a batched matmul differs from a single-row one in the last bits (measured:
        # 2.4e-7 on the bundled checkpoint), which 220 closed-loop sim steps can grow into a different
        # outcome. Row by row, a rerun with the same seeds gives the same episodes; on one CPU thread
        # batching saved almost nothing (results/perf/policy_tiny.json: 27 ms per row at batch 1, 24 at 8).
        chunks = []
        for i, (key, step) in enumerate(zip(batch.episode_keys, batch.steps)):
            images = {c: torch.from_numpy(np.ascontiguousarray(batch.images[c][i:i + 1])) for c in self.cfg.cameras}
            generator = torch.Generator().manual_seed(self._episode_seed.get(key, self.seed) + int(step))
            chunk = self.model.predict(images, torch.from_numpy(batch.state[i:i + 1]), self.text([batch.prompts[i]]),
                                       generator=generator, steps=self.steps)
            chunks.append(chunk.numpy().astype(np.float32))
        return np.concatenate(chunks)

register("dit4dit", lambda checkpoint=None, seed=0: DiT4DiTPolicy(checkpoint, seed),
         help="DiT4DiT (video DiT features -> action DiT); --checkpoint DIR (default: the bundled tiny one)",
         options=("checkpoint", "seed"))
