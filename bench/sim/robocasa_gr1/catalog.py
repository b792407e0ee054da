"""RoboCasa GR1 tasks and initial conditions, without importing the simulator (runner side).

The 24 official tasks (GR00T N1 / DiT4DiT): 6 articulated `PnP<Object>To<Fixture>Close` tasks and
18 rearrangement `PosttrainPnPNovelFrom<A>To<B>SplitA` tasks; their twins `EvalPnPNovelFrom<A>To<B>SplitB`
(robocasa_gr1's tabletop_24dc) draw held-out object instances: a zero-shot object split. An episode's scene (which object instance,
where) is sampled by the env from its seed, so an initial condition is a seed: trial i uses seed i.
"""

from __future__ import annotations

import re

from bench.sim.suites import Suite, TaskInfo

ROBOT = "GR1ArmsAndWaistFourierHands"

ARTICULATED = (
    "PnPBottleToCabinetClose", "PnPCanToDrawerClose", "PnPCupToDrawerClose",
    "PnPMilkToMicrowaveClose", "PnPPotatoToMicrowaveClose", "PnPWineToCabinetClose",
)
_PAIRS = (
    ("Cuttingboard", "Basket"), ("Cuttingboard", "Cardboardbox"), ("Cuttingboard", "Pan"), ("Cuttingboard", "Pot"),
    ("Cuttingboard", "Tieredbasket"), ("Placemat", "Basket"), ("Placemat", "Bowl"), ("Placemat", "Plate"),
    ("Placemat", "Tieredshelf"), ("Plate", "Bowl"), ("Plate", "Cardboardbox"), ("Plate", "Pan"), ("Plate", "Plate"),
    ("Tray", "Cardboardbox"), ("Tray", "Plate"), ("Tray", "Pot"), ("Tray", "Tieredbasket"), ("Tray", "Tieredshelf"),
)


def rearrangement(prefix: str, split: str) -> tuple[str, ...]:
    return tuple(f"{prefix}From{a}To{b}Split{split}" for a, b in _PAIRS)


TASK_SETS = {
    "official": ARTICULATED + rearrangement("PosttrainPnPNovel", "A"),  # the 24 every published GR1 number averages
    "heldout_objects": rearrangement("EvalPnPNovel", "B"),
}

_WORDS = {"Cuttingboard": "cutting board", "Cardboardbox": "cardboard box", "Tieredbasket": "tiered basket",
          "Tieredshelf": "tiered shelf", "Placemat": "placemat"}


def _word(name: str) -> str:
    return _WORDS.get(name, name.lower())


def describe(task: str) -> str:
    """A generic instruction for listings; each episode's own instruction names the object it sampled."""
    m = re.fullmatch(r"PnP(\w+?)To(Drawer|Cabinet|Microwave)Close", task)
    if m:
        return f"pick up the {_word(m[1])}, place it into the {_word(m[2])} and close it"
    m = re.fullmatch(r"(?:Posttrain|Eval)PnPNovelFrom(\w+?)To(\w+?)Split[AB]", task)
    if m:
        return f"pick up the object on the {_word(m[1])} and place it on/in the {_word(m[2])}"
    raise ValueError(f"not a GR1 tabletop task name: {task!r}")


def env_id(task: str) -> str:
    """The gym id GR00T's and DiT4DiT's evaluators use for the task."""
    return f"gr1_unified/{task}_{ROBOT}_Env"


def tags(task: str) -> tuple[str, ...]:
    kind = "articulated" if task in ARTICULATED else "rearrangement"
    return (kind, "held-out-objects") if task.endswith("SplitB") else (kind,)


def tasks(suite: Suite) -> list[TaskInfo]:
    try:
        names = TASK_SETS[suite.source]
    except KeyError:
        raise ValueError(f"unknown GR1 task set {suite.source!r}: valid {', '.join(TASK_SETS)}") from None
    return [TaskInfo(suite.name, i, n, describe(n), env_id(n), backend="robocasa_gr1", tags=tags(n))
            for i, n in enumerate(names)]


def initial_conditions(suite: Suite, task_id: int) -> range:
    """Trial i resets the env from seed i (bench.sim.backend.episode_seed mixes in the protocol's seed):
    the scene, its object instance and placements follow from it. More trials than the protocol's 50
    are allowed: seeds do not run out."""
    return range(10_000)
