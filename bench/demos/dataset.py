"""One dataset loader for all training: LIBERO-layout HDF5 files, official or ours.

A sample is a training window at step t of one demo:

    images[cam]   (n_current + n_future, H, W, 3) uint8, upright: frames t - stride*(n_current-1) .. t,
                  then t + stride .. t + stride*n_future (clamped to the demo's ends)
    state         (8,) eef pos, eef axis-angle, gripper qpos at t (the protocol's state layout)
    actions       (chunk, 7) actions t .. t+chunk-1, the last action repeated past the end
    action_mask   (chunk,) True where the action is real (not padding)
    language      the task instruction
    task          the LIBERO task name

Normalization statistics (mean, std, min, max, 1st and 99th percentiles of states
and actions) are computed once over every demo and saved as JSON, keyed by a
fingerprint of the files, so training and inference use the same numbers.
Files are opened lazily in each process (safe with DataLoader worker processes).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from bench.demos.libero_hdf5 import DemoFileError, demo_names, open_demo_file

CAMERA_KEYS = {"agentview": "agentview_rgb", "eye_in_hand": "eye_in_hand_rgb"}


@dataclass(frozen=True)
class WindowSpec:
    cameras: tuple[str, ...] = ("agentview", "eye_in_hand")
    n_current: int = 1
    n_future: int = 4
    future_stride: int = 2
    chunk: int = 8


@dataclass
class _DemoIndex:
    path: str
    group: str
    length: int
    task: str
    language: str


def _require(group: h5py.Group, key: str, path: Path):
    if key not in group:
        raise DemoFileError(f"{path}: key {group.name}/{key} is missing")
    return group[key]


def _state_keys(obs: h5py.Group, path: Path) -> list[str]:
    """ee_states (6) + gripper_states (2), or ee_pos + ee_ori + gripper_states in older files."""
    if "ee_states" in obs:
        keys = ["ee_states"]
    elif "ee_pos" in obs and "ee_ori" in obs:
        keys = ["ee_pos", "ee_ori"]
    else:
        raise DemoFileError(f"{path}: key {obs.name}/ee_states is missing (nor ee_pos + ee_ori)")
    _require(obs, "gripper_states", path)
    return keys + ["gripper_states"]


class LiberoDemoDataset:
    def __init__(self, paths: str | Path | list, spec: WindowSpec = WindowSpec(), stats_path: str | Path | None = None):
        self.paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
        self.spec = spec
        self.demos: list[_DemoIndex] = []
        for path in self.paths:
            self.demos.extend(self._index(path))
        if not self.demos:
            raise DemoFileError(f"{self.paths}: no demos")
        self._starts = np.cumsum([0] + [d.length for d in self.demos])
        self._files: dict[str, h5py.File] = {}
        self.stats_path = Path(stats_path) if stats_path else self.paths[0].with_suffix(".stats.json")
        self.stats = self._load_or_compute_stats()

    # ---------------------------------------------------------------- index
    def _index(self, path: Path) -> list[_DemoIndex]:
        out = []
        with open_demo_file(path) as f:
            data = _require(f, "data", path)
            for name in demo_names(data):
                g = data[name]
                n = len(_require(g, "actions", path))
                obs = _require(g, "obs", path)
                for cam in self.spec.cameras:
                    if len(_require(obs, CAMERA_KEYS[cam], path)) != n:
                        raise DemoFileError(f"{path}: {g.name}/obs/{CAMERA_KEYS[cam]} has a different length "
                                            f"than {g.name}/actions ({n})")
                _state_keys(obs, path)
                info_raw = g.attrs.get("problem_info", data.attrs.get("problem_info"))
                bddl = g.attrs.get("bddl_file_name", data.attrs.get("bddl_file_name"))
                if info_raw is None or bddl is None:
                    raise DemoFileError(f"{path}: attribute 'problem_info' or 'bddl_file_name' missing on "
                                        f"{g.name} and on /data")
                language = json.loads(info_raw).get("language_instruction", "")
                if isinstance(language, list):  # some LIBERO files store it as a list of words
                    language = " ".join(language)
                out.append(_DemoIndex(str(path), name, n, Path(str(bddl)).stem, language))
        return out

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _file(self, path: str) -> h5py.File:
        if path not in self._files:
            self._files[path] = h5py.File(path, "r")
        return self._files[path]

    def __getstate__(self):  # open handles do not pickle: reopen in the worker process
        state = dict(self.__dict__)
        state["_files"] = {}
        return state

    # ---------------------------------------------------------------- samples
    def locate(self, index: int) -> tuple[_DemoIndex, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} windows")
        d = int(np.searchsorted(self._starts, index, side="right") - 1)
        return self.demos[d], int(index - self._starts[d])

    def __getitem__(self, index: int) -> dict:
        demo, t = self.locate(index)
        s = self.spec
        g = self._file(demo.path)["data"][demo.group]
        obs = g["obs"]
        last = demo.length - 1
        past = [max(0, t - s.future_stride * j) for j in range(s.n_current - 1, -1, -1)]
        future = [min(last, t + s.future_stride * k) for k in range(1, s.n_future + 1)]
        frames = past + future
        images = {}
        for cam in s.cameras:
            ds = obs[CAMERA_KEYS[cam]]
            images[cam] = np.stack([ds[i] for i in frames])[:, ::-1, ::-1].copy()  # stored upside down
        state = np.concatenate([np.asarray(obs[k][t], dtype=np.float32).reshape(-1)
                                for k in _state_keys(obs, Path(demo.path))])
        end = min(demo.length, t + s.chunk)
        actions = np.asarray(g["actions"][t:end], dtype=np.float32)
        mask = np.zeros(s.chunk, dtype=bool)
        mask[: len(actions)] = True
        if len(actions) < s.chunk:
            actions = np.concatenate([actions, np.repeat(actions[-1:], s.chunk - len(actions), axis=0)])
        return {"images": images, "frame_ids": np.array(frames), "state": state, "actions": actions,
                "action_mask": mask, "language": demo.language, "task": demo.task}

    # ------------------------------------------------------------ statistics
    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for d in self.demos:
            h.update(f"{Path(d.path).name}/{d.group}/{d.length};".encode())
        return h.hexdigest()[:16]

    def _load_or_compute_stats(self) -> dict:
        fp = self.fingerprint()
        if self.stats_path.exists():
            saved = json.loads(self.stats_path.read_text())
            if saved.get("fingerprint") == fp:
                return saved
        stats = self.compute_stats()
        stats["fingerprint"] = fp
        self.stats_path.parent.mkdir(parents=True, exist_ok=True)
        self.stats_path.write_text(json.dumps(stats, indent=2))
        return stats

    def compute_stats(self) -> dict:
        states, actions = [], []
        for d in self.demos:
            g = self._file(d.path)["data"][d.group]
            obs = g["obs"]
            states.append(np.concatenate([np.asarray(obs[k][()], dtype=np.float64).reshape(d.length, -1)
                                          for k in _state_keys(obs, Path(d.path))], axis=1))
            actions.append(np.asarray(g["actions"][()], dtype=np.float64))

        def summary(x: np.ndarray) -> dict:
            return {"mean": x.mean(0).tolist(), "std": x.std(0).tolist(), "min": x.min(0).tolist(),
                    "max": x.max(0).tolist(), "q01": np.quantile(x, 0.01, axis=0).tolist(),
                    "q99": np.quantile(x, 0.99, axis=0).tolist()}

        return {"state": summary(np.concatenate(states)), "actions": summary(np.concatenate(actions)),
                "num_demos": len(self.demos), "num_steps": len(self), "spec": asdict(self.spec)}

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files = {}
