"""Scene queries and gripper geometry for the `scripted` expert.

The scene is the privileged state dict of `bench/sim/privileged.py` (objects with
poses, AABBs and BDDL ranges, region sites, articulation joints); these helpers
answer the questions the planner in `scripted.py` asks of it, and build the
gripper orientations its moves aim for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


@dataclass
class DoorPush:
    """Where to push a hinged door (vertical axis) to swing it to a joint position, planned from its geometry.

    The hand stands behind the panel's trailing face (the side away from the swing), fingers closed and their
    axis along the panel, so the hand's thin side pushes; it follows the arc the push point travels, past the
    goal by `overshoot` so the door is pressed against its stop rather than left short of it."""

    approach: np.ndarray  # behind the first push point, at its height
    top: float  # the panel's top: the hand crosses above it to reach the approach
    waypoints: list[tuple[np.ndarray, float]]  # (gripper position, finger yaw) along the arc
    away: np.ndarray  # unit horizontal direction out of the door's way, for the retreat


def _rot2(a: float) -> np.ndarray:
    """Counter-clockwise rotation of the xy-plane by `a`."""
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s], [s, c]])


def door_push(art: dict, q_goal: float, arm: float = 0.45, behind: float = 0.06, press: float = 0.01,
              overshoot: float = 0.3, n: int = 3) -> DoorPush | None:
    """The push for articulation `art` (a privileged snapshot's entry), or None when it is not a door.

    A door: a hinge about a vertical axis whose touchable part reaches more than 10 cm from it. The panel is
    its geom of longest radial reach; the push point sits at `arm` of that reach (clear of a handle at the
    free edge, which the hand's width would hit), `press` into the face, near the panel's bottom."""
    if art["type"] != "hinge" or abs(art["axis"][2]) < 0.9 or len(art["corners"]) == 0:
        return None
    anchor = art["anchor"]
    rel = art["corners"][..., :2] - anchor[:2]  # (G, 8, 2)
    radius = np.linalg.norm(rel, axis=-1)
    if radius.max() < 0.10:
        return None
    panel = int(np.argmax(radius.max(1) - radius.min(1)))
    pts = rel[panel]
    centred = pts - pts.mean(0)
    u = np.linalg.eigh(centred.T @ centred)[1][:, -1]  # the panel's long axis
    u = u if u @ pts.mean(0) > 0 else -u
    swing = float(np.sign(q_goal - art["qpos"]) * np.sign(art["axis"][2]))  # + counter-clockwise from above
    t = swing * np.array([-u[1], u[0]])  # the way the panel moves
    face = float((pts @ t).min())  # the trailing face, as an offset along t from the axis
    reach = float(radius[panel].max())
    z = float(art["corners"][panel][:, 2].min()) + 0.04
    start = anchor[:2] + arm * reach * u + (face + press) * t
    turn = swing * (abs(q_goal - art["qpos"]) + overshoot)
    waypoints = []
    for k in range(n + 1):
        r = _rot2(turn * k / n)
        p = anchor[:2] + r @ (start - anchor[:2])
        uk = r @ u
        waypoints.append((np.array([p[0], p[1], z]), math.atan2(uk[1], uk[0])))
    back = start - (behind + press) * t
    last = _rot2(turn) @ t
    top = float(art["corners"][panel][:, 2].max())
    return DoorPush(approach=np.array([back[0], back[1], z]), top=top, waypoints=waypoints,
                    away=np.array([-last[0], -last[1], 0.0]))
