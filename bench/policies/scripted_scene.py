"""Scene queries and gripper geometry for the `scripted` expert.

The scene is the privileged state dict of `bench/sim/privileged.py` (objects with
poses, AABBs and BDDL ranges, region sites, articulation joints); these helpers
answer the questions the planner in `scripted.py` asks of it, and build the
gripper orientations its moves aim for.
"""

from __future__ import annotations

import math

import numpy as np


def down_rotation(yaw: float) -> np.ndarray:
    """Gripper pointing down (z axis to -z), fingers closing along angle `yaw` in the xy-plane."""
    x = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    z = np.array([0.0, 0.0, -1.0])
    return np.column_stack([x, np.cross(z, x), z])


def horizontal_rotation(toward: np.ndarray, fingers_vertical: bool = True) -> np.ndarray:
    """Gripper pointing along `toward` (horizontal), fingers closing vertically (or horizontally: the hand's
    long side level, so it is only a few centimetres tall)."""
    z = toward / np.linalg.norm(toward)
    x = np.array([0.0, 0.0, 1.0])
    if not fingers_vertical:
        x = np.cross(x, z)
        x /= np.linalg.norm(x)
    return np.column_stack([x, np.cross(z, x), z])


def finger_yaw(eef_mat: np.ndarray) -> float:
    """Angle of the finger closing axis in the xy-plane (defined mod pi)."""
    axis = eef_mat[:, 0]
    return math.atan2(axis[1], axis[0])


def wrap_pi(a: float) -> float:
    """Smallest equivalent rotation for a symmetric two-finger gripper (mod pi, in [-pi/2, pi/2))."""
    return (a + math.pi / 2) % math.pi - math.pi / 2


def joint_of(target: str, scene: dict) -> str | None:
    """The articulation joint behind a goal argument (a drawer's region site, or an object)."""
    if target in scene["sites"] and scene["sites"][target]["joints"]:
        return scene["sites"][target]["joints"][0]
    for jname, art in scene["articulations"].items():
        if art["object"] == target:
            return jname
    return None


def goal_q(scene: dict, obj: str, goal: str) -> float:
    """A joint position well inside the range LIBERO's predicate accepts."""
    ranges = scene["objects"][obj]["ranges"]
    key = {"open": "open_ranges", "close": "close_ranges", "turnon": "turnon_ranges", "turnoff": "turnoff_ranges"}[goal]
    lo, hi = min(ranges[key]), max(ranges[key])
    if goal == "turnon":
        return lo + 0.35 * (hi - lo)
    return (lo + hi) / 2


def is_state(scene: dict, joint: str, goal: str) -> bool:
    art = scene["articulations"][joint]
    ranges = scene["objects"][art["object"]]["ranges"].get(f"{goal}_ranges")
    return bool(ranges) and min(ranges) - 0.01 <= art["qpos"] <= max(ranges) + 0.01


def ground_height(scene: dict) -> float:
    """Height of the surface the loose objects stand on (table top, or floor)."""
    return float(min(o["aabb_min"][2] for o in scene["objects"].values() if not o["fixture"]))


def clearance(p: np.ndarray, name: str, scene: dict, half: np.ndarray = np.zeros(2)) -> float:
    """Horizontal distance from the box p +- half to the nearest other object or moving part (an open drawer)."""
    boxes = [(o["aabb_min"], o["aabb_max"]) for other, o in scene["objects"].items()
             if other != name and not o["fixture"]]
    bottom = scene["objects"][name]["aabb_min"][2]
    boxes += [(a["aabb_min"], a["aabb_max"]) for a in scene["articulations"].values()  # parts above its base
              if a["type"] == "slide" and np.isfinite(a["aabb_min"]).all() and a["aabb_max"][2] > bottom + 0.01]
    best = 1.0
    for lo, hi in boxes:
        d = np.maximum(0, np.maximum(lo[:2] - (p[:2] + half), (p[:2] - half) - hi[:2]))
        best = min(best, float(np.linalg.norm(d)))
    return best


def container_around(name: str, scene: dict) -> str | None:
    """The loose object `name` sits in, if any: its centre over the other's footprint, no wider than it, its
    bottom above the other's base and below its rim. Fingers opened wide to grasp it would land on that
    container's wall. (A bowl on a smaller ramekin, or a pot standing beside a pan's handle, is not inside.)"""
    obj = scene["objects"][name]
    lo, hi = obj["aabb_min"], obj["aabb_max"]
    c, bottom = (lo[:2] + hi[:2]) / 2, float(lo[2])
    for other, o in scene["objects"].items():
        if other == name or o["fixture"]:
            continue
        over = bool((o["aabb_min"][:2] < c).all() and (c < o["aabb_max"][:2]).all())
        fits = bool((hi[:2] - lo[:2] <= o["aabb_max"][:2] - o["aabb_min"][:2]).all())
        if over and fits and o["aabb_min"][2] + 0.003 < bottom < o["aabb_max"][2] - 0.002:
            return other
    return None
