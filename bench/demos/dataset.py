"""One dataset loader for all training: LIBERO-layout HDF5 files (official or
ours) and LeRobot-format LIBERO datasets (as openpi uses), through one code path.

A sample is a training window at step t of one demo:

    images[cam]   (n_current + n_future, H, W, 3) uint8, upright: frames t - stride*(n_current-1) .. t,
                  then t + stride .. t + stride*n_future (clamped to the demo's ends)
    state         (8,) eef pos, eef axis-angle, gripper qpos at t (the protocol's state layout)
    actions       (chunk, 7) actions t .. t+chunk-1, the last action repeated past the end
    action_mask   (chunk,) True where the action is real (not padding)
    language      the task instruction
    task          the task name (LIBERO task name, or the instruction for LeRobot data)

Files made with frames on every k-th step only (`bench demos generate --frame-every K`) yield windows at the
steps that have frames; a window's other frames must then be a multiple of k apart (checked).

Normalization statistics (mean, std, min, max, 1st and 99th percentiles of states
and actions) are computed once over every demo and saved as JSON, keyed by a
fingerprint of the data, so training and inference use the same numbers.
Files are opened lazily in each process (safe with DataLoader worker processes).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import zlib
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from bench.demos.libero_hdf5 import DemoFileError, demo_identity, demo_names, open_demo_file

CAMERA_KEYS = {"agentview": "agentview_rgb", "eye_in_hand": "eye_in_hand_rgb"}
# LeRobot column names for our cameras: openpi's LIBERO dataset, then LeRobot's own convention.
LEROBOT_CAMERAS = {"agentview": ("image", "observation.images.image", "observation.images.agentview"),
                   "eye_in_hand": ("wrist_image", "observation.images.wrist_image",
                                   "observation.images.eye_in_hand")}
LEROBOT_STATE = ("state", "observation.state")
LEROBOT_ACTIONS = ("actions", "action")


@dataclass(frozen=True)
class WindowSpec:
    cameras: tuple[str, ...] = ("agentview", "eye_in_hand")
    n_current: int = 1
    n_future: int = 4
    future_stride: int = 2
    chunk: int = 8


@dataclass
class _DemoIndex:
    source: int  # index into the dataset's sources
    key: str  # HDF5 group name, or LeRobot episode index
    length: int
    task: str
    language: str
    frame_steps: tuple[int, ...] | None = None  # the steps that have camera frames (None: every step)
    identity: str | None = None  # what the demo is, whatever its key (HDF5: its episode key, if recorded)

    @property
    def windows(self) -> tuple[int, ...] | range:
        """The steps a training window can start at: those with frames."""
        return self.frame_steps if self.frame_steps is not None else range(self.length)

    def frame_at(self, step: int) -> int:
        """The latest step at or before `step` that has a frame (the first one if none does)."""
        if self.frame_steps is None:
            return step
        i = int(np.searchsorted(self.frame_steps, step, side="right")) - 1
        return self.frame_steps[max(i, 0)]


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


class Hdf5Source:
    """A LIBERO / robomimic HDF5 file. Images are stored upside down; we flip them."""

    def __init__(self, path: Path, cameras: tuple[str, ...], source_id: int):
        self.path, self.cameras = path, cameras
        self.demos: list[_DemoIndex] = []
        self._f: h5py.File | None = None
        self._frame_dir: Path | None = None  # use_frame_cache
        self._frame_cache: dict[str, np.ndarray] | None = None
        self._frame_rows: dict[str, int] = {}
        with open_demo_file(path) as f:
            data = _require(f, "data", path)
            for name in demo_names(data):
                g = data[name]
                n = len(_require(g, "actions", path))
                obs = _require(g, "obs", path)
                steps = tuple(int(i) for i in obs["frame_steps"][()]) if "frame_steps" in obs else None
                want, what = (n, "actions") if steps is None else (len(steps), "frame_steps")
                if steps is not None and (not steps or list(steps) != sorted(set(steps)) or steps[-1] >= n):
                    raise DemoFileError(f"{path}: {g.name}/obs/frame_steps is not increasing steps below {n}")
                for cam in cameras:
                    if len(_require(obs, CAMERA_KEYS[cam], path)) != want:
                        raise DemoFileError(f"{path}: {g.name}/obs/{CAMERA_KEYS[cam]} has a different length "
                                            f"than {g.name}/{what} ({want})")
                _state_keys(obs, path)
                info_raw = g.attrs.get("problem_info", data.attrs.get("problem_info"))
                bddl = g.attrs.get("bddl_file_name", data.attrs.get("bddl_file_name"))
                if info_raw is None or bddl is None:
                    raise DemoFileError(f"{path}: attribute 'problem_info' or 'bddl_file_name' missing on "
                                        f"{g.name} and on /data")
                language = json.loads(info_raw).get("language_instruction", "")
                if isinstance(language, list):  # some LIBERO files store it as a list of words
                    language = " ".join(language)
                self.demos.append(_DemoIndex(source_id, name, n, Path(str(bddl)).stem, language, steps,
                                             demo_identity(g)))

    def _group(self, demo: _DemoIndex) -> h5py.Group:
        if self._f is None:
            self._f = h5py.File(self.path, "r")
        return self._f["data"][demo.key]

    def frames(self, demo: _DemoIndex, cam: str, ids: list[int]) -> np.ndarray:
        """Frames of steps `ids` (steps that have frames)."""
        if demo.frame_steps is not None:
            ids = [demo.frame_steps.index(i) for i in ids]
        if self._frame_dir is not None:
            if self._frame_cache is None:  # opened lazily, as the HDF5 file is (worker processes reopen it)
                self._frame_cache = {c: np.load(self._frame_dir / f"{c}.npy", mmap_mode="r") for c in self.cameras}
            return self._frame_cache[cam][[self._frame_rows[demo.key] + i for i in ids]]
        ds = self._group(demo)["obs"][CAMERA_KEYS[cam]]
        return np.stack([ds[i] for i in ids])[:, ::-1, ::-1].copy()

    def use_frame_cache(self, progress=None) -> Path:
        """Read frames from a cache of this file's frames, decoded and upright, one uint8 .npy per camera
        memory-mapped (`<file>.frames/<key>/`), built on first use: a training step then reads its windows'
        frames as array rows instead of decompressing HDF5 chunks. The key covers the file's size, time and
        demos, so a changed file gets a new cache. Same bytes as the uncached path (tests/test_demos.py)."""
        stat = self.path.stat()
        key = hashlib.sha256(f"{stat.st_size}/{stat.st_mtime_ns}/{self.cameras}/".encode()
                             + ";".join(f"{d.key}:{len(d.windows)}" for d in self.demos).encode()).hexdigest()[:16]
        folder = self.path.with_name(self.path.name + ".frames") / key
        rows, total = {}, 0
        for d in self.demos:
            rows[d.key], total = total, total + len(d.windows)
        if not (folder / "done").exists():
            tmp = folder.with_name(f"{key}.tmp{os.getpid()}")  # each process builds its own: two may race
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            with h5py.File(self.path, "r") as f:
                for cam in self.cameras:
                    shape = f["data"][self.demos[0].key]["obs"][CAMERA_KEYS[cam]].shape[1:]
                    out = np.lib.format.open_memmap(tmp / f"{cam}.npy", mode="w+", dtype=np.uint8,
                                                    shape=(total, *shape))
                    for n, d in enumerate(self.demos):
                        frames = f["data"][d.key]["obs"][CAMERA_KEYS[cam]][()]
                        out[rows[d.key]: rows[d.key] + len(frames)] = frames[:, ::-1, ::-1]
                        if progress is not None:
                            progress(cam, n + 1, len(self.demos))
                    out.flush()
                    del out
            (tmp / "done").write_text(json.dumps({"file": self.path.name, "rows": total}))
            if folder.exists() and not (folder / "done").exists():
                shutil.rmtree(folder)  # left half-built by a process that was killed
            try:
                tmp.rename(folder)
            except OSError:  # another process finished the same cache first: use that one
                if not (folder / "done").exists():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        self._frame_dir, self._frame_cache, self._frame_rows = folder, None, rows
        return folder

    def states(self, demo: _DemoIndex, t: slice | int) -> np.ndarray:
        obs = self._group(demo)["obs"]
        parts = [np.asarray(obs[k][t], dtype=np.float32) for k in _state_keys(obs, self.path)]
        return np.concatenate([p.reshape(p.shape[0], -1) if p.ndim > 1 else p for p in parts], axis=-1)

    def actions(self, demo: _DemoIndex, t: slice) -> np.ndarray:
        return np.asarray(self._group(demo)["actions"][t], dtype=np.float32)

    def close(self) -> None:
        self._frame_cache = None  # memory maps do not pickle cheaply either
        if self._f is not None:
            self._f.close()
            self._f = None


def _pick_column(columns, names: tuple[str, ...], what: str, path: Path) -> str:
    for n in names:
        if n in columns:
            return n
    raise DemoFileError(f"{path}: no {what} column (looked for {', '.join(names)}; has {', '.join(columns)})")


class LeRobotSource:
    """A LeRobot-format dataset folder (meta/info.json, meta/tasks.jsonl, data/*.parquet),
    like openpi's LIBERO dataset. Images there are already upright."""

    def __init__(self, root: Path, cameras: tuple[str, ...], source_id: int):
        self.root, self.cameras = root, cameras
        try:
            self.info = json.loads((root / "meta" / "info.json").read_text())
            tasks = [json.loads(line) for line in (root / "meta" / "tasks.jsonl").read_text().splitlines() if line]
            episodes = [json.loads(line) for line in (root / "meta" / "episodes.jsonl").read_text().splitlines()
                        if line]
        except (OSError, json.JSONDecodeError) as exc:
            raise DemoFileError(f"{root}: not a readable LeRobot dataset ({exc})") from None
        features = self.info.get("features", {})
        self.col_state = _pick_column(features, LEROBOT_STATE, "state", root)
        self.col_actions = _pick_column(features, LEROBOT_ACTIONS, "action", root)
        self.col_cams = {c: _pick_column(features, LEROBOT_CAMERAS[c], f"{c} image", root) for c in cameras}
        task_text = {t["task_index"]: t["task"] for t in tasks}
        self.chunks_size = int(self.info.get("chunks_size", 1000))
        self.data_path = self.info.get("data_path", "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet")
        self.demos = []
        for ep in episodes:
            text = ep["tasks"][0] if ep.get("tasks") else task_text.get(ep.get("task_index", 0), "")
            self.demos.append(_DemoIndex(source_id, str(ep["episode_index"]), int(ep["length"]), text, text))
        self._cache: OrderedDict[str, dict] = OrderedDict()

    def _episode(self, demo: _DemoIndex) -> dict:
        if demo.key not in self._cache:
            import pyarrow.parquet as pq

            idx = int(demo.key)
            path = self.root / self.data_path.format(episode_chunk=idx // self.chunks_size, episode_index=idx)
            try:
                table = pq.read_table(path).to_pydict()
            except (OSError, ValueError) as exc:
                raise DemoFileError(f"{path}: not a readable parquet file ({exc})") from None
            for col in [self.col_state, self.col_actions, *self.col_cams.values()]:
                if col not in table:
                    raise DemoFileError(f"{path}: column {col!r} is missing")
            self._cache[demo.key] = table
            while len(self._cache) > 8:
                self._cache.popitem(last=False)
        return self._cache[demo.key]

    def frames(self, demo: _DemoIndex, cam: str, ids: list[int]) -> np.ndarray:
        from PIL import Image

        col = self._episode(demo)[self.col_cams[cam]]
        out = []
        for i in ids:
            cell = col[i]
            raw = cell["bytes"] if isinstance(cell, dict) else cell
            out.append(np.asarray(Image.open(io.BytesIO(raw)).convert("RGB")))
        return np.stack(out)

    def states(self, demo: _DemoIndex, t: slice | int) -> np.ndarray:
        return np.asarray(self._episode(demo)[self.col_state][t], dtype=np.float32)

    def actions(self, demo: _DemoIndex, t: slice) -> np.ndarray:
        return np.asarray(self._episode(demo)[self.col_actions][t], dtype=np.float32)

    def close(self) -> None:
        self._cache.clear()


def open_source(path: Path, cameras: tuple[str, ...], source_id: int):
    if path.is_dir():
        if not (path / "meta" / "info.json").is_file():
            raise DemoFileError(f"{path}: a folder but not a LeRobot dataset (no meta/info.json)")
        return LeRobotSource(path, cameras, source_id)
    return Hdf5Source(path, cameras, source_id)


def fraction_of_demos(demos: list[_DemoIndex], fraction: float, seed: int = 0) -> list[_DemoIndex]:
    """The same `fraction` of each task's demos (at least one), in their file order. Each task's demos are
    ranked by a seeded permutation and a prefix kept, so smaller fractions are subsets of larger ones (a
    sample-efficiency curve adds demos, it does not swap them)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"demo fraction {fraction} must be in (0, 1]")
    if fraction == 1:
        return list(demos)
    keep: set[int] = set()
    by_task: dict[str, list[int]] = {}
    for i, d in enumerate(demos):
        by_task.setdefault(d.task, []).append(i)
    for task in sorted(by_task):
        ids = by_task[task]
        n = max(1, int(round(fraction * len(ids))))
        order = np.random.default_rng([seed, zlib.crc32(task.encode())]).permutation(len(ids))
        keep.update(ids[j] for j in order[:n])
    return [d for i, d in enumerate(demos) if i in keep]


class LiberoDemoDataset:
    def __init__(self, paths: str | Path | list, spec: WindowSpec = WindowSpec(), stats_path: str | Path | None = None,
                 demo_fraction: float = 1.0, fraction_seed: int = 0, frame_cache: bool = False):
        self.paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
        self.spec = spec
        self.sources = [open_source(p, spec.cameras, i) for i, p in enumerate(self.paths)]
        if frame_cache:  # HDF5 files only: a LeRobot folder keeps its own parquet reads
            for source in self.sources:
                if isinstance(source, Hdf5Source):
                    source.use_frame_cache()
        self.demos: list[_DemoIndex] = [d for s in self.sources for d in s.demos]
        if not self.demos:
            raise DemoFileError(f"{', '.join(map(str, self.paths))}: no demos")
        self.demos = fraction_of_demos(self.demos, demo_fraction, fraction_seed)
        self._check_frame_spacing()
        self._starts = np.cumsum([0] + [len(d.windows) for d in self.demos])
        default = self.paths[0] / "bench_stats.json" if self.paths[0].is_dir() else self.paths[0].with_suffix(".stats.json")
        self.stats_path = Path(stats_path) if stats_path else default
        self.stats = self._load_or_compute_stats()

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _check_frame_spacing(self) -> None:
        """With frames on some steps only, the window's other frames (`future_stride` apart) must have frames
        too, or the model would train on frames from other steps than it is told."""
        if self.spec.n_future == 0 and self.spec.n_current == 1:
            return  # one frame per window: any spacing will do
        for d in self.demos:
            if d.frame_steps is None or len(d.frame_steps) < 2:
                continue
            every = d.frame_steps[1] - d.frame_steps[0]
            if self.spec.future_stride % every:
                raise DemoFileError(f"{self.paths[d.source]}: {d.key} has frames every {every} steps; a window "
                                    f"needs frames {self.spec.future_stride} steps apart (future_stride), not a "
                                    f"multiple of {every}")

    def __getstate__(self):  # open handles do not pickle: each worker process reopens lazily
        for s in self.sources:
            s.close()
        return dict(self.__dict__)

    def balance(self) -> "pd.DataFrame":
        """Per file and task: demos, training windows, and each task's share of the samples under the two
        samplers (`windows`: every window alike, so longer and more numerous demos weigh more; `tasks`: every
        task alike)."""
        import pandas as pd

        rows = [{"file": self.paths[d.source].name, "task": d.task, "windows": len(d.windows)} for d in self.demos]
        table = (pd.DataFrame(rows).groupby(["file", "task"], sort=False)["windows"]
                 .agg(demos="count", windows="sum").reset_index())
        table["share_windows"] = table["windows"] / table["windows"].sum()
        table["share_tasks"] = 1.0 / len(table)
        return table

    def window_weights(self, balance: str) -> np.ndarray | None:
        """Sampling weights of the windows: None for `windows` (uniform), 1 / (the task's windows) for `tasks`."""
        if balance == "windows":
            return None
        if balance != "tasks":
            raise ValueError(f"unknown balance {balance!r}; valid: windows, tasks")
        tasks = np.repeat([d.task for d in self.demos], [len(d.windows) for d in self.demos])
        _, inverse, counts = np.unique(tasks, return_inverse=True, return_counts=True)
        return 1.0 / counts[inverse]

    def locate(self, index: int) -> tuple[_DemoIndex, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} windows")
        d = int(np.searchsorted(self._starts, index, side="right") - 1)
        return self.demos[d], int(self.demos[d].windows[index - self._starts[d]])

    def __getitem__(self, index: int) -> dict:
        demo, t = self.locate(index)
        s, src = self.spec, self.sources[demo.source]
        last = demo.length - 1
        past = [demo.frame_at(max(0, t - s.future_stride * j)) for j in range(s.n_current - 1, -1, -1)]
        future = [demo.frame_at(min(last, t + s.future_stride * k)) for k in range(1, s.n_future + 1)]
        frames = past + future
        images = {cam: src.frames(demo, cam, frames) for cam in s.cameras}
        actions = src.actions(demo, slice(t, min(demo.length, t + s.chunk)))
        mask = np.zeros(s.chunk, dtype=bool)
        mask[: len(actions)] = True
        if len(actions) < s.chunk:
            actions = np.concatenate([actions, np.repeat(actions[-1:], s.chunk - len(actions), axis=0)])
        return {"images": images, "frame_ids": np.array(frames), "state": src.states(demo, t), "actions": actions,
                "action_mask": mask, "language": demo.language, "task": demo.task}

    # ------------------------------------------------------------ statistics
    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for d in self.demos:
            sparse = "" if d.frame_steps is None else f"/frames{len(d.frame_steps)}"
            h.update(f"{self.paths[d.source].name}/{d.identity or d.key}/{d.length}{sparse};".encode())
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
        everything = slice(None)
        states = np.concatenate([self.sources[d.source].states(d, everything) for d in self.demos]).astype(np.float64)
        actions = np.concatenate([self.sources[d.source].actions(d, everything) for d in self.demos]).astype(np.float64)

        def summary(x: np.ndarray) -> dict:
            return {"mean": x.mean(0).tolist(), "std": x.std(0).tolist(), "min": x.min(0).tolist(),
                    "max": x.max(0).tolist(), "q01": np.quantile(x, 0.01, axis=0).tolist(),
                    "q99": np.quantile(x, 0.99, axis=0).tolist()}

        return {"state": summary(states), "actions": summary(actions), "num_demos": len(self.demos),
                "num_steps": len(self), "spec": asdict(self.spec)}

    def close(self) -> None:
        for s in self.sources:
            s.close()
