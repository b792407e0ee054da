"""A sim worker: one process that owns one LIBERO env at a time and runs episodes.

The runner talks to it over a pipe:

    runner -> worker   ("start", EpisodeStart)      begin an episode (abandons any current one)
                       ("chunk", key, actions)      execute these actions (already cut to the
                                                    executed prefix of the policy's chunk)
                       ("close",)
    worker -> runner   ("obs", key, observation)    the policy must act
                       ("done", key, result)        the episode ended (success or max steps)
                       ("error", key, message)      the simulator raised; the episode is lost

The env is created lazily for the first episode of a task and reused (soft reset)
for the next episodes of the same task.
"""

from __future__ import annotations

import hashlib
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.suites import Protocol, TaskInfo


@dataclass
class EpisodeStart:
    key: str
    task: TaskInfo
    protocol: Protocol
    init_state: np.ndarray
    seed: int
    wait_steps: int
    max_steps: int
    cameras: tuple[str, ...]  # the cameras the policy looks at
    video_path: str | None = None
    privileged: bool = False  # send the scene state too (scripted experts)
    record: int | None = None  # record a LIBERO-format trajectory with images at this size (see record_frames)
    record_pixel_path: str = "render_resize_uint8"  # bench.models.frames.DEMO_PIXEL_PATHS


class _Episode:
    def __init__(self, start: EpisodeStart, sim, env_create_s: float):
        self.start = start
        self.sim = sim
        self.t0 = time.perf_counter()
        self.timing = {"env_create_s": env_create_s, "reset_s": 0.0}
        self.frames: list[np.ndarray] = []
        self.trajectory: dict[str, list] | None = {} if start.record else None
        sim.render_s = sim.step_s = 0.0

    def step(self, action: np.ndarray) -> bool:
        """One policy step, recorded (state and observation before the action) if asked."""
        if self.trajectory is not None:
            rec = {"states": self.sim.sim_state(), "actions": np.asarray(action, dtype=np.float64),
                   **self.sim.lowdim()}
            for cam, img in record_frames(self.sim, ("agentview", "eye_in_hand"), self.start.record,
                                          self.start.record_pixel_path).items():
                rec[f"{cam}_rgb"] = img
            for k, v in rec.items():
                self.trajectory.setdefault(k, []).append(v)
        done = self.sim.step(action)
        self.frame()
        return done

    def frame(self) -> None:
        if self.start.video_path is not None:
            self.frames.append(self.sim.render(("agentview",))["agentview"])

    def observation(self) -> dict:
        s = self.start
        images = self.sim.render(s.cameras)
        obs = {"key": s.key, "images": images, "state": self.sim.state(), "prompt": s.task.language,
               "step": self.sim.steps}
        if s.privileged:
            obs["privileged"] = self.sim.privileged()
        return obs

    def result(self, success: bool) -> dict:
        video = None
        if self.start.video_path is not None and self.frames:
            video = _write_video(self.start.video_path, self.frames)
        timing = dict(self.timing, step_s=self.sim.step_s, render_s=self.sim.render_s,
                      episode_s=time.perf_counter() - self.t0)
        # the whole simulator state at the end: equal digests mean a rerun reproduced the episode bit for bit
        final = hashlib.sha256(self.sim.sim_state().tobytes()).hexdigest()[:16]
        out = {"success": success, "steps": self.sim.steps, "timing": timing, "video": video, "final_state": final}
        if self.trajectory:
            out["trajectory"] = {k: np.stack(v) for k, v in self.trajectory.items()}
        return out


def record_frames(sim, cameras: tuple[str, ...], size: int, pixel_path: str = "render_resize_uint8"
                  ) -> dict[str, np.ndarray]:
    """Demo frames: the render the policy would see (protocol resolution, upright) through the one pixel path
    (bench/models/frames.py) to `size`, stored in LIBERO's file convention (upside down when the protocol
    flips), so the dataset's upright frame equals the model's frame of the observation, byte for byte.
    `native_render` renders at `size` directly, as demos were made before."""
    from bench.models.frames import model_frames

    if pixel_path == "native_render":
        return sim.render(cameras, size, raw=True)
    out = {}
    for cam, img in sim.render(cameras).items():
        small = model_frames(img, size)
        out[cam] = np.ascontiguousarray(small[::-1, ::-1] if sim.protocol.flip_images else small)
    return out


def _write_video(path: str, frames: list[np.ndarray], fps: int = 20) -> str:
    import imageio.v2 as imageio

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(path, fps=fps, codec="libx264", quality=6, macro_block_size=1) as writer:
        for f in frames:
            writer.append_data(f)
    return path


def worker_main(conn, worker_id: int) -> None:
    """Entry point of the worker process."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # one rasteriser thread per worker: the workers already fill the cores, and Mesa's llvmpipe (the software
    # renderer behind headless EGL here) otherwise starts one thread per core in each of them. Same pixels.
    os.environ.setdefault("LP_NUM_THREADS", "1")
    from bench.sim.libero_env import LiberoSim

    sim = None
    sim_task: str | None = None
    ep: _Episode | None = None
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            break
        kind = msg[0]
        if kind == "close":
            break
        key = msg[1].key if kind == "start" else msg[1]
        try:
            if kind == "start":
                start: EpisodeStart = msg[1]
                create_s = 0.0
                if sim is None or sim_task != start.task.bddl_file or sim.protocol != start.protocol:
                    if sim is not None:
                        sim.close()
                    t = time.perf_counter()
                    sim, sim_task = LiberoSim(start.task, start.protocol), start.task.bddl_file
                    create_s = time.perf_counter() - t
                ep = _Episode(start, sim, create_s)
                t = time.perf_counter()
                sim.reset_to(start.init_state, start.seed)
                ep.timing["reset_s"] = time.perf_counter() - t
                ep.frame()
                wait = np.asarray(start.protocol.wait_action, dtype=np.float64)
                for _ in range(start.wait_steps):  # objects settle; done is ignored, as openpi does
                    ep.step(wait)  # recorded too: a demo is every action from its initial state
                sim.steps = 0  # wait steps do not count towards the policy's step budget
                conn.send(("obs", key, ep.observation()))
            elif kind == "chunk":
                if ep is None or ep.start.key != key:
                    raise RuntimeError(f"chunk for episode {key} which is not running here")
                done = False
                for action in msg[2]:
                    done = ep.step(action)
                    if done or sim.steps >= ep.start.max_steps:
                        break
                if done or sim.steps >= ep.start.max_steps:
                    conn.send(("done", key, ep.result(done)))
                    ep = None
                else:
                    conn.send(("obs", key, ep.observation()))
            else:
                raise RuntimeError(f"unknown message {kind!r}")
        except Exception as exc:  # the simulator raised: report, drop the env, keep serving
            conn.send(("error", key, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"))
            if sim is not None:
                sim.close()
            sim, sim_task, ep = None, None, None
    if sim is not None:
        sim.close()
