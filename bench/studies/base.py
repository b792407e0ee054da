"""A study: one committed result, declared once (what it needs, how it is built, where the report shows it).

`plan` says, for every study, whether its committed files are up to date (a lock file records the content
hashes of its inputs and outputs when it was last built), `check` recomputes each study's tables from its
committed records and names every number that differs, and `build` rebuilds one study through the library
(evaluations as cached, resumable runs). Studies whose numbers are measurements of this machine (timings)
or whose records were never committed say so: they are listed, not checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

LOCK = Path("results/studies.lock.json")


@dataclass
class Study:
    name: str  # "evaluations/groot/libero_spatial", "baselines/libero_spatial_comparison", ...
    kind: str  # evaluation, comparison, table, curves, ablation, analysis, measurement
    outputs: tuple[str, ...]  # committed files it writes (repository-relative)
    inputs: tuple[str, ...]  # committed files (or checkpoint folders) it is built from
    build: Callable[["Study", Callable[[str], None]], None]  # how it is built (library calls)
    section: str  # the report section that shows it
    recompute: Callable[[], list[str]] | None = None  # from committed records: the differences (none: equal)
    cost_s: Callable[[], float | None] = lambda: None  # rough seconds of 2 cores to rebuild
    not_recomputable: str = ""  # why `check` cannot recompute it (measurements, records never committed)
    depends: tuple[str, ...] = field(default_factory=tuple)  # studies whose outputs are its inputs


@dataclass
class Status:
    study: Study
    state: str  # "up to date", "stale", "missing", "unlocked"
    reasons: list[str]


def content_hash(path: str | Path, cache: dict | None = None) -> str | None:
    """A file's or folder's content hash; `cache` (path -> hash) keeps one pass from hashing a path twice (every
    evaluation of a model names the same checkpoint folder)."""
    from bench.core.provenance import file_hash

    if cache is not None and str(path) in cache:
        return cache[str(path)]
    h = file_hash(path) if Path(path).exists() else None
    if cache is not None:
        cache[str(path)] = h
    return h


def read_lock(lock: Path = LOCK) -> dict:
    return json.loads(lock.read_text()) if lock.exists() else {}


def lock_entry(study: Study, cache: dict | None = None) -> dict:
    return {"inputs": {p: content_hash(p, cache) for p in study.inputs},
            "outputs": {p: content_hash(p, cache) for p in study.outputs}}


def write_lock(studies: list[Study], lock: Path = LOCK) -> None:
    """Record the studies' current input and output hashes (after building them, or once checked)."""
    entries, cache = read_lock(lock), {}
    for s in studies:
        entries[s.name] = lock_entry(s, cache)
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps(dict(sorted(entries.items())), indent=1) + "\n")


def status(study: Study, lock: dict, cache: dict | None = None) -> Status:
    missing = [p for p in study.outputs if not Path(p).exists()]
    if missing:
        return Status(study, "missing", [f"not built: {', '.join(missing)}"])
    if study.name not in lock:
        return Status(study, "unlocked", ["no lock entry: run `bench results --lock` after checking it"])
    now, then = lock_entry(study, cache), lock[study.name]
    reasons = [f"input changed: {p}" for p, h in now["inputs"].items() if then["inputs"].get(p) != h]
    reasons += [f"input no longer used: {p}" for p in then["inputs"] if p not in now["inputs"]]
    reasons += [f"output edited since built: {p}" for p, h in now["outputs"].items() if then["outputs"].get(p) != h]
    return Status(study, "stale" if reasons else "up to date", reasons)


def plan(studies: list[Study], lock: Path = LOCK) -> list[Status]:
    entries, cache = read_lock(lock), {}
    return [status(s, entries, cache) for s in studies]


def check(studies: list[Study], log: Callable[[str], None] = print) -> dict[str, list[str]]:
    """Every recomputable study's differences from its committed records (empty lists: all equal)."""
    out = {}
    for s in studies:
        if s.recompute is None:
            continue
        missing = [p for p in s.outputs if not Path(p).exists()]
        if missing:  # declared, not built yet: `plan` lists it as missing; nothing committed to recompute
            log(f"{s.name}: not built yet ({missing[0]})")
            continue
        try:
            out[s.name] = s.recompute()
        except FileNotFoundError as exc:
            out[s.name] = [f"a committed record is missing: {exc.filename or exc}"]
        log(f"{s.name}: {'equal' if not out[s.name] else f'{len(out[s.name])} differences'}")
    return out


# --------------------------------------------------------------------------- comparing recomputed numbers

def frame_differences(new: pd.DataFrame, committed: pd.DataFrame, where: str, key: list[str] | None = None,
                      rtol: float = 1e-6, atol: float = 1e-9) -> list[str]:
    """Cells that differ between a recomputed table and the committed one (numbers within float noise agree;
    columns only one of them has are named)."""
    diffs = []
    only_new, only_old = set(new.columns) - set(committed.columns), set(committed.columns) - set(new.columns)
    if only_new or only_old:
        diffs.append(f"{where}: columns differ (recomputed only: {sorted(only_new)}, committed only: {sorted(only_old)})")
    if len(new) != len(committed):
        return diffs + [f"{where}: {len(new)} rows recomputed, {len(committed)} committed"]
    new, committed = new.reset_index(drop=True), committed.reset_index(drop=True)
    for col in [c for c in committed.columns if c in new.columns]:
        a, b = new[col], committed[col]
        for i in range(len(a)):
            x, y = a.iloc[i], b.iloc[i]
            if _same(x, y, rtol, atol):
                continue
            label = " ".join(str(committed.iloc[i][k]) for k in (key or []) if k in committed) or f"row {i}"
            diffs.append(f"{where}: {label}, {col}: recomputed {x!r}, committed {y!r}")
    return diffs


def _same(x, y, rtol: float, atol: float) -> bool:
    x_na, y_na = _is_na(x), _is_na(y)
    if x_na or y_na:
        return x_na and y_na
    try:
        return bool(np.isclose(float(x), float(y), rtol=rtol, atol=atol))
    except (TypeError, ValueError):
        return str(x) == str(y)


def _is_na(v) -> bool:
    try:
        return v is None or bool(pd.isna(v)) or v == ""
    except (TypeError, ValueError):
        return False
