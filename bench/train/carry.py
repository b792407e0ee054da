"""A training run carried to another machine: its resumable state, logs and scores packed into a folder that can
be committed, and unpacked into a run folder that `train(resume=True)` continues exactly.

Why: a long CPU training (hours) outlives a machine that is handed back after a few hours, and only committed
files survive that. A pack holds everything of the run but the weights it no longer needs: `train_state.pt`
(weights, optimizer, step) replaces the rolling `checkpoint/`, and a kept checkpoint whose learning-curve point is
scored keeps only its config.json (its training seconds). `carried.json` records the step and a digest of the
demos' content: a machine whose regenerated demos differ is refused, since the resumed run would no longer be
the uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Callable

import h5py

CARRIED = "carried.json"
SKIP_DIRS = {"trackers"}  # offline tracker logs: machine-local
SKIP_FILES = {"losses.png"}  # drawn again from losses.csv at the next checkpoint


def data_digest(paths: list[Path]) -> str:
    """sha256 over every demo's actions and each camera's first and last frame, in the files' demo order: equal
    when a demo set was regenerated bit for bit (names, lengths and the sim's trajectories and renders)."""
    from bench.demos.libero_hdf5 import demo_names

    h = hashlib.sha256()
    for path in paths:
        with h5py.File(path, "r") as f:
            data = f["data"]
            for name in demo_names(data):
                g = data[name]
                h.update(str(g.attrs.get("episode_key", name)).encode())
                h.update(g["actions"][()].tobytes())
                for key in sorted(k for k in g["obs"] if k.endswith("_rgb")):
                    frames = g["obs"][key]
                    h.update(frames[0].tobytes() + frames[len(frames) - 1].tobytes())
    return h.hexdigest()[:16]


def state_step(folder: Path) -> int:
    """The step a run folder (or a pack) can resume from: 0 when it has no train state."""
    folder = Path(folder)
    carried = folder / CARRIED
    if carried.exists():
        return int(json.loads(carried.read_text())["step"])
    if (folder / "train_state.pt").exists():
        import torch

        return int(torch.load(folder / "train_state.pt", weights_only=False, map_location="cpu")["step"])
    return 0


def pack_run(run: Path, dest: Path, weights_needed: Callable[[Path], bool]) -> int:
    """Copy `run` into `dest` (replacing it) without the weight files of checkpoint folders for which
    `weights_needed(folder)` is false, nor the rolling `checkpoint/` weights while `train_state.pt` holds them.
    Returns the step packed (0: nothing to pack yet)."""
    run, dest = Path(run), Path(dest)
    step = state_step(run)
    if not step:
        return 0
    config = json.loads((run / "train_config.json").read_text())
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for src in sorted(p for p in run.rglob("*") if p.is_file()):
        rel = src.relative_to(run)
        if rel.parts[0] in SKIP_DIRS or src.name in SKIP_FILES or src.suffix == ".tmp":
            continue
        if src.suffix == ".safetensors" and rel.parts[0].startswith("checkpoint"):
            folder = run / rel.parts[0]
            rolling = rel.parts[0] == "checkpoint" and _trained(folder) < config["train"]["steps"]
            if rolling or not weights_needed(folder):
                continue
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, tmp / rel)
    (tmp / CARRIED).write_text(json.dumps({"step": step, "data": config["data"],
                                           "data_digest": data_digest([Path(p) for p in config["data"]])}, indent=1))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return step


def unpack_run(pack: Path, run: Path, data: list[Path]) -> int:
    """Put a pack back as the run folder when it is further on than the local run (the local run is replaced);
    returns the step restored, 0 when the local run is already as far. Refuses a pack of other demos."""
    pack, run = Path(pack), Path(run)
    if not (pack / CARRIED).exists() or state_step(pack) <= state_step(run):
        return 0
    carried = json.loads((pack / CARRIED).read_text())
    here = data_digest([Path(p) for p in data])
    if here != carried["data_digest"]:
        raise ValueError(f"{pack} was trained on demos whose content differs from this machine's ({', '.join(map(str, data))}: "
                         f"digest {here}, the pack's {carried['data_digest']}): it cannot resume here as the same run; "
                         f"remove the pack to train afresh")
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(pack, run, ignore=shutil.ignore_patterns(CARRIED))
    return carried["step"]


def _trained(folder: Path) -> int:
    cfg = folder / "config.json"
    return int(json.loads(cfg.read_text()).get("trained_steps", 0)) if cfg.exists() else 0
