"""Episode records: one JSON line per finished episode, appended as it ends.

Appending (and fsync-ing) each line as the episode ends means a crash loses at
most the episodes in flight; resume and merging fall out of it. The latest record
of an episode key wins, so a retried episode is counted once.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Errors that say nothing about the policy: `--resume` runs these episodes again.
INFRA_ERRORS = ("worker_died", "timeout", "sim", "remote")


@dataclass
class EpisodeRecord:
    key: str  # "<suite>/<task_id>/<init_id>", unique within a run directory
    suite: str  # canonical suite name (libero_long is recorded as libero_10)
    task_id: int
    task: str  # LIBERO task name
    language: str  # the instruction given to the policy
    init_id: int  # index of the initial state (trial i uses init state i)
    seed: int
    policy: str
    checkpoint: str | None  # weights the policy loaded: --checkpoint or its default (project-relative when inside
    #   it); for replay, the --demos file
    checkpoint_hash: str | None  # sha256 prefix of the checkpoint's (or demo file's) bytes
    protocol_hash: str  # Protocol.hash(): equal hashes mean comparable episodes
    success: bool  # the env's done (BDDL goal reached) before max steps
    steps: int  # policy steps executed (wait steps excluded)
    wall_time_s: float  # from the start message to the last answer
    error: str | None = None  # why the episode did not run to its end, if it did not
    error_kind: str | None = None  # policy | sim | worker_died | timeout | remote (a policy server failed)
    video: str | None = None  # mp4 path relative to the run directory
    worker: int | None = None
    timing: dict = field(default_factory=dict)  # env_create_s, reset_s, step_s, render_s, episode_s
    finished_at: str = ""  # ISO time
    final_state: str | None = None  # sha256 prefix of the simulator state at the end (None if it errored):
    #                                 equal digests for a key mean a rerun reproduced the episode exactly
    math: str | None = None  # the policy process's float math, '<mode>:<fingerprint>' (bench/core/mathmode.py): equal
    #                          ids mean a rerun is expected to give the same bits; None = recorded before it was kept
    policy_args: dict | None = None  # the --policy-arg values the policy was built with
    policy_meta: dict | None = None  # what the policy reports about itself (a remote server's metadata)
    sim: dict | None = None  # what the sim worker reported: backend, python version, simulator package versions
    policy_notes: dict | None = None  # the policy's own account of how the episode ended (Policy.episode_notes)
    first_frame: str | None = None  # '<H>x<W>:<digest>' of the policy's first observation's pixels: equal for a
    #                                 key when the renderer draws the initial scene as recorded (None: not kept)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def append_record(path: Path, record: EpisodeRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(record.to_json() + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_records(path: Path) -> list[dict]:
    """All records of a file; a line cut short by a crash is skipped with a warning."""
    if not path.exists():
        return []
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            warnings.warn(f"{path}:{n}: skipping a malformed line (cut short by a crash?)", stacklevel=2)
    return records


def latest_by_key(records: list[dict]) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for r in records:
        latest[r["key"]] = r
    return latest


def finished_keys(records: list[dict]) -> set[str]:
    """Keys that `--resume` skips: episodes whose latest record is not an infrastructure error."""
    return {k for k, r in latest_by_key(records).items() if r.get("error_kind") not in INFRA_ERRORS}
