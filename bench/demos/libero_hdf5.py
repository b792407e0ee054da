"""Read and write demonstration files in LIBERO's (robomimic's) HDF5 layout.

    data                        attrs: problem_info (JSON), bddl_file_name, bddl_file_content, env_args, ...
    data/demo_<i>/actions       (T, 7) float
    data/demo_<i>/states        (T, S) flattened MuJoCo states; states[0] is the initial state
    data/demo_<i>/obs/...       (optional here) ee_states, gripper_states, joint_states, images
                                attrs: num_samples, init_state (optional)
    data/demo_<i>/obs/frame_steps  (ours, only in files made with frame_every > 1) the step of each stored
                                camera frame: the image datasets then hold those frames only, so a reader
                                that expects a frame per step fails on the lengths instead of misreading

Files we write may hold demos of several tasks: a demo group may then carry its
own `bddl_file_name` / `problem_info` attributes, which override the file's.
Images are stored as MuJoCo renders them (upside down), like LIBERO's files;
readers flip them (`LiberoDemoDataset` does).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np


class DemoFileError(ValueError):
    """A demo file that cannot be read; the message names the file and the key."""


@dataclass
class Demo:
    name: str  # group name, e.g. demo_3
    task_name: str  # LIBERO task name = BDDL file name without .bddl
    language: str
    actions: np.ndarray
    states: np.ndarray
    init_state: np.ndarray
    obs: dict[str, np.ndarray] = field(default_factory=dict)


def _attr(group: h5py.Group, parent: h5py.Group, name: str, path: Path):
    if name in group.attrs:
        return group.attrs[name]
    if name in parent.attrs:
        return parent.attrs[name]
    raise DemoFileError(f"{path}: attribute {name!r} missing on {group.name} and on {parent.name}")


def _dataset(group: h5py.Group, key: str, path: Path) -> np.ndarray:
    if key not in group:
        raise DemoFileError(f"{path}: key {group.name}/{key} is missing")
    return np.asarray(group[key][()])


def open_demo_file(path: Path) -> h5py.File:
    """Open for reading; a missing or corrupt file is a DemoFileError naming it."""
    if not path.is_file():
        raise DemoFileError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DemoFileError(f"{path}: not a readable HDF5 file ({exc})") from None


def _natural(text: str) -> tuple:
    """Sort key that orders the numbers inside a string by value (attempt10 after attempt9)."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text) if t)


def demo_identity(group: h5py.Group) -> str:
    """What a demo is, whatever its group is called: its episode key (suite/task/attempt) where the file records
    one, else its group name (official LIBERO files)."""
    key = group.attrs.get("episode_key")
    return str(key) if key is not None else group.name.rsplit("/", 1)[-1]


def demo_names(data: h5py.Group) -> list[str]:
    """demo_<i> groups in one canonical order: by episode key where every demo records one, else numeric
    (demo_10 after demo_9). `bench demos generate` names a demo when its worker finishes, which depends on
    timing, so two generations of the same demos differ in names but read back in the same order."""
    names = sorted((k for k in data if k.startswith("demo_")), key=lambda k: int(k.split("_")[1]))
    if names and all("episode_key" in data[n].attrs for n in names):
        names.sort(key=lambda n: _natural(str(data[n].attrs["episode_key"])))
    return names


def read_demos(path: str | Path, obs_keys: tuple[str, ...] = ("ee_states",)) -> list[Demo]:
    """All demos of a LIBERO-layout file, with the requested low-dim obs that exist."""
    path = Path(path)
    with open_demo_file(path) as f:
        if "data" not in f:
            raise DemoFileError(f"{path}: key 'data' is missing (not a LIBERO/robomimic demo file)")
        data = f["data"]
        names = demo_names(data)
        if not names:
            raise DemoFileError(f"{path}: 'data' holds no demo_<i> groups")
        demos = []
        for name in names:
            g = data[name]
            bddl = str(_attr(g, data, "bddl_file_name", path))
            info = json.loads(_attr(g, data, "problem_info", path))
            states = _dataset(g, "states", path)
            actions = _dataset(g, "actions", path)
            if len(states) != len(actions):
                raise DemoFileError(f"{path}: {g.name} has {len(states)} states but {len(actions)} actions")
            init = np.asarray(g.attrs["init_state"]) if "init_state" in g.attrs else states[0]
            obs = {}
            if "obs" in g:
                obs = {k: np.asarray(g["obs"][k][()]) for k in obs_keys if k in g["obs"]}
            demos.append(Demo(name, Path(bddl).stem, info.get("language_instruction", ""), actions, states,
                              init, obs))
        return demos


def write_demos(path: str | Path, demos: list[Demo], bddl_file: str, problem_info: dict,
                env_args: dict | None = None) -> None:
    """Write demos of one task (the file's attributes) in the LIBERO layout."""
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["bddl_file_name"] = bddl_file
        data.attrs["bddl_file_content"] = Path(bddl_file).read_text() if Path(bddl_file).is_file() else ""
        data.attrs["problem_info"] = json.dumps(problem_info)
        data.attrs["env_args"] = json.dumps(env_args or {})
        data.attrs["num_demos"] = len(demos)
        data.attrs["total"] = int(sum(len(d.actions) for d in demos))
        for i, d in enumerate(demos):
            g = data.create_group(f"demo_{i}")
            g.attrs["num_samples"] = len(d.actions)
            g.attrs["init_state"] = d.init_state
            g.create_dataset("actions", data=d.actions)
            g.create_dataset("states", data=d.states)
            rewards = np.zeros(len(d.actions))
            rewards[-1] = 1.0
            g.create_dataset("rewards", data=rewards)
            g.create_dataset("dones", data=rewards.astype(np.uint8))
            obs = g.create_group("obs")
            for k, v in d.obs.items():
                obs.create_dataset(k, data=v)


