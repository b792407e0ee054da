"""`bench lint`: conventions that silently cost points, checked before any episode runs.

A policy (in-process or remote) is asked for action chunks on a few windows of demonstrations of the suite,
exactly as `bench run` would ask it, and its answers are set against the demos' own actions: a flipped camera,
a gripper of the wrong sign or in [0, 1] units, actions at another scale, rotations that jump by a full turn (a
quaternion sign flip turned into axis-angle), a chunk too short for the protocol, a state of another layout.
Each finding names what to fix. The checks compare a policy with the demos, so they need a policy that has
learned something; on an untrained one they are inconclusive, not failures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

WINDOWS = 24
SCALE_BAND = (1 / 3, 3.0)  # the policy's action RMS over the demos', per pose dimension
ROTATION_DIMS = slice(3, 6)  # LIBERO's delta rotation (axis-angle) in the action


@dataclass
class Finding:
    check: str
    ok: bool | None  # None: inconclusive (the policy's answers say too little)
    detail: str
    fix: str = ""


@dataclass
class LintReport:
    policy: str
    windows: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.ok is False]

    def to_dict(self) -> dict:
        return {"policy": self.policy, "windows": self.windows, "findings": [asdict(f) for f in self.findings]}


def demo_windows(demos: list[str | Path], cameras: tuple[str, ...], chunk: int, windows: int = WINDOWS) -> list[dict]:
    """`windows` windows spread evenly over the demos: current frames, state, instruction and the demo's chunk."""
    import tempfile

    from bench.demos.dataset import LiberoDemoDataset, WindowSpec

    with tempfile.TemporaryDirectory() as tmp:  # statistics are not needed: keep them out of the user's folder
        ds = LiberoDemoDataset([str(d) for d in demos], WindowSpec(cameras=cameras, n_current=1, n_future=0,
                                                                   chunk=chunk), stats_path=Path(tmp) / "s.json")
        picks = np.linspace(0, len(ds) - 1, min(windows, len(ds))).round().astype(int)
        out = []
        for i in picks:
            item = ds[int(i)]
            out.append({"images": {c: item["images"][c][0] for c in cameras}, "state": item["state"],
                        "prompt": item["language"], "actions": item["actions"], "mask": item["action_mask"],
                        "demo": ds.locate(int(i))[0].key})
        ds.close()
    return out


def ask(policy, rows: list[dict], suite: str, rotate: bool = False) -> np.ndarray:
    """The policy's chunks for the rows, one episode per row as `bench run` starts them (images rotated 180
    degrees with `rotate`)."""
    from bench.policies.contract import EpisodeInfo, ObservationBatch
    from bench.sim.suites import get_suite

    task = get_suite(suite).task(0)
    chunks = []
    for n, row in enumerate(rows):
        key = f"lint{n}{'r' if rotate else ''}"
        policy.reset(EpisodeInfo(key=key, task=task, init_id=n, seed=0))
        images = {c: (np.ascontiguousarray(v[::-1, ::-1]) if rotate else v)[None] for c, v in row["images"].items()}
        batch = ObservationBatch(episode_keys=[key], images=images, state=row["state"][None].astype(np.float32),
                                 prompts=[row["prompt"]], steps=np.array([0]))
        chunks.append(np.asarray(policy.act(batch), dtype=np.float64)[0])
    return np.stack(chunks)


def _error(pred: np.ndarray, demo: np.ndarray, scale: np.ndarray) -> float:
    n = min(pred.shape[1], demo.shape[1])
    return float((((pred[:, :n] - demo[:, :n]) / scale) ** 2).mean())


