"""One LIBERO task environment, set up the way the harness needs it.

Differences from a plain `OffScreenRenderEnv` loop, each for speed:
- cameras are not rendered inside `step`; `render()` renders the requested cameras
  on demand (only on steps where the policy looks), always from the current state;
- resets are soft (the MuJoCo model is kept) and every episode starts from an
  explicit initial state, so nothing leaks from one episode to the next.
"""

from __future__ import annotations

import contextlib
import io
import time

import numpy as np

from bench.sim.suites import LIBERO_CAMERAS, Protocol, TaskInfo


def quat_to_axis_angle(quat: np.ndarray) -> np.ndarray:
    """(x, y, z, w) quaternion -> axis-angle 3-vector (as openpi's LIBERO client computes it)."""
    q = np.asarray(quat, dtype=np.float64).copy()
    q[3] = np.clip(q[3], -1.0, 1.0)
    den = np.sqrt(1.0 - q[3] * q[3])
    if np.isclose(den, 0.0):
        return np.zeros(3)
    return q[:3] * 2.0 * np.arccos(q[3]) / den


def libero_state(obs: dict) -> np.ndarray:
    """8-d state: eef position, eef axis-angle, two gripper finger positions."""
    return np.concatenate(
        [obs["robot0_eef_pos"], quat_to_axis_angle(obs["robot0_eef_quat"]), obs["robot0_gripper_qpos"]]
    ).astype(np.float32)


class LiberoSim:
    """A LIBERO env for one task; reused across that task's episodes."""

    def __init__(self, task: TaskInfo, protocol: Protocol, hard_reset: bool = False, camera_obs: bool = False):
        from libero.libero.envs import OffScreenRenderEnv

        self.task, self.protocol = task, protocol
        res = protocol.resolution
        with contextlib.redirect_stdout(io.StringIO()):
            self.env = OffScreenRenderEnv(
                bddl_file_name=task.env_id,
                camera_heights=res,
                camera_widths=res,
                camera_names=[LIBERO_CAMERAS[c] for c in protocol.cameras],
                use_camera_obs=camera_obs,  # the naive reference loop renders inside step
                hard_reset=hard_reset,
            )
        self._scene_index = None
        self.last_obs: dict = {}
        self.done = False
        self.steps = 0
        self.render_s = 0.0  # time spent rendering, for perf accounting
        self.step_s = 0.0

    def reset_to(self, init_state: np.ndarray, seed: int) -> None:
        """Soft reset, then set the exact initial state of this trial."""
        self.env.seed(seed)
        self.env.reset()
        # robosuite's gripper integrates the sign of its commands in `current_action`, which only a
        # hard reset (a new model) clears: without this, the last episode's grip leaks into the next.
        for robot in self.env.robots:
            robot.gripper.current_action = np.zeros_like(robot.gripper.current_action)
        self.last_obs = self.env.set_init_state(np.asarray(init_state, dtype=np.float64))
        self.done = False
        self.steps = 0

    def step(self, action: np.ndarray) -> bool:
        """One control step; returns the env's done (task success)."""
        t = time.perf_counter()
        self.last_obs, _, done, _ = self.env.step(np.asarray(action, dtype=np.float64))
        self.step_s += time.perf_counter() - t
        self.steps += 1
        self.done = bool(done)
        return self.done

    def render(self, cameras: tuple[str, ...], resolution: int | None = None, raw: bool = False
               ) -> dict[str, np.ndarray]:
        """Render `cameras` from the current state, upright if the protocol flips. `raw` keeps
        MuJoCo's upside-down frame, as LIBERO's dataset files store it."""
        t = time.perf_counter()
        res = resolution or self.protocol.resolution
        images = {}
        for cam in cameras:
            img = self.env.sim.render(width=res, height=res, camera_name=LIBERO_CAMERAS[cam])
            flip = self.protocol.flip_images and not raw
            images[cam] = np.ascontiguousarray(img[::-1, ::-1] if flip else img)
        self.render_s += time.perf_counter() - t
        return images

    def lowdim(self) -> dict[str, np.ndarray]:
        """Per-step low-dimensional data in LIBERO's dataset layout."""
        o = self.last_obs
        return {
            "ee_states": np.concatenate([o["robot0_eef_pos"], quat_to_axis_angle(o["robot0_eef_quat"])]),
            "gripper_states": np.asarray(o["robot0_gripper_qpos"], dtype=np.float64),
            "joint_states": np.asarray(o["robot0_joint_pos"], dtype=np.float64),
            # LIBERO's robot_states: gripper qpos, eef pos, eef quat
            "robot_states": np.concatenate([o["robot0_gripper_qpos"], o["robot0_eef_pos"], o["robot0_eef_quat"]]),
        }

    def state(self) -> np.ndarray:
        return libero_state(self.last_obs)

    def privileged(self) -> dict:
        """Scene state for experts (object poses and extents, sites, joints, goal)."""
        from bench.sim.libero.privileged import SceneIndex, snapshot

        if self._scene_index is None:
            self._scene_index = SceneIndex(self.env.env)
        return snapshot(self.env.env, self._scene_index)

    def sim_state(self) -> np.ndarray:
        return np.asarray(self.env.get_sim_state(), dtype=np.float64)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.env.close()
