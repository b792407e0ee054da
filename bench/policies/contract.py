"""The policy contract: what every policy, in-process or remote, implements.

    spec                      what the policy consumes and emits (checked before step 0)
    reset(episode)            an episode starts (called once per episode)
    act(batch) -> chunks      (B, chunk_length, action_dim) actions for B observations

One `act` call may mix observations from several episodes and tasks (the runner
batches across sim workers); `ObservationBatch.episode_keys` says which row is
which. Optional hook: `init_states(task) -> list[np.ndarray] | None` lets a policy
(e.g. `replay`) choose the initial states it is evaluated from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol as TypingProtocol, runtime_checkable

import numpy as np

from bench.sim.suites import Protocol, TaskInfo


@dataclass(frozen=True)
class PolicySpec:
    """Declared I/O of a policy. `None` image size means 'any resolution'."""

    cameras: tuple[str, ...]
    state_layout: str
    action_dim: int
    action_convention: str
    chunk_length: int
    image_size: int | None = None
    privileged: bool = False  # wants the simulator's scene state (experts only; see bench/sim/privileged.py)
    # the frame size the policy's own evaluation client renders (the official LIBERO clients: 256, then their own
    # resize to 224): a run then renders there instead of at the protocol's resolution, and its protocol says so
    render_resolution: int | None = None


@dataclass(frozen=True)
class EpisodeInfo:
    """What a policy learns at reset: the task and which trial this is."""

    key: str
    task: TaskInfo
    init_id: int
    seed: int


@dataclass
class ObservationBatch:
    """B observations. Images are uint8 (B, H, W, 3), already flipped upright."""

    episode_keys: list[str]
    images: dict[str, np.ndarray]
    state: np.ndarray  # (B, state_dim) float32
    prompts: list[str]
    steps: np.ndarray  # (B,) env steps taken so far in each episode (after wait steps)
    extras: dict[str, list] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.episode_keys)

    @staticmethod
    def stack(items: list[dict]) -> "ObservationBatch":
        """Stack per-episode observation dicts (as sim workers send them)."""
        cams = items[0]["images"].keys()
        extras = {k: [o[k] for o in items] for k in ("privileged",) if k in items[0]}
        return ObservationBatch(
            episode_keys=[o["key"] for o in items],
            images={c: np.stack([o["images"][c] for o in items]) for c in cams},
            state=np.stack([o["state"] for o in items]).astype(np.float32),
            prompts=[o["prompt"] for o in items],
            steps=np.array([o["step"] for o in items], dtype=np.int64),
            extras=extras,
        )


@runtime_checkable
class Policy(TypingProtocol):
    spec: PolicySpec

    def reset(self, episode: EpisodeInfo) -> None: ...

    def act(self, batch: ObservationBatch) -> np.ndarray: ...

    # Optional: `checkpoint_path`, the weights the policy loaded (also when it chose a default, as
    # dit4dit does with its bundled checkpoint; for replay, its demo file), so every episode record
    # carries their hash.
    # Optional: `episode_notes(key) -> dict | None`, called once as an episode's record is written: what the
    # policy says about how the episode ended (the scripted expert: where its plan stood), kept in the
    # record's `policy_notes`; its `where`, a sentence on where the policy stood at the end, is what a summary
    # quotes for a failed episode. It must not change what the policy does.


class RemotePolicyError(RuntimeError):
    """A policy server failed (down, slow, died, or answered garbage): the message names host, port and what
    went wrong. Its episodes are recorded with error kind `remote`, and `--resume` runs them again."""


class SpecMismatch(ValueError):
    """The policy's declared I/O does not fit the suite's protocol."""


def check_spec(spec: PolicySpec, protocol: Protocol, policy_name: str, suite_name: str) -> None:
    """Fail before the first step, naming every mismatch."""
    problems = []
    missing = [c for c in spec.cameras if c not in protocol.cameras]
    if missing:
        problems.append(f"cameras {missing} are not rendered by the suite (it has {list(protocol.cameras)})")
    if spec.image_size is not None and spec.image_size != protocol.resolution:
        problems.append(f"image size {spec.image_size} != suite resolution {protocol.resolution}")
    if spec.state_layout != protocol.state_layout:
        problems.append(f"state layout {spec.state_layout!r} != suite's {protocol.state_layout!r}")
    if spec.action_dim != protocol.action_dim:
        problems.append(f"action dim {spec.action_dim} != suite's {protocol.action_dim}")
    if spec.action_convention != protocol.action_convention:
        problems.append(f"action convention {spec.action_convention!r} != suite's {protocol.action_convention!r}")
    if spec.chunk_length < protocol.executed_chunk:
        problems.append(
            f"chunk length {spec.chunk_length} < executed chunk {protocol.executed_chunk} of the protocol"
        )
    if problems:
        lines = "\n  - ".join(problems)
        raise SpecMismatch(f"policy {policy_name!r} does not fit suite {suite_name!r}:\n  - {lines}")


def validate_chunks(chunks, batch_size: int, spec: PolicySpec) -> tuple[np.ndarray | None, list[str | None]]:
    """Check a policy's output. Returns (array or None, per-row error or None)."""
    try:
        arr = np.asarray(chunks, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        return None, [f"policy output is not a numeric array: {exc}"] * batch_size
    want = (batch_size, spec.chunk_length, spec.action_dim)
    if arr.shape != want:
        return None, [f"policy returned shape {arr.shape}, expected {want} (batch, chunk, action_dim)"] * batch_size
    errors: list[str | None] = []
    for row in arr:
        bad = ~np.isfinite(row)
        errors.append(f"policy returned {int(bad.sum())} non-finite action values (NaN/inf)" if bad.any() else None)
    return arr, errors