def check_actions(pred: np.ndarray, demo: np.ndarray, pred_rotated: np.ndarray | None = None) -> list[Finding]:
    """The convention checks on chunks (windows, T, 7) against the demos' chunks."""
    out = []
    pose = demo[..., :6].reshape(-1, 6)
    got = pred[..., :6].reshape(-1, 6)
    rms_demo, rms_pred = np.sqrt((pose ** 2).mean(0)) + 1e-9, np.sqrt((got ** 2).mean(0))
    ratio = rms_pred / rms_demo
    off = [i for i, r in enumerate(ratio) if not SCALE_BAND[0] <= r <= SCALE_BAND[1]]
    rot = np.abs(pred[..., ROTATION_DIMS]).max(axis=-1)
    demo_rot = np.abs(demo[..., ROTATION_DIMS]).max(axis=-1)
    turned = float((rot > np.pi / 2).mean()) if demo_rot.max() < np.pi / 4 else 0.0
    if turned > 0.1:
        out.append(Finding("rotation", False, f"{turned:.0%} of the rotation actions exceed pi/2 where the demos' "
                           f"stay below {demo_rot.max():.2f}: rotations a full turn off",
                           "a quaternion and its negative are one rotation: convert with the shortest arc "
                           "(flip q when its w < 0, or keep consecutive quaternions' dot product positive)"))
    else:
        out.append(Finding("rotation", True, f"rotation actions within {rot.max():.2f} (demos {demo_rot.max():.2f})"))
    if off:
        out.append(Finding("scale", False, "pose dims " + ", ".join(f"{i} x{ratio[i]:.2f}" for i in off)
                           + " of the demos' scale", "unnormalise with the statistics the policy was trained with "
                           "(min/max or percentiles, as its own evaluation client does); check the action units"))
    else:
        out.append(Finding("scale", True, "pose action scale x" + ", x".join(f"{r:.2f}" for r in ratio)
                           + " of the demos'"))
    g, g_demo = pred[..., -1].reshape(-1), demo[..., -1].reshape(-1)
    if g.min() >= -0.05 and g.max() <= 1.05 and g_demo.min() < -0.5:
        out.append(Finding("gripper range", False, f"gripper actions in [{g.min():.2f}, {g.max():.2f}]; the suite's "
                           "are -1 (open) / +1 (closed)", "map a [0, 1] gripper to -1 / +1 (2 g - 1, or binarise at 0.5)"))
    else:
        out.append(Finding("gripper range", True, f"gripper actions in [{g.min():.2f}, {g.max():.2f}]"))
    both = (np.abs(g) > 0.1) & (np.abs(g_demo) > 0.1)
    if both.sum() < 8 or len(np.unique(np.sign(g_demo[both]))) < 2:
        out.append(Finding("gripper sign", None, "too few decided gripper actions in both signs to judge"))
    else:
        agree = float((np.sign(g[both]) == np.sign(g_demo[both])).mean())
        flipped = agree < 0.3
        out.append(Finding("gripper sign", not flipped, f"the gripper's sign agrees with the demos' on {agree:.0%}",
                           "LIBERO's gripper closes at +1 and opens at -1: negate the policy's gripper" if flipped
                           else ""))
    if pred_rotated is not None:
        scale = np.sqrt((demo.reshape(-1, demo.shape[-1]) ** 2).mean(0)) + 1e-6
        upright, rotated = _error(pred, demo, scale), _error(pred_rotated, demo, scale)
        if rotated < 0.8 * upright:
            out.append(Finding("camera", False, f"the policy acts closer to the demos on frames rotated 180 degrees "
                               f"(error {rotated:.3f}) than on the suite's upright frames ({upright:.3f})",
                               "the suite sends upright frames (LIBERO renders upside down and flips them): the "
                               "policy or its adapter flips them again; remove that flip"))
        elif upright < 0.8 * rotated:
            out.append(Finding("camera", True, f"upright frames {upright:.3f} vs rotated {rotated:.3f}"))
        else:
            out.append(Finding("camera", None, f"orientation makes little difference ({upright:.3f} upright, "
                               f"{rotated:.3f} rotated): the policy may not use its cameras yet"))
    return out


def check_spec(policy, suite: str) -> list[Finding]:
    from bench.policies.contract import SpecMismatch, check_spec as check
    from bench.sim.suites import get_suite

    s = get_suite(suite)
    try:
        check(policy.spec, s.protocol, "policy", suite)
    except SpecMismatch as exc:
        return [Finding("spec", False, str(exc).split(":", 1)[1].strip(), "adapt the policy's declared I/O or its "
                        "adapter to the suite's protocol (bench list suites shows it)")]
    return [Finding("spec", True, f"chunk {policy.spec.chunk_length} >= executed {s.protocol.executed_chunk}, state "
                    f"{policy.spec.state_layout}, action {policy.spec.action_convention}")]


def lint_policy(policy, name: str, suite: str, demos: list[str | Path], windows: int = WINDOWS,
                camera: bool = True) -> LintReport:
    """Every policy check on `windows` demo windows (`camera`: also ask on rotated frames, twice the calls)."""
    report = LintReport(name, 0, check_spec(policy, suite))
    if report.problems:
        return report
    rows = demo_windows(demos, policy.spec.cameras, policy.spec.chunk_length, windows)
    report.windows = len(rows)
    demo = np.stack([r["actions"] for r in rows]).astype(np.float64)
    pred = ask(policy, rows, suite)
    report.findings += check_actions(pred, demo, ask(policy, rows, suite, rotate=True) if camera else None)
    return report
