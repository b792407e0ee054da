"""`scripted`: a privileged-state expert for LIBERO tasks.

It reads the BDDL goal and the scene state (object poses and extents, region
sites, articulation joints; `bench/sim/privileged.py`), turns each goal
predicate into motion primitives (approach, grasp, lift, transport, place,
release; pull or push drawers; press the stove knob) and drives them through the
same 7-d delta-pose action space as the learned policies, in 8-step chunks.

Control model, measured on LIBERO's OSC_POSE controller: a constant command u
(in [-1, 1]) held for one 8-step chunk moves the end effector about 0.1*u m
(coasting included), and turns it about 1.3*u rad. Each chunk therefore aims to
cover a fraction of the error seen at its start; plans advance only on observed
state, so the loop is closed at chunk boundaries.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from bench.policies import register
from bench.policies.scripted_scene import (clearance, container_around, door_push, down_rotation, finger_yaw, goal_q,
                                           ground_height, horizontal_rotation, is_state, joint_of, wrap_pi)
from bench.policies.contract import EpisodeInfo, ObservationBatch, PolicySpec
from bench.sim.suites import LIBERO_ACTION_CONVENTION, LIBERO_STATE_LAYOUT

POS_PER_UNIT = 0.10  # metres per chunk per unit command
YAW_PER_UNIT = 1.3  # radians per chunk per unit command
OPEN, CLOSE = -1.0, 1.0
HOLD = 0.0  # the Panda gripper integrates the command's sign: 0 keeps the fingers where they are
FINGER_STEP = 0.01  # metres the Panda's opening shrinks per step of CLOSE (robosuite: 0.01 x 25 substeps x 2 fingers)
OPEN_WIDTH = 0.08  # the Panda's full opening


@dataclass
class Move:
    """Bring the gripper to `pos` (and finger-axis angle `yaw`), gripper held at `grip`.

    `pos` may be a function (episode, scene) -> position, evaluated on every chunk
    (tracking a moving target) or once when the move starts (`freeze`)."""

    pos: object
    grip: float
    yaw: float | None = None
    rot: np.ndarray | None = None  # full target orientation (3x3, columns = gripper axes); overrides yaw
    rot_tol: float = 0.1  # radians
    tol: float = 0.01
    max_chunks: int = 8
    label: str = ""
    freeze: bool = False


@dataclass
class Grip:
    """Hold still and open or close the gripper for one chunk (8 steps)."""

    grip: float
    label: str = ""
    carry: str | None = None  # the object now held (set when grasping)
    steps: int = 8  # steps of the chunk that command `grip`; the rest hold (a partial close pre-shapes the hand)


@dataclass
class Check:
    """A test on the scene; on failure the plan restarts from the current subgoal."""

    fn: object
    label: str = ""


@dataclass
class EpisodeState:
    goals: list
    subgoal: int = 0
    plan: list = field(default_factory=list)
    chunks_in_step: int = 0
    retries: int = 0
    carried: str | None = None
    rng: np.random.Generator | None = None
    speed: float | None = None  # this episode's top speed (a seeded variation)
    last_eef: np.ndarray | None = None  # where the previous chunk started, to notice a blocked move
    given_up: list = field(default_factory=list)  # subgoals abandoned after too many retries (for episode_notes)
    skipped: list = field(default_factory=list)  # subgoals it has no primitive for, and why (for episode_notes)


def where_plan_stood(notes: dict) -> str:
    """One sentence from the expert's notes on where its plan stood at the end (the `where` of its
    episode_notes, which a summary quotes for failed episodes)."""
    goals, done = notes.get("subgoals") or [], int(notes.get("subgoals_done") or 0)
    if notes.get("given_up"):
        return f"gave up on ({notes['given_up'][0]}) after repeated failed attempts"
    if notes.get("skipped"):
        return f"skipped: {notes['skipped'][0]}"
    if goals and done >= len(goals):
        return "finished its plan; the goal did not hold at the end"
    where = f" of ({goals[done]}), subgoal {done + 1} of {len(goals)}" if goals else ""
    return f"ran out of steps in '{notes.get('stage') or '?'}'{where}"


def fill_before_closing(goals: list[tuple], scene: dict) -> list[tuple]:
    """The goals in the order the expert works on them: closing a drawer comes after putting things into it (a
    goal may list "close the drawer" first; done in that order, the drawer is closed, then opened again)."""
    out = list(goals)
    for g in goals:
        if str(g[0]).lower() != "close" or (joint := joint_of(g[1], scene)) is None:
            continue
        fills = [h for h in out if len(h) == 3 and str(h[0]).lower() in ("in", "on") and joint_of(h[2], scene) == joint]
        if fills:
            out.remove(g)
            out.insert(max(out.index(h) for h in fills) + 1, g)
    return out


# Objects grasped at their rim (fingers straddling the wall) rather than at their centre.
RIM_GRASP = ("bowl", "plate", "mug", "cup", "basket", "frypan", "pot")


class ScriptedExpert:
    spec = PolicySpec(cameras=(), state_layout=LIBERO_STATE_LAYOUT, action_dim=7,
                      action_convention=LIBERO_ACTION_CONVENTION, chunk_length=8, privileged=True)

    def __init__(self, seed: int = 0, noise: float = 1.0):
        self.seed = seed
        self.noise = noise  # scale of the seeded variations (0 = deterministic)
        self.episodes: dict[str, EpisodeState] = {}

    # ------------------------------------------------------------- contract
    def reset(self, episode: EpisodeInfo) -> None:
        key_seed = zlib.crc32(episode.key.encode())  # distinct per episode, reproducible
        self.episodes[episode.key] = EpisodeState(goals=[], rng=np.random.default_rng([self.seed, key_seed]))

    def episode_notes(self, key: str) -> dict | None:
        """Where the plan stood when the episode ended (and forget the episode): the goal's subgoals, how many
        were done, those given up, and the primitive under way."""
        stage = self.stage(key)
        ep = self.episodes.pop(key, None)
        if ep is None:
            return None
        notes = {"subgoals": [" ".join(map(str, g)) for g in ep.goals], "subgoals_done": min(ep.subgoal, len(ep.goals)),
                 "given_up": ep.given_up, "skipped": ep.skipped, "stage": stage, "retries": ep.retries,
                 "carrying": ep.carried}
        return dict(notes, where=where_plan_stood(notes))

    def stage(self, key: str) -> str | None:
        """The primitive under way in an episode (`bench analyze trace` prints it beside the contacts)."""
        ep = self.episodes.get(key)
        step = ep.plan[0] if ep is not None and ep.plan else None
        return None if step is None else (getattr(step, "label", "") or type(step).__name__.lower())

    def _jitter(self, ep: EpisodeState, scale: float) -> float:
        """A seeded variation in [-scale, scale] (times `noise`): demos of one init state differ."""
        return float(ep.rng.uniform(-scale, scale)) * self.noise

    def act(self, batch: ObservationBatch) -> np.ndarray:
        out = np.zeros((len(batch), self.spec.chunk_length, 7))
        for i, key in enumerate(batch.episode_keys):
            out[i] = self._chunk(self.episodes[key], batch.state[i], batch.extras["privileged"][i])
        return out

    # ------------------------------------------------------------- planning
    def _chunk(self, ep: EpisodeState, state: np.ndarray, scene: dict) -> np.ndarray:
        if not ep.goals:
            ep.goals = fill_before_closing([tuple(g) for g in scene["goal"]], scene)
        eef = scene["eef_pos"]
        yaw = finger_yaw(scene["eef_mat"])
        width = float(state[6] - state[7])
        for _ in range(8):  # advance through finished primitives, at most a few per chunk
            if not ep.plan:
                if ep.subgoal >= len(ep.goals):
                    return self._grip_chunk(OPEN if ep.carried is None else CLOSE)
                ep.plan = self._plan(ep, ep.goals[ep.subgoal], scene)
                ep.chunks_in_step = 0
                if not ep.plan:  # a subgoal this expert skips
                    continue
            step = ep.plan[0]
            dropped = ep.carried is not None and isinstance(step, Move) and step.grip == CLOSE and width < 0.002
            if isinstance(step, Check) or dropped:
                if not dropped and step.fn(ep, scene, width):
                    ep.plan.pop(0)
                    continue
                ep.retries += 1
                ep.plan = [Move(eef + np.array([0, 0, 0.08]), OPEN, max_chunks=2, tol=0.03, label="retreat")]
                ep.carried = None
                if ep.retries > 4:  # give up on this subgoal rather than loop forever
                    if ep.subgoal < len(ep.goals):
                        ep.given_up.append(" ".join(map(str, ep.goals[ep.subgoal])))
                    ep.subgoal += 1
                continue
            if isinstance(step, Move):
                pos = step.pos(ep, scene) if callable(step.pos) else step.pos
                if step.freeze:
                    step.pos = pos
                err = pos - eef
                if step.rot is not None:
                    target = step.rot
                else:  # gripper pointing down, fingers at the requested (or current) yaw
                    target = down_rotation(yaw + (0.0 if step.yaw is None else wrap_pi(step.yaw - yaw)))
                rot_err = Rotation.from_matrix(target @ scene["eef_mat"].T).as_rotvec()
                # explicit orientations must be met; for "pointing down" moves only the yaw must
                # (the arm tilts a little at the edge of its reach, which does not matter there)
                turn = float(np.linalg.norm(rot_err)) if step.rot is not None else abs(float(rot_err[2]))
                reached = np.linalg.norm(err) < step.tol and turn < step.rot_tol
                blocked = (ep.chunks_in_step >= 2 and np.linalg.norm(eef - ep.last_eef) < 0.002
                           and np.linalg.norm(err) < 0.04 and turn < 2 * step.rot_tol)
                ep.last_eef = eef.copy()
                if reached or blocked or ep.chunks_in_step >= step.max_chunks:
                    ep.plan.pop(0)
                    ep.chunks_in_step = 0
                    if step.label == "subgoal-done":
                        ep.subgoal += 1
                    continue
                ep.chunks_in_step += 1
                if ep.speed is None:
                    ep.speed = 1.0 - abs(self._jitter(ep, 0.05))
                return self._move_chunk(err, rot_err, step.grip, speed=ep.speed * (0.85 if ep.carried else 1.0))
            if isinstance(step, Grip):
                ep.plan.pop(0)
                ep.chunks_in_step = 0
                if step.label == "release":
                    ep.carried = None
                if step.carry is not None:
                    ep.carried = step.carry
                return self._grip_chunk(step.grip, step.steps)
        return self._grip_chunk(OPEN)

    def _move_chunk(self, err: np.ndarray, rot_err: np.ndarray, grip: float, speed: float = 1.0) -> np.ndarray:
        a = np.zeros((8, 7))
        gain = 0.8 if np.linalg.norm(err) > 0.04 else 1.3  # small commands barely move the arm: push harder
        a[:, :3] = np.clip(gain * err / POS_PER_UNIT, -speed, speed)
        a[:, 3:6] = np.clip(0.7 * rot_err / YAW_PER_UNIT, -1, 1)  # world-frame axis-angle, like OSC_POSE
        a[:, 6] = grip
        return a

    def _grip_chunk(self, grip: float, steps: int = 8) -> np.ndarray:
        a = np.zeros((8, 7))
        a[:steps, 6] = grip
        return a

    def _plan(self, ep: EpisodeState, goal: tuple, scene: dict) -> list:
        pred = goal[0].lower()
        if pred in ("on", "in"):
            joint = joint_of(goal[2], scene)
            if joint is not None and not is_state(scene, joint, "open") and ("open", goal[2]) not in ep.goals:
                ep.goals.insert(ep.subgoal, ("open", goal[2]))  # open the drawer first, then plan the rest
                return self._plan(ep, ep.goals[ep.subgoal], scene)
            return self._pick(ep, goal[1], scene) + self._place(ep, goal[1], goal[2], pred, scene)
        if pred in ("open", "close", "turnon", "turnoff"):
            joint = joint_of(goal[1], scene)
            if joint is not None:
                return self._articulate(ep, joint, pred, scene)
        ep.skipped.append(f"{' '.join(map(str, goal))} (no primitive for the predicate)")
        ep.subgoal += 1  # a predicate this expert cannot do: skip it
        return []

    # ------------------------------------------------------------ primitives
    def _articulate(self, ep: EpisodeState, joint: str, goal: str, scene: dict, finish: bool = True) -> list:
        """Drive an articulated part to its goal range: pull or push a drawer (slide joint),
        turn a knob (hinge about z)."""
        art = scene["articulations"][joint]
        q_goal = goal_q(scene, art["object"], goal)
        done = [Move(np.zeros(3), OPEN, tol=10.0, rot_tol=10.0, label="subgoal-done")] if finish else []
        up = Move(lambda ep, scene: scene["eef_pos"] + np.array([0, 0, 0.1]), OPEN, tol=0.03, max_chunks=2,
                  label="retreat", freeze=True)
        if art["type"] == "slide":
            # a drawer opens outwards, toward its handle: the handle is the moving part's geom
            # that sticks out furthest in the opening direction
            opening = goal_q(scene, art["object"], "open") - goal_q(scene, art["object"], "close")
            front_dir = art["axis"] * np.sign(opening)
            d = art["axis"] * np.sign(q_goal - art["qpos"])  # the direction the part must travel
            lo, hi = max(art["geoms"], key=lambda g: float(np.dot((g[0] + g[1]) / 2, front_dir)))
            handle = (lo + hi) / 2

            def along(extra):  # gripper target that moves the part to q_goal, from the live joint
                def fn(ep, scene):
                    a = scene["articulations"][joint]
                    return scene["eef_pos"] + a["axis"] * (q_goal - a["qpos"]) + d * extra
                return fn

            def leave(rot, grip):  # back off the front, level, then turn to point down again
                return [Move(lambda ep, scene: scene["eef_pos"] + front_dir * 0.08 + np.array([0, 0, 0.06]), grip,
                             rot=rot, tol=0.02, rot_tol=0.3, max_chunks=2, label="back-off", freeze=True),
                        Move(lambda ep, scene: scene["eef_pos"] + np.array([0, 0, 0.08]), OPEN, tol=0.03,
                             rot_tol=0.25, max_chunks=2, label="point-down", freeze=True)]

            if goal == "open":
                # Stacked drawer fronts leave no room to reach a handle from above: come in
                # horizontally, fingers above and below the bar, and pull.
                level = horizontal_rotation(-front_dir)
                return [
                    Move(handle + front_dir * 0.10, OPEN, rot=level, tol=0.02, rot_tol=0.3, label="level-with-handle"),
                    Move(handle - front_dir * 0.015, OPEN, rot=level, tol=0.008, rot_tol=0.3, max_chunks=5,
                         label="reach-in"),
                    Grip(CLOSE, label="grasp-handle"), Grip(CLOSE, label="squeeze"),
                    Move(along(0.01), CLOSE, rot=level, tol=0.01, rot_tol=0.3, max_chunks=6, label="pull"),
                    Grip(OPEN, label="release-handle"),
                ] + leave(level, OPEN) + done
            # Push the handle closed with the gripper level, pointing into the cabinet, fingers closed side by
            # side: pointing down, the hand above the fingers hits the cabinet's face or the handle of the drawer
            # above before this one is in.
            flat = horizontal_rotation(-front_dir, fingers_vertical=False)
            return [
                Move(handle + front_dir * 0.10 + np.array([0, 0, 0.08]), CLOSE, rot=flat, tol=0.03, rot_tol=0.3,
                     label="approach-front"),
                Move(handle + front_dir * 0.06, CLOSE, rot=flat, tol=0.015, rot_tol=0.3, label="level-with-handle"),
                Move(along(0.02), CLOSE, rot=flat, tol=0.01, rot_tol=0.3, max_chunks=6, label="push"),
            ] + leave(flat, CLOSE) + done
        push = door_push(art, q_goal)
        if push is not None:  # a door (hinge about a vertical axis, a wide panel): swing it by pushing its face
            yaw0 = push.waypoints[0][1]
            over = push.top + 0.12  # fingertips this high clear the panel from either side
            return [
                Move(lambda ep, scene: np.array([*scene["eef_pos"][:2], max(over, scene["eef_pos"][2])]), CLOSE,
                     tol=0.03, max_chunks=3, label="rise-over-door", freeze=True),
                Move(np.array([*push.approach[:2], over]), CLOSE, yaw0, tol=0.03, rot_tol=0.3, label="above-door"),
                Move(push.approach, CLOSE, yaw0, tol=0.015, rot_tol=0.3, label="behind-door"),
                *[Move(p, CLOSE, yaw, tol=0.03, rot_tol=0.3, max_chunks=3, label="swing") for p, yaw in push.waypoints],
                Move(lambda ep, scene: scene["eef_pos"] + push.away * 0.08, CLOSE, tol=0.03, max_chunks=2,
                     label="back-off", freeze=True),
                up,
            ] + done
        # hinge about a vertical axis (a knob): grasp the knob's bar on the axis and turn the wrist
        solid = [g for g in art["geoms"] if np.isfinite(g[0]).all()]
        if not solid or abs(art["axis"][2]) < 0.9:  # a hinge about a horizontal axis (a flap): no primitive
            if finish:
                ep.skipped.append(f"{goal} {art['object']} (a hinge this expert has no primitive for)")
                ep.subgoal += 1
            return []
        lo, hi = max(solid, key=lambda g: float(g[1][2]))  # the tallest part is the grip bar
        grasp = art["anchor"].copy()
        grasp[2] = hi[2] - 0.02
        size = hi - lo
        yaw0 = 0.0 if size[0] <= size[1] else math.pi / 2  # fingers across the bar
        turn = (q_goal - art["qpos"]) * float(np.sign(art["axis"][2]) or 1.0)
        return [
            Move(grasp + np.array([0, 0, 0.08]), OPEN, yaw0, tol=0.02, label="approach-knob"),
            Move(grasp, OPEN, yaw0, tol=0.008, label="descend-knob"),
            Grip(CLOSE, label="grasp-knob"),
            Move(grasp, CLOSE, wrap_pi(yaw0 + turn), tol=0.02, max_chunks=5, label="turn"),
            Grip(OPEN, label="release-knob"), up,
        ] + done

    def _grasp_pose(self, name: str, scene: dict) -> tuple[np.ndarray, float]:
        obj = scene["objects"][name]
        lo, hi = obj["aabb_min"], obj["aabb_max"]
        c = (lo + hi) / 2
        size = hi - lo
        if any(k in name for k in RIM_GRASP):
            # grasp the wall on the side (+-x or +-y) with most free space around it
            best = None
            yaw_now = finger_yaw(scene["eef_mat"])
            for axis, sign in ((0, 1), (0, -1), (1, 1), (1, -1)):
                p = c.copy()
                p[axis] += sign * (size[axis] / 2 - 0.012)
                turn = abs(wrap_pi((0.0 if axis == 0 else math.pi / 2) - yaw_now))
                reach = float(np.linalg.norm(p[:2] - scene["robot_base"][:2]))
                # free space around the fingers, then little turning, and never at the edge of the arm's reach
                fingers = np.array([0.045, 0.012]) if axis == 0 else np.array([0.012, 0.045])  # open-hand footprint
                score = min(clearance(p, name, scene, fingers), 0.05) - 0.02 * turn - 2.0 * max(0.0, reach - 0.72)
                if best is None or score > best[0]:
                    best = (score, p, axis)
            _, p, axis = best
            p[2] = hi[2] - 0.03
            yaw = 0.0 if axis == 0 else math.pi / 2  # fingers close along the radial direction
            return p, yaw
        p = c.copy()
        p[2] = max(lo[2] + 0.012, hi[2] - 0.03)
        yaw = 0.0 if size[0] <= size[1] else math.pi / 2  # fingers close across the narrower side
        return p, yaw

    @staticmethod
    def _pre_shape_steps(name: str, yaw: float, scene: dict) -> int:
        """Steps of CLOSE that narrow the open hand to the object's width plus a margin before it descends, for an
        object inside a container (butter in a bowl): opened wide, the fingers land on the container's wall and
        the grip takes the container too. 0 otherwise, and for rim grasps (the fingers straddle a wall anyway)."""
        if any(k in name for k in RIM_GRASP) or container_around(name, scene) is None:
            return 0
        size = scene["objects"][name]["aabb_max"] - scene["objects"][name]["aabb_min"]
        across = float(size[1] if abs(wrap_pi(yaw)) > math.pi / 4 else size[0])  # along the closing axis
        return int(np.clip(round((OPEN_WIDTH - across - 0.025) / FINGER_STEP), 0, 7))

    def _pick(self, ep: EpisodeState, name: str, scene: dict) -> list:
        grasp, yaw = self._grasp_pose(name, scene)
        grasp = grasp + np.array([self._jitter(ep, 0.003), self._jitter(ep, 0.003), self._jitter(ep, 0.004)])
        bottom = float(scene["objects"][name]["aabb_min"][2])
        high = grasp.copy()
        ground = ground_height(scene)
        high[2] = max(grasp[2] + 0.15, ground + 0.22) + abs(self._jitter(ep, 0.015))  # arrive from above: low sweeps hit things and joint limits
        above = grasp + np.array([0, 0, 0.06])
        slide = self._slide_out(grasp, name, scene)
        lift = slide[0].pos.copy() if slide else grasp.copy()  # straight up from where the object is free
        lift[2] = max(grasp[2] + 0.15, ground + 0.25) + abs(self._jitter(ep, 0.015))

        steps = self._pre_shape_steps(name, yaw, scene)
        shape = [Grip(CLOSE, label="pre-shape", steps=steps)] if steps else []
        descend_grip = HOLD if steps else OPEN
        return [
            Move(high, OPEN, yaw, tol=0.03, max_chunks=6, label="approach-high"),
            Move(above, OPEN, yaw, tol=0.015, max_chunks=6, label="approach"),
            *shape,
            Move(grasp, descend_grip, yaw, tol=0.008, label="descend"),
            Grip(CLOSE, label="grasp", carry=name),
            Grip(CLOSE, label="squeeze"),
            *slide,
            Move(lift, CLOSE, None, tol=0.03, label="lift"),
            Check(lambda ep, scene, width: width > 0.002 and scene["objects"][name]["aabb_min"][2] > bottom + 0.03,
                  label="holding?"),
        ]

    def _slide_out(self, grasp: np.ndarray, name: str, scene: dict) -> list:
        """If an open drawer hangs over the object, slide it out sideways before lifting."""
        obj = scene["objects"][name]
        for art in scene["articulations"].values():
            lo, hi = art["aabb_min"], art["aabb_max"]
            if art["type"] != "slide" or not np.isfinite(lo).all() or lo[2] < obj["aabb_max"][2] - 0.01:
                continue
            overlap = np.minimum(hi[:2], obj["aabb_max"][:2]) - np.maximum(lo[:2], obj["aabb_min"][:2])
            if (overlap <= 0).any():
                continue
            axis = int(np.argmin(overlap))  # leave along the axis with the least overlap
            sign = 1.0 if obj["pos"][axis] > (lo[axis] + hi[axis]) / 2 else -1.0
            out = grasp.copy()
            out[axis] += sign * (overlap[axis] + 0.03)
            out[2] += 0.01
            return [Move(out, CLOSE, None, tol=0.015, max_chunks=4, label="slide-out")]
        return []

    @staticmethod
    def _slot(ep: EpisodeState, name: str, target: str, scene: dict) -> np.ndarray | None:
        """Where in a container region `name` goes when the goal puts several objects into it: side by side along
        the region's longer side, each as far out as its footprint allows. Centred, the first of two tall cartons
        left no room for the second, which landed on its rim and fell out."""
        bound = [g[1] for g in ep.goals if len(g) == 3 and str(g[0]).lower() == "in" and g[2] == target]
        site = scene["sites"][target]
        if len(bound) < 2 or name not in bound or site.get("size") is None:
            return None
        half = np.abs(np.asarray(site["mat"])[:2, :2]) @ np.asarray(site["size"])[:2]  # world-axis half extents
        axis = int(np.argmax(half))
        obj = scene["objects"][name]
        footprint = float(np.max(obj["aabb_max"][:2] - obj["aabb_min"][:2])) / 2
        k, n = bound.index(name), len(bound)
        xy = np.asarray(site["pos"][:2], dtype=np.float64).copy()
        xy[axis] += (2 * k / (n - 1) - 1) * max(half[axis] - footprint - 0.005, 0.0)
        return xy

    def _place(self, ep: EpisodeState, name: str, target: str, pred: str, scene: dict) -> list:
        def target_xy(scene):
            if target in scene["objects"]:
                return scene["objects"][target]["pos"][:2]
            xy = scene["sites"][target]["pos"][:2]
            if pred != "in":
                return xy
            slot = self._slot(ep, name, target, scene)
            if slot is not None:
                return slot
            # a container already holding something (two cans for one basket): beside it, not on top of it
            parent = scene["sites"][target].get("parent")
            held = [o["pos"][:2] for k, o in scene["objects"].items()
                    if k not in (name, parent) and not o["fixture"] and np.linalg.norm(o["pos"][:2] - xy) < 0.05]
            if not held:
                return xy
            spots = [xy + 0.04 * np.array(d) for d in ((1, 0), (-1, 0), (0, 1), (0, -1))]
            return max(spots, key=lambda p: min(float(np.linalg.norm(p - h)) for h in held))

        def surface_z(scene):
            if target in scene["objects"]:
                return scene["objects"][target]["aabb_max"][2]
            return scene["sites"][target]["pos"][2]

        def place_pos(z_bottom):
            """Where the gripper must go so the carried object's centre is over the target and
            its bottom at z_bottom: measured on the live object, so slip in the grasp is corrected."""
            def fn(ep, scene):
                obj, eef = scene["objects"][name], scene["eef_pos"]
                xy = eef[:2] + target_xy(scene) - obj["pos"][:2]
                return np.array([xy[0], xy[1], eef[2] + z_bottom(scene) - obj["aabb_min"][2]])
            return fn

        def carry_z(scene):  # never descend while travelling: only the final lowering goes down
            held = scene["objects"][name]["aabb_min"][2]
            return max(surface_z(scene) + 0.08, ground_height(scene) + 0.15, held)
        lift_extra = abs(self._jitter(ep, 0.015))
        carry = carry_z
        carry_z = lambda scene: carry(scene) + lift_extra
        release_z = lambda scene: surface_z(scene) + (0.03 if pred == "in" else 0.015)
        return [
            Move(place_pos(carry_z), CLOSE, tol=0.02, label="transport"),
            Move(place_pos(release_z), CLOSE, tol=0.015, max_chunks=5, label="lower"),
            Grip(OPEN, label="release"),
            Move(lambda ep, scene: scene["eef_pos"] + np.array([0, 0, 0.08]), OPEN, tol=0.03, max_chunks=2,
                 label="retreat", freeze=True),
            Move(np.zeros(3), OPEN, tol=10.0, rot_tol=10.0, label="subgoal-done"),
        ]


register("scripted", lambda seed=0: ScriptedExpert(seed), help="privileged-state scripted expert (LIBERO)")
