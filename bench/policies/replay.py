"""`replay`: executes a demo file's actions from the demo's recorded initial state.

It checks the harness end to end (init states, action convention, determinism):
a replayed successful demo must succeed. It also tracks how far the observed
end-effector drifts from the demo's recorded one (`divergence`).
"""

from __future__ import annotations

import numpy as np

from bench.demos.libero_hdf5 import Demo, read_demos
from bench.policies import register
from bench.policies.contract import EpisodeInfo, ObservationBatch, PolicySpec
from bench.sim.suites import LIBERO_ACTION_CONVENTION, LIBERO_STATE_LAYOUT, TaskInfo


class ReplayPolicy:
    spec = PolicySpec(cameras=(), state_layout=LIBERO_STATE_LAYOUT, action_dim=7,
                      action_convention=LIBERO_ACTION_CONVENTION, chunk_length=8)

    def __init__(self, demos: str):
        self.checkpoint_path = demos  # what decides its actions: every record carries the demo file's hash
        self.demos = read_demos(demos)
        self._active: dict[str, Demo] = {}
        self.divergence: dict[str, float] = {}  # max |observed eef pos - recorded eef pos|

    def _for_task(self, task: TaskInfo) -> list[Demo]:
        return [d for d in self.demos if d.task_name == task.name]

    def init_states(self, task: TaskInfo) -> list[np.ndarray]:
        """Demos start from their own recorded states, with no wait steps."""
        return [d.init_state for d in self._for_task(task)]

    def describe_coverage(self) -> str:
        names = sorted({d.task_name for d in self.demos})
        return f"{self.checkpoint_path} holds demos of: {', '.join(names)}"

    def reset(self, episode: EpisodeInfo) -> None:
        self._active[episode.key] = self._for_task(episode.task)[episode.init_id]
        self.divergence[episode.key] = 0.0

    def act(self, batch: ObservationBatch) -> np.ndarray:
        H = self.spec.chunk_length
        out = np.zeros((len(batch), H, 7))
        for i, key in enumerate(batch.episode_keys):
            demo, t = self._active[key], int(batch.steps[i])
            chunk = demo.actions[t:t + H]
            out[i, :len(chunk)] = chunk
            out[i, len(chunk):, 6] = demo.actions[-1, 6]  # past the end: hold still, keep the gripper
            if "ee_states" in demo.obs and t < len(demo.obs["ee_states"]):
                gap = float(np.abs(batch.state[i, :3] - demo.obs["ee_states"][t, :3]).max())
                self.divergence[key] = max(self.divergence[key], gap)
        return out


register("replay", lambda demos=None, seed=0: _make(demos), help="replay a demo file's actions (--demos FILE)",
         options=("demos",))


def _make(demos):
    if demos is None:
        raise ValueError("policy 'replay' needs --demos FILE (a LIBERO-format HDF5 demo file)")
    return ReplayPolicy(demos)
