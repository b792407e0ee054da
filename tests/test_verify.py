"""`bench verify`: reruns recorded episodes and says, per episode, exact / outcome / different."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from bench.core.records import read_records
from bench.eval.verify import judge, overall, renderer_drift, select
from bench.sim.worker import frame_digest


def rec(task, init, success=True, steps=100, state="aaaa", error=None):
    return {"key": f"s/{task}/{init}", "task_id": task, "init_id": init, "success": success, "steps": steps,
            "final_state": state, "error": error}


def test_select_spreads_over_tasks_and_skips_errors():
    records = [rec(t, i) for t in (2, 0, 1) for i in range(3)] + [rec(3, 0, error="worker died")]
    assert [r["key"] for r in select(records, 4)] == ["s/0/0", "s/1/0", "s/2/0", "s/0/1"]
    assert len(select(records, None)) == 9


def test_judge_verdicts():
    assert judge(rec(0, 0), rec(0, 0)).verdict == "exact"
    assert judge(rec(0, 0), rec(0, 0, state="bbbb")).verdict == "outcome"
    assert judge(rec(0, 0), rec(0, 0, steps=99)).verdict == "outcome"
    assert judge(rec(0, 0, state=None), rec(0, 0)).note.startswith("no final_state")
    assert judge(rec(0, 0), rec(0, 0, success=False)).verdict == "different"
    assert judge(rec(0, 0), None).verdict == "error"
    assert overall([judge(rec(0, 0), rec(0, 0)), judge(rec(0, 0), rec(0, 0, state="b"))]) == "outcome"


def test_renderer_drift_is_named_only_where_shared_episodes_started_from_other_pixels():
    import numpy as np

    img = np.zeros((4, 6, 3), np.uint8)
    a = frame_digest({"agentview": img, "eye_in_hand": img})
    b = frame_digest({"agentview": img, "eye_in_hand": img + 1})
    assert a.startswith("4x6:") and a != b and a == frame_digest({"eye_in_hand": img, "agentview": img})
    assert frame_digest({}) is None  # a policy with no camera (the scripted expert) has no first frame

    def r(key, frame, proto="p", gl="egl"):
        return {"key": key, "protocol_hash": proto, "first_frame": frame, "sim": {"gl": gl, "versions": {"mujoco": "2"}}}

    ref = [r("s/0/0", a), r("s/0/1", a)]
    assert renderer_drift([r("s/0/0", a)], ref, "ref") is None
    assert renderer_drift([r("s/0/0", b, proto="q")], ref, "ref") is None  # another protocol: not comparable
    assert renderer_drift([r("s/0/0", "8x8:" + b[4:])], ref, "ref") is None  # another render size
    assert renderer_drift([r("s/0/0", None)], ref, "ref") is None  # recorded before first frames were kept
    warning = renderer_drift([r("s/0/0", b, gl="osmesa"), r("s/0/1", a)], ref, "ref")
    assert "1 of 2 episodes shared with ref" in warning and "GL osmesa" in warning and "GL egl" in warning
    assert "first frame differs" in judge({**rec(0, 0), "first_frame": a}, {**rec(0, 0), "first_frame": b}).note


def test_verify_reports_exact_tampered_and_changed_episodes_on_real_episodes(tmp_path, bench_cmd, gl):
    """Three real dit4dit episodes (cut to 24 steps: the protocol comes back from invocations.jsonl); in a copy
    of the records one digest is tampered and one outcome flipped. verify must call them exact, outcome and
    different, and exit 3."""
    run = tmp_path / "run"
    args = ["--suite", "libero_spatial", "--policy", "dit4dit", "--tasks", "0", "--episodes", "3", "--workers", "2",
            "--max-steps", "24"]
    done = subprocess.run([*bench_cmd, "run", *args, "--out", str(run)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    records = read_records(run / "episodes.jsonl")
    assert len(records) == 3 and all(r["math"].startswith("portable:") for r in records)
    [inv] = [json.loads(x) for x in (run / "invocations.jsonl").read_text().splitlines()]
    assert inv["math"]["id"] == records[0]["math"] and inv["math"]["cpu"]["model"]
    assert inv["math"]["libraries"]["mkl_cbwr"]["branch"] == "COMPATIBLE"
    frames = [r["first_frame"] for r in records]  # three initial states: three first frames, at the protocol's size
    assert all(re.fullmatch(r"224x224:[0-9a-f]{16}", f) for f in frames) and len(set(frames)) == 3, frames
    assert all(r["sim"]["gl"] in ("egl", "osmesa") for r in records)

    tampered = tmp_path / "tampered"
    tampered.mkdir()
    (tampered / "invocations.jsonl").write_text((run / "invocations.jsonl").read_text())
    by_init = {r["init_id"]: r for r in records}
    by_init[1]["final_state"] = "0" * 16
    by_init[1]["first_frame"] = "224x224:" + "0" * 16  # as if another renderer had drawn it
    by_init[2]["success"] = not by_init[2]["success"]
    # the checkpoint has moved since (as the first bundled one did): verify says how to point at it
    moved = tmp_path / "moved_checkpoint"
    shutil.copytree(Path(__file__).resolve().parent.parent / records[0]["checkpoint"], moved)
    for r in by_init.values():
        r["checkpoint"] = "bench/checkpoints/no_longer_here"
    (tampered / "episodes.jsonl").write_text("".join(json.dumps(by_init[i]) + "\n" for i in range(3)))
    lost = subprocess.run([*bench_cmd, "verify", str(tampered), "--out", str(tmp_path / "lost")],
                          capture_output=True, text=True)
    assert lost.returncode == 2 and "pass its new place with --checkpoint" in " ".join((lost.stdout + lost.stderr).split())
    other = tmp_path / "other_checkpoint"
    shutil.copytree(moved, other)
    (other / "stats.json").write_text("{}")
    wrong = subprocess.run([*bench_cmd, "verify", str(tampered), "--checkpoint", str(other)],
                           capture_output=True, text=True)
    assert wrong.returncode == 2 and "is not the file the records used" in " ".join((wrong.stdout + wrong.stderr).split())
    check = subprocess.run([*bench_cmd, "verify", str(tampered), "--checkpoint", str(moved), "--out",
                            str(tmp_path / "verify")], capture_output=True, text=True)
    assert check.returncode == 3, check.stdout + check.stderr
    report = json.loads((tmp_path / "verify" / "verify.json").read_text())
    verdicts = {e["key"]: e["verdict"] for e in report["episodes"]}
    assert verdicts == {"libero_spatial/0/0": "exact", "libero_spatial/0/1": "outcome",
                        "libero_spatial/0/2": "different"}
    assert report["overall"] == "different" and "should be exact" in report["expectation"]
    notes = {e["key"]: e["note"] for e in report["episodes"]}
    assert "first frame differs" in notes["libero_spatial/0/1"] and not notes["libero_spatial/0/0"]
    assert (tmp_path / "verify" / "verify.md").read_text().startswith("# bench verify: different")
