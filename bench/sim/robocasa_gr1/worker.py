"""RoboCasa GR1 inside a sim worker, which runs in the environment of `bench setup robocasa-gr1`.

The env is the official gym wrapper under its official id (`gr1_unified/<Task>_GR1ArmsAndWaistFourierHands_Env`,
as GR00T's and DiT4DiT's evaluators make it), so observations, image processing (ego view 1280x800,
flipped, padded square, resized to 256) and success (`info["success"]`) are theirs; this module only
packs the 29-d state and unpacks 29-d actions (bench/sim/robocasa_gr1/layout.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
import time

import numpy as np

from bench.core.provenance import package_versions
from bench.sim.backend import episode_seed
from bench.sim.robocasa_gr1 import layout

# Found, not imported: robocasa_gr1 scans its object registries at import, which must wait for assets.use().
if importlib.util.find_spec("robocasa_gr1") is None:
    raise ImportError("robocasa_gr1 is not installed in this Python environment (the GR1 worker runs in the one "
                      "`bench setup robocasa-gr1` makes)")

PACKAGES = ("praxis-robocasa-gr1", "praxis-robosuite", "mujoco", "numpy", "gymnasium")
EGO_VIEW = "video.ego_view_pad_res256_freq20"  # the wrapper's processed ego view
INSTRUCTION = "annotation.human.coarse_action"  # what GR00T's policy is prompted with


def settings() -> dict:
    """What `bench setup robocasa-gr1` recorded (the runner passes it in the environment)."""
    return json.loads(os.environ.get("BENCH_BACKEND_SETTINGS") or "{}")


class GR1Sim:
    def __init__(self, task, protocol):
        from bench.sim.robocasa_gr1 import assets

        assets.use(settings().get("assets"))  # raises AssetsError naming the setup step when missing
        import gymnasium as gym
        import robocasa_gr1.utils.gym_utils.gymnasium_groot  # noqa: F401  (registers the gr1_unified ids)

        if protocol.resolution != 256 or tuple(protocol.cameras) != ("ego_view",):
            raise ValueError("the GR1 env renders one camera, ego_view, at 256 px (its wrapper's processing); "
                             f"protocol asks for {protocol.cameras} at {protocol.resolution}")
        self.task, self.protocol = task, protocol
        self.env = gym.make(task.env_id, enable_render=True, disable_env_checker=True)
        self.obs: dict = {}
        self.steps = 0
        self.step_s = self.render_s = 0.0  # the wrapper renders inside step: its time counts as step time
        self.done = False

    def reset_to(self, initial, seed: int) -> None:
        """Trial `initial` (an int) resets the env from episode_seed(seed, initial). The wrapper's reset(seed)
        seeds numpy's global generator only, while the task samples its layout, object instances and
        placements from the env's own generator (made once, unseeded): reseeding that too makes a trial's
        scene the same on every reset, in every process. (Reset is hard: the scene is rebuilt from it.)"""
        s = episode_seed(seed, int(initial))
        self.env.unwrapped.env.rng = np.random.default_rng(s)
        self.obs, _ = self.env.reset(seed=s)
        self.steps = 0
        self.done = False

    def step(self, action: np.ndarray) -> bool:
        t = time.perf_counter()
        self.obs, _, _, _, info = self.env.step(layout.unpack(np.asarray(action, dtype=np.float64), "action"))
        self.step_s += time.perf_counter() - t
        self.steps += 1
        self.done = bool(info["success"])
        return self.done

    def render(self, cameras, resolution=None, raw=False) -> dict[str, np.ndarray]:
        if resolution not in (None, 256) or raw:
            raise ValueError("the GR1 ego view is the wrapper's 256 px image; other sizes are not rendered")
        return {cam: self.obs[EGO_VIEW] for cam in cameras}

    def state(self) -> np.ndarray:
        return layout.pack(self.obs, "state")

    def instruction(self) -> str:
        """This episode's instruction (it names the sampled object), as GR00T's evaluator prompts with it."""
        return str(self.obs[INSTRUCTION])

    def lowdim(self) -> dict[str, np.ndarray]:
        return {"joint_states": self.state().astype(np.float64)}

    def privileged(self) -> dict:
        raise NotImplementedError("no scripted expert drives the GR1 humanoid: privileged scene state is LIBERO-only")

    def sim_state(self) -> np.ndarray:
        return np.asarray(self.env.unwrapped.env.sim.get_state().flatten(), dtype=np.float64)

    def close(self) -> None:
        try:
            self.env.close()
        except Exception:
            pass


def make(task, protocol) -> GR1Sim:
    return GR1Sim(task, protocol)


def versions() -> dict:
    out = package_versions(PACKAGES)
    out["assets"] = settings().get("assets_kind")  # "standin" results are not comparable to anyone's
    return out
