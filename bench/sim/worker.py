"""A sim worker: one process that owns one simulator env at a time and runs episodes.

It runs `python -m bench.sim.worker`, possibly in another Python environment than the runner's
(its backend decides), so messages are plain data (bench/sim/codec.py) over a socket:

    runner -> worker   ["start", EpisodeStart dict]  begin an episode (abandons any current one)
                       ["chunk", key, actions]       execute these actions (already cut to the
                                                     executed prefix of the policy's chunk)
                       ["close"]
    worker -> runner   ["hello", null, info]          sent once: backend, python, simulator versions,
                                                     or `error` when the backend cannot be imported
                       ["obs", key, observation]     the policy must act
                       ["done", key, result]         the episode ended (success or max steps)
                       ["error", key, message]       the simulator raised; the episode is lost

The env is created lazily for the first episode of a task and reused (soft reset)
for the next episodes of the same task.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import platform
import signal
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.sim.suites import Protocol, TaskInfo


@dataclass
class EpisodeStart:
    key: str
    task: TaskInfo
    protocol: Protocol
    initial: Any  # the task's initial condition: a state array or a seed (the backend's catalog says which)
    seed: int
    wait_steps: int
    max_steps: int
    cameras: tuple[str, ...]  # the cameras the policy looks at
    video_path: str | None = None
    privileged: bool = False  # send the scene state too (scripted experts)
    record: int | None = None  # record a LIBERO-format trajectory with images at this size (see record_frames)
    record_pixel_path: str = "render_resize_uint8"  # bench.sim.frames.DEMO_PIXEL_PATHS
    record_frame_every: int = 1  # record camera frames on every k-th step only (see frame_recorded)

    def to_message(self) -> dict:
        return dict(asdict(self), task=self.task.to_dict(), protocol=self.protocol.to_dict())

    @classmethod
    def from_message(cls, d: dict) -> "EpisodeStart":
        return cls(**dict(d, task=TaskInfo.from_dict(d["task"]), protocol=Protocol.from_dict(d["protocol"]),
                          cameras=tuple(d["cameras"])))


class _Episode:
    def __init__(self, start: EpisodeStart, sim, env_create_s: float):
        self.start = start
        self.sim = sim
        self.t0 = time.perf_counter()
        self.timing = {"env_create_s": env_create_s, "reset_s": 0.0}
        self.frames: list[np.ndarray] = []
        self.trajectory: dict[str, list] | None = {} if start.record else None
        self.first_frame: str | None = None  # frame_digest of the policy's first observation
        sim.render_s = sim.step_s = 0.0

    def step(self, action: np.ndarray) -> bool:
        """One policy step, recorded (state and observation before the action) if asked."""
        if self.trajectory is not None:
            s = self.start
            step = len(self.trajectory.get("actions", ()))
            rec = {"states": self.sim.sim_state(), "actions": np.asarray(action, dtype=np.float64),
                   **self.sim.lowdim()}
            if frame_recorded(step, s.record_frame_every, s.wait_steps):
                for cam, img in record_frames(self.sim, ("agentview", "eye_in_hand"), s.record,
                                              s.record_pixel_path).items():
                    rec[f"{cam}_rgb"] = img
                rec["frame_steps"] = step
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
        if self.first_frame is None:
            self.first_frame = frame_digest(images)
        instruction = getattr(self.sim, "instruction", None)  # a sim that words each episode's task itself
        prompt = (instruction() if instruction else None) or s.task.language
        obs = {"key": s.key, "images": images, "state": self.sim.state(), "prompt": prompt,
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
        out = {"success": success, "steps": self.sim.steps, "timing": timing, "video": video, "final_state": final,
               "first_frame": self.first_frame}
        if self.trajectory:
            out["trajectory"] = {k: np.stack(v) for k, v in self.trajectory.items()}
        return out


def frame_digest(images: dict[str, np.ndarray]) -> str | None:
    """'<H>x<W>:<sha256 prefix>' of the cameras' pixels (sorted by camera): the same initial state rendered by
    the same renderer gives the same digest, so a differing one is renderer drift, not dynamics. None for a
    policy that looks at no camera (the scripted expert)."""
    if not images:
        return None
    h = hashlib.sha256()
    for cam in sorted(images):
        h.update(cam.encode() + np.ascontiguousarray(images[cam]).tobytes())
    first = images[sorted(images)[0]]
    return f"{first.shape[0]}x{first.shape[1]}:{h.hexdigest()[:16]}"


def frame_recorded(step: int, every: int, wait_steps: int) -> bool:
    """Whether a demo records camera frames at `step` (counted from its first wait step): every `every`-th step,
    in phase with the policy's first observation (the step after the wait steps). Rendering is most of a
    demo's cost on a CPU, and neighbouring frames are nearly the same, so a training set may keep every
    k-th one; the physics, the states and the actions of every step are still recorded."""
    return (step - wait_steps) % every == 0


def record_frames(sim, cameras: tuple[str, ...], size: int, pixel_path: str = "render_resize_uint8"
                  ) -> dict[str, np.ndarray]:
    """Demo frames: the render the policy would see (protocol resolution, upright) through the one pixel path
    (bench/sim/frames.py) to `size`, stored in LIBERO's file convention (upside down when the protocol
    flips), so the dataset's upright frame equals the model's frame of the observation, byte for byte.
    `native_render` renders at `size` directly, as demos were made before."""
    from bench.sim.frames import model_frames

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


def serve(channel, backend_name: str) -> None:
    """Answer the runner's messages until it closes the channel."""
    from bench.sim.backend import get_backend

    try:
        backend = importlib.import_module(get_backend(backend_name).worker)
        hello = {"backend": backend_name, "python": platform.python_version(), "versions": backend.versions(),
                 "gl": os.environ.get("MUJOCO_GL")}  # the renderer: frames (first_frame) depend on it
    except Exception as exc:  # the backend's simulator is not installed in this environment
        channel.send(["hello", None, {"backend": backend_name, "error": f"{type(exc).__name__}: {exc}"}])
        return
    channel.send(["hello", None, hello])
    sim = None
    sim_key: tuple | None = None
    ep: _Episode | None = None
    while True:
        try:
            msg = channel.recv()
        except (EOFError, OSError):
            break
        kind = msg[0]
        if kind == "close":
            break
        key = msg[1]["key"] if kind == "start" else msg[1]
        try:
            if kind == "start":
                start = EpisodeStart.from_message(msg[1])
                if start.task.backend != backend_name:
                    raise RuntimeError(f"task {start.task.name} needs the {start.task.backend} backend, "
                                       f"this worker runs {backend_name}")
                create_s = 0.0
                env_key = (start.task.env_id, start.protocol)
                if sim is None or sim_key != env_key:
                    if sim is not None:
                        sim.close()
                    t = time.perf_counter()
                    sim, sim_key = backend.make(start.task, start.protocol), env_key
                    create_s = time.perf_counter() - t
                ep = _Episode(start, sim, create_s)
                t = time.perf_counter()
                sim.reset_to(start.initial, start.seed)
                ep.timing["reset_s"] = time.perf_counter() - t
                ep.frame()
                wait = np.asarray(start.protocol.wait_action, dtype=np.float64)
                for _ in range(start.wait_steps):  # objects settle; done is ignored, as openpi does
                    ep.step(wait)  # recorded too: a demo is every action from its initial state
                sim.steps = 0  # wait steps do not count towards the policy's step budget
                channel.send(["obs", key, ep.observation()])
            elif kind == "chunk":
                if ep is None or ep.start.key != key:
                    raise RuntimeError(f"chunk for episode {key} which is not running here")
                done = False
                for action in msg[2]:
                    done = ep.step(action)
                    if done or sim.steps >= ep.start.max_steps:
                        break
                if done or sim.steps >= ep.start.max_steps:
                    channel.send(["done", key, ep.result(done)])
                    ep = None
                else:
                    channel.send(["obs", key, ep.observation()])
            else:
                raise RuntimeError(f"unknown message {kind!r}")
        except Exception as exc:  # the simulator raised: report, drop the env, keep serving
            channel.send(["error", key, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"])
            if sim is not None:
                sim.close()
            sim, sim_key, ep = None, None, None
    if sim is not None:
        sim.close()


def main(argv: list[str] | None = None) -> None:
    """`python -m bench.sim.worker --fd N --backend NAME`: serve the runner on inherited socket N."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fd", type=int, required=True)
    ap.add_argument("--backend", required=True)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # one rasteriser thread per worker: the workers already fill the cores, and Mesa's llvmpipe (the software
    # renderer behind headless EGL here) otherwise starts one thread per core in each of them. Same pixels.
    os.environ.setdefault("LP_NUM_THREADS", "1")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runner's to handle; it closes the channel
    from multiprocessing.connection import Connection

    from bench.sim.codec import Channel

    channel = Channel(Connection(args.fd))
    try:
        serve(channel, args.backend)
    finally:
        channel.close()


if __name__ == "__main__":
    main()