OBS_KEYS = ("agentview_rgb", "eye_in_hand_rgb", "ee_states", "gripper_states", "joint_states")


def _data_attr(path: str | Path, name: str, default):
    """An attribute of a demo file's /data group; None for a file that does not exist or holds no demos, and
    `default` for files from before the attribute existed."""
    path = Path(path)
    if not path.exists():
        return None
    with h5py.File(path, "r") as f:
        if "data" not in f or not len(f["data"]):
            return None
        return f["data"].attrs.get(name, default)


def file_pixel_path(path: str | Path) -> str | None:
    """How a demo file's frames were made (bench.sim.frames.DEMO_PIXEL_PATHS); 'native_render' for files from
    before the attribute existed."""
    value = _data_attr(path, "pixel_path", "native_render")
    return None if value is None else str(value)


def file_frame_every(path: str | Path) -> int | None:
    """Every how many steps a demo file holds camera frames (1: every step, LIBERO's layout)."""
    value = _data_attr(path, "frame_every", 1)
    return None if value is None else int(value)


def file_suite(path: str | Path) -> str | None:
    """The suite a demo file was generated from (our files say so; official LIBERO files do not)."""
    path = Path(path)
    if not path.is_file():
        return None
    with h5py.File(path, "r") as f:
        suite = f["data"].attrs.get("suite") if "data" in f else None
    return str(suite) if suite is not None else None


def file_unsolved(path: str | Path) -> list[str]:
    """Task names a generation on this file kept no demo of in a whole round (bench.eval.demos skips them)."""
    path = Path(path)
    if not path.is_file():
        return []
    with h5py.File(path, "r") as f:
        return sorted(json.loads(f["data"].attrs.get("unsolved", "[]"))) if "data" in f else []


def demo_counts(path: str | Path) -> dict[str, int]:
    """Demos per task name in a demo file (none if there is no file yet)."""
    out: dict[str, int] = {}
    if not Path(path).is_file():
        return out
    with h5py.File(path, "r") as f:
        for name in f.get("data", {}):
            task = Path(str(f["data"][name].attrs.get("bddl_file_name", ""))).stem
            out[task] = out.get(task, 0) + 1
    return out


class DemoWriter:
    """Appends demos (one task each) to a LIBERO-layout file. The file is opened for each demo
    and closed again, so a run that is killed (even mid-generation) leaves a readable file
    with every demo written so far, and a rerun tops it up."""

    def __init__(self, path: str | Path, file_attrs: dict):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(self.path, "a") as f:
            data = f.require_group("data")
            for k, v in file_attrs.items():
                data.attrs[k] = v if not isinstance(v, dict) else json.dumps(v)

    def counts(self) -> dict[str, int]:
        """Demos per task name already in the file."""
        return demo_counts(self.path)

    def episode_keys(self) -> set[str]:
        """Episode keys already in the file: a rerun must not repeat an attempt (same seed, same demo)."""
        with h5py.File(self.path, "r") as f:
            return {str(g.attrs["episode_key"]) for g in f["data"].values() if "episode_key" in g.attrs}

    def set_unsolved(self, names: list[str]) -> None:
        with h5py.File(self.path, "a") as f:
            f["data"].attrs["unsolved"] = json.dumps(sorted(set(names)))

    def add(self, trajectory: dict[str, np.ndarray], task_attrs: dict) -> str:
        with h5py.File(self.path, "a") as f:
            data = f["data"]
            name = f"demo_{len(data)}"
            g = data.create_group(name)
            n = len(trajectory["actions"])
            g.attrs["num_samples"] = n
            g.attrs["init_state"] = trajectory["states"][0]
            for k, v in task_attrs.items():
                g.attrs[k] = v if not isinstance(v, dict) else json.dumps(v)
            g.create_dataset("actions", data=trajectory["actions"])
            g.create_dataset("states", data=trajectory["states"])
            g.create_dataset("robot_states", data=trajectory["robot_states"])
            rewards = np.zeros(n, dtype=np.float64)
            rewards[-1] = 1.0
            g.create_dataset("rewards", data=rewards)
            g.create_dataset("dones", data=rewards.astype(np.uint8))
            obs = g.create_group("obs")
            if "frame_steps" in trajectory:  # frames on some steps only: say which
                steps = np.asarray(trajectory["frame_steps"], dtype=np.int64)
                if len(steps) < n:
                    obs.create_dataset("frame_steps", data=steps)
            for k in OBS_KEYS:
                v = trajectory[k]
                if v.dtype == np.uint8:  # images: chunk per frame, compress
                    obs.create_dataset(k, data=v, chunks=(1, *v.shape[1:]), compression="gzip", compression_opts=4)
                else:
                    obs.create_dataset(k, data=v)
            data.attrs["num_demos"] = len(data)
            data.attrs["total"] = int(data.attrs.get("total", 0)) + n
        return name

    def close(self) -> None:
        """Nothing stays open between demos; kept so callers can close symmetrically."""
