"""Privileged scene state for experts: what a scripted policy may know that a
learned one may not (object poses and extents, region sites, articulation joints,
the BDDL goal). Computed in the sim worker, sent only to policies whose spec
asks for it (`PolicySpec.privileged`).
"""

from __future__ import annotations

import numpy as np

_CORNERS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)


class SceneIndex:
    """Per-env lookups that never change (body subtrees, collision geoms, joints)."""

    def __init__(self, env):
        m = env.sim.model._model
        parent = m.body_parentid
        self.geoms: dict[str, np.ndarray] = {}
        self.joints: dict[str, list[tuple[str, int]]] = {}
        names = list(env.objects_dict) + list(env.fixtures_dict)
        for name in names:
            root = env.obj_body_id[name]
            bodies = set()
            for b in range(m.nbody):
                x = b
                while x not in (0, root):
                    x = parent[x]
                if x == root:
                    bodies.add(b)
            geoms = [g for g in range(m.ngeom) if m.geom_bodyid[g] in bodies
                     and (m.geom_contype[g] or m.geom_conaffinity[g])]
            self.geoms[name] = np.array(geoms, dtype=np.int64)
            self.joints[name] = [
                (env.sim.model.joint_id2name(j), int(m.jnt_qposadr[j]))
                for j in range(m.njnt) if m.jnt_bodyid[j] in bodies and m.jnt_type[j] != 0  # not free joints
            ]
        self.names = names
        self.fixtures = set(env.fixtures_dict)
        self.sites = list(env.object_sites_dict)
        self.site_joints = {n: list(getattr(so, "joints", None) or []) for n, so in env.object_sites_dict.items()}
        self.site_parent = {n: getattr(so, "parent_name", None) for n, so in env.object_sites_dict.items()}
        # Articulated parts (drawers, doors, knobs): the joint, its object, and the moving body's geoms.
        self.articulations = {}
        for name in names:
            for jname, adr in self.joints[name]:
                jid = env.sim.model.joint_name2id(jname)
                body = m.jnt_bodyid[jid]
                geoms = [g for g in range(m.ngeom) if m.geom_bodyid[g] == body and m.geom_contype[g]]
                # everything of the moving part that something can touch (a microwave door's geoms only
                # receive contacts: contype 0, conaffinity 1)
                touchable = [g for g in range(m.ngeom) if m.geom_bodyid[g] == body
                             and (m.geom_contype[g] or m.geom_conaffinity[g])]
                self.articulations[jname] = (name, jid, adr, np.array(geoms, dtype=np.int64),
                                             np.array(touchable, dtype=np.int64))
        self.ranges = {}
        for name in names:
            obj = env.get_object(name)
            art = getattr(obj, "object_properties", {}).get("articulation", {})
            self.ranges[name] = {k.replace("default_", ""): list(v) for k, v in art.items() if v}


def _aabb(model, data, geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(geoms) == 0:
        return np.full(3, np.nan), np.full(3, np.nan)
    world = _corners(model, data, geoms).reshape(-1, 3)
    return world.min(0), world.max(0)


def _corners(model, data, geoms: np.ndarray) -> np.ndarray:
    """World corners (G, 8, 3) of each geom's oriented bounding box: exact for a box at any angle."""
    aabb = model.geom_aabb[geoms]
    pts = aabb[:, None, :3] + aabb[:, None, 3:] * _CORNERS[None]
    rot = data.geom_xmat[geoms].reshape(-1, 3, 3)
    return np.einsum("gij,gkj->gki", rot, pts) + data.geom_xpos[geoms][:, None, :]


def snapshot(env, index: SceneIndex) -> dict:
    """Current privileged state of `env` (a LIBERO BDDL env, not the ControlEnv wrapper)."""
    m, d = env.sim.model._model, env.sim.data._data
    objects = {}
    for name in index.names:
        bid = env.obj_body_id[name]
        lo, hi = _aabb(m, d, index.geoms[name])
        objects[name] = {
            "pos": d.xpos[bid].copy(), "quat_wxyz": d.xquat[bid].copy(), "aabb_min": lo, "aabb_max": hi,
            "fixture": name in index.fixtures,
            "joints": {j: float(d.qpos[adr]) for j, adr in index.joints[name]},
        }
        objects[name]["ranges"] = index.ranges[name]
    sites = {}
    for name in index.sites:
        sid = env.sim.model.site_name2id(name)
        sites[name] = {"pos": d.site_xpos[sid].copy(), "mat": d.site_xmat[sid].reshape(3, 3).copy(),
                       "size": m.site_size[sid].copy(), "joints": index.site_joints[name],
                       "parent": index.site_parent[name]}
    articulations = {}
    for jname, (owner, jid, adr, geoms, touchable) in index.articulations.items():
        lo, hi = _aabb(m, d, geoms)
        articulations[jname] = {"object": owner, "qpos": float(d.qpos[adr]), "anchor": d.xanchor[jid].copy(),
                                "axis": d.xaxis[jid].copy(), "type": "slide" if m.jnt_type[jid] == 2 else "hinge",
                                "aabb_min": lo, "aabb_max": hi,
                                "geoms": [(_aabb(m, d, geoms[i:i + 1])) for i in range(len(geoms))],
                                "corners": _corners(m, d, touchable)}
    base = d.xpos[env.sim.model.body_name2id("robot0_link0")].copy()
    return {"objects": objects, "sites": sites, "articulations": articulations,
            "goal": [list(g) for g in env.parsed_problem["goal_state"]],
            "robot_base": base,
            "eef_pos": env._eef_xpos.copy(), "eef_mat": np.array(env._eef_xmat).reshape(3, 3).copy()}
