"""Reference policies with no learning: lower bounds and harness checks."""

from __future__ import annotations

import zlib

import numpy as np

from bench.policies import register
from bench.policies.contract import EpisodeInfo, ObservationBatch, PolicySpec
from bench.sim.suites import GR1_PROTOCOL, LIBERO_ACTION_CONVENTION, LIBERO_STATE_LAYOUT

# Both cameras are declared so these policies cost the runner what a real
# vision policy costs (the perf benchmark relies on it).
LIBERO_SPEC = PolicySpec(
    cameras=("agentview", "eye_in_hand"),
    state_layout=LIBERO_STATE_LAYOUT,
    action_dim=7,
    action_convention=LIBERO_ACTION_CONVENTION,
    chunk_length=8,
)


class ZeroPolicy:
    """No motion, gripper held open. Succeeds only if the task is already solved."""

    spec = LIBERO_SPEC

    def reset(self, episode: EpisodeInfo) -> None:
        pass

    def act(self, batch: ObservationBatch) -> np.ndarray:
        chunks = np.zeros((len(batch), self.spec.chunk_length, self.spec.action_dim), dtype=np.float32)
        chunks[..., -1] = -1.0
        return chunks


class RandomPolicy:
    """Uniform actions in [-1, 1]^7, reproducible per episode (seeded by seed, task, init id)."""

    spec = LIBERO_SPEC

    def __init__(self, seed: int = 0):
        self.seed = seed
        self._rngs: dict[str, np.random.Generator] = {}

    def reset(self, episode: EpisodeInfo) -> None:
        mix = zlib.crc32(f"{episode.task.suite}/{episode.task.task_id}/{episode.init_id}".encode())
        self._rngs[episode.key] = np.random.default_rng([self.seed, episode.seed, mix])

    def act(self, batch: ObservationBatch) -> np.ndarray:
        shape = (self.spec.chunk_length, self.spec.action_dim)
        return np.stack([self._rngs[k].uniform(-1.0, 1.0, size=shape) for k in batch.episode_keys])


register("zero", lambda seed=0: ZeroPolicy(), help="no motion, gripper open (a lower bound)")
register("random", lambda seed=0: RandomPolicy(seed), help="uniform random actions, seeded per episode")


class HoldPolicy:
    """RoboCasa GR1: command the joint positions the robot is at (absolute targets), so it stays put.
    The GR1 counterpart of `zero`: a lower bound and a harness check for a 29-d joint-space suite."""

    spec = PolicySpec(cameras=("ego_view",), state_layout=GR1_PROTOCOL.state_layout, action_dim=29,
                      action_convention=GR1_PROTOCOL.action_convention, chunk_length=16)

    def reset(self, episode: EpisodeInfo) -> None:
        pass

    def act(self, batch: ObservationBatch) -> np.ndarray:
        state = np.asarray(batch.state, dtype=np.float32)
        return np.repeat(state[:, None, :], self.spec.chunk_length, axis=1)


register("hold", lambda seed=0: HoldPolicy(), help="GR1: hold the current joint positions (a lower bound)")
