"""Demonstrations: generation with the scripted expert, replay, the LIBERO-layout
loader (ours and a hand-built official-layout file), errors, inspect."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.demos.dataset import LiberoDemoDataset, WindowSpec
from bench.demos.libero_hdf5 import DemoFileError, read_demos

FIXTURE = Path(__file__).parent / "fixtures" / "libero_object_t0_2demos_32.hdf5"


def test_loader_on_a_generated_file(tmp_path):
    ds = LiberoDemoDataset(FIXTURE, WindowSpec(n_current=1, n_future=4, future_stride=2, chunk=8),
                           stats_path=tmp_path / "stats.json")
    lengths = [d.length for d in ds.demos]
    assert len(ds.demos) == 2 and len(ds) == sum(lengths)
    s = ds[3]
    assert s["images"]["agentview"].shape == (5, 32, 32, 3) and s["images"]["agentview"].dtype == np.uint8
    assert list(s["frame_ids"]) == [3, 5, 7, 9, 11]
    assert s["state"].shape == (8,) and s["actions"].shape == (8, 7) and s["action_mask"].all()
    assert s["language"] == "pick up the alphabet soup and place it in the basket"
    with h5py.File(FIXTURE) as f:
        g = f["data/" + ds.demos[0].key]  # the first demo by episode key (the file holds attempt 1 first)
        raw = g["obs/agentview_rgb"][3]
        assert np.array_equal(s["images"]["agentview"][0], raw[::-1, ::-1])  # upright
        assert np.allclose(s["state"][:6], g["obs/ee_states"][3]) and np.allclose(s["state"][6:], g["obs/gripper_states"][3])
        assert np.allclose(s["actions"], g["actions"][3:11])
    end = ds[lengths[0] - 2]  # near the end of demo 0: padded chunk, clamped future frames
    assert end["action_mask"].tolist() == [True, True] + [False] * 6
    assert np.array_equal(end["actions"][2], end["actions"][1])
    assert end["frame_ids"][-1] == lengths[0] - 1
    assert ds[lengths[0]]["frame_ids"][0] == 0  # the next window is demo 1's first step
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["num_steps"] == len(ds) and len(stats["actions"]["mean"]) == 7 and len(stats["state"]["q99"]) == 8
    assert LiberoDemoDataset(FIXTURE, stats_path=tmp_path / "stats.json").stats == stats  # loaded, not recomputed


def _official_layout(path: Path, drop: str | None = None) -> None:
    """A file with the key layout of LIBERO's released datasets (one task per file, no per-demo task attrs)."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["problem_info"] = json.dumps({"problem_name": "libero_tabletop_manipulation",
                                                 "domain_name": "robosuite",
                                                 "language_instruction": "put the bowl on the plate"})
        data.attrs["bddl_file_name"] = "libero/libero/bddl_files/libero_goal/put_the_bowl_on_the_plate.bddl"
        data.attrs["env_args"] = json.dumps({"type": 1, "env_name": "Libero_Tabletop_Manipulation"})
        data.attrs["num_demos"] = 2
        for i in range(2):
            n = 12 + i
            g = data.create_group(f"demo_{i}")
            g.attrs["num_samples"] = n
            g.attrs["model_file"] = "<mujoco/>"
            g.create_dataset("actions", data=rng.uniform(-1, 1, (n, 7)))
            g.create_dataset("states", data=rng.normal(size=(n, 79)))
            g.create_dataset("robot_states", data=rng.normal(size=(n, 9)))
            g.create_dataset("rewards", data=np.zeros(n))
            g.create_dataset("dones", data=np.zeros(n, np.uint8))
            obs = {"agentview_rgb": rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8),
                   "eye_in_hand_rgb": rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8),
                   "ee_pos": rng.normal(size=(n, 3)), "ee_ori": rng.normal(size=(n, 3)),
                   "gripper_states": rng.normal(size=(n, 2)), "joint_states": rng.normal(size=(n, 7))}
            for k, v in obs.items():
                if k != drop:
                    g.create_dataset(f"obs/{k}", data=v)


def test_loader_reads_the_official_key_layout(tmp_path):
    path = tmp_path / "put_the_bowl_on_the_plate_demo.hdf5"
    _official_layout(path)
    ds = LiberoDemoDataset(path, WindowSpec(chunk=4), stats_path=tmp_path / "s.json")
    assert len(ds) == 25 and ds.demos[0].task == "put_the_bowl_on_the_plate"
    s = ds[0]
    with h5py.File(path) as f:
        o = f["data/demo_0/obs"]
        assert np.allclose(s["state"], np.concatenate([o["ee_pos"][0], o["ee_ori"][0], o["gripper_states"][0]]))
    assert s["language"] == "put the bowl on the plate"
    assert len(read_demos(path)) == 2  # the replay reader too


@pytest.mark.parametrize("drop, key", [("eye_in_hand_rgb", "obs/eye_in_hand_rgb"), ("gripper_states", "gripper_states")])
def test_missing_key_names_file_and_key(tmp_path, drop, key):
    path = tmp_path / "broken.hdf5"
    _official_layout(path, drop=drop)
    with pytest.raises(DemoFileError) as exc:
        LiberoDemoDataset(path, stats_path=tmp_path / "s.json")
    assert str(path) in str(exc.value) and key in str(exc.value)


def test_corrupt_or_missing_file(tmp_path):
    bad = tmp_path / "corrupt.hdf5"
    bad.write_bytes(b"\x89HDF\r\n" + bytes(range(256)) * 4)
    for p in (bad, tmp_path / "absent.hdf5"):
        with pytest.raises(DemoFileError, match=str(p.name)):
            LiberoDemoDataset(p)
        with pytest.raises(DemoFileError, match=str(p.name)):
            read_demos(p)
    result = CliRunner().invoke(app, ["demos", "inspect", str(bad)])
    assert result.exit_code == 2 and "corrupt.hdf5" in " ".join(result.output.split())


def test_inspect_prints_counts_and_writes_a_contact_sheet(tmp_path):
    sheet = tmp_path / "sheet.png"
    result = CliRunner().invoke(app, ["demos", "inspect", str(FIXTURE), "--sheet", str(sheet)])
    assert result.exit_code == 0, result.output
    assert "alphabet_soup" in " ".join(result.output.split()) and "2 demos" in " ".join(result.output.split())
    assert sheet.stat().st_size > 5000 and sheet.read_bytes()[:4] == b"\x89PNG"


def test_generate_then_replay_every_demo(tmp_path, gl):
    """The expert's successful episodes, written in LIBERO's layout, replay to success."""
    from bench.eval.demos import generate
    from bench.demos.libero_hdf5 import demo_counts
    from bench.policies.replay import ReplayPolicy
    from bench.core.records import read_records
    from bench.eval.runner import RunConfig, Runner
    from bench.sim.suites import get_suite

    suite = get_suite("libero_object")
    out = tmp_path / "demos.hdf5"
    summary = generate(suite, [1], per_task=1, out=out, resolution=32, workers=1)
    assert summary["per_task"] == {suite.task(1).name: 1}
    with h5py.File(out) as f:
        g = f["data/demo_0"]
        for key in ["actions", "states", "robot_states", "rewards", "dones", "obs/agentview_rgb",
                    "obs/eye_in_hand_rgb", "obs/ee_states", "obs/gripper_states", "obs/joint_states"]:
            assert key in g, key
        assert g["obs/agentview_rgb"].shape[1:] == (32, 32, 3) and g["dones"][-1] == 1
        assert "grasp" not in g.attrs and "(:goal" in g.attrs["bddl_file_content"]
        assert np.array_equal(g.attrs["init_state"], g["states"][0])
        # the demo starts at LIBERO's init state with the protocol's wait steps as its first actions
        assert np.allclose(g["states"][0], suite.initial_conditions(1)[g.attrs["init_id"]])
        assert np.allclose(g["actions"][:10], suite.protocol.wait_action)
    policy = ReplayPolicy(str(out))
    cfg = RunConfig(suite=suite, policy_name="replay", task_ids=[1], out=tmp_path / "replay", workers=1)
    Runner(cfg, policy).run()
    [rec] = read_records(tmp_path / "replay" / "episodes.jsonl")
    assert rec["success"], rec
    # a rerun tops up with a new attempt (a new seed), never a copy of a demo already there
    generate(suite, [1], per_task=2, out=out, resolution=32, workers=1)
    with h5py.File(out) as f:
        keys = [f["data"][name].attrs["episode_key"] for name in f["data"]]
    assert len(keys) == 2 and len(set(keys)) == 2, keys
    assert demo_counts(out) == {suite.task(1).name: 2} and demo_counts(tmp_path / "none.hdf5") == {}


def test_soft_reset_clears_the_grippers_integrated_command(gl):
    """robosuite's gripper integrates its commands; a soft reset must not carry a closed grip over."""
    from bench.sim.libero.env import LiberoSim
    from bench.sim.suites import get_suite

    suite = get_suite("libero_object")
    sim = LiberoSim(suite.task(0), suite.protocol)
    init = suite.initial_conditions(0)[0]
    sim.reset_to(init, seed=7)
    first = [sim.state().copy() for _ in range(6) if sim.step(np.array([0, 0, 0, 0, 0, 0, -1.0])) or True]
    for _ in range(12):
        sim.step(np.array([0, 0, 0, 0, 0, 0, 1.0]))  # end the "episode" with the gripper closed
    sim.reset_to(init, seed=7)
    again = [sim.state().copy() for _ in range(6) if sim.step(np.array([0, 0, 0, 0, 0, 0, -1.0])) or True]
    sim.close()
    assert np.allclose(np.array(first), np.array(again), atol=1e-6)


def _lerobot_dataset(root: Path, lengths=(6, 9)) -> dict:
    """A stand-in with the layout of openpi's LeRobot LIBERO dataset (v2: meta/ + parquet with PNG images)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    rng = np.random.default_rng(1)
    (root / "meta").mkdir(parents=True)
    feats = {"image": {"dtype": "image", "shape": [16, 16, 3]}, "wrist_image": {"dtype": "image", "shape": [16, 16, 3]},
             "state": {"dtype": "float32", "shape": [8]}, "actions": {"dtype": "float32", "shape": [7]},
             "timestamp": {"dtype": "float32", "shape": [1]}, "frame_index": {"dtype": "int64", "shape": [1]},
             "episode_index": {"dtype": "int64", "shape": [1]}, "index": {"dtype": "int64", "shape": [1]},
             "task_index": {"dtype": "int64", "shape": [1]}}
    (root / "meta" / "info.json").write_text(json.dumps({
        "codebase_version": "v2.0", "fps": 10, "chunks_size": 1000, "total_episodes": len(lengths), "features": feats,
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"}))
    (root / "meta" / "tasks.jsonl").write_text('{"task_index": 0, "task": "put the bowl on the plate"}\n'
                                               '{"task_index": 1, "task": "turn on the stove"}\n')
    (root / "meta" / "episodes.jsonl").write_text("".join(
        json.dumps({"episode_index": i, "tasks": [["put the bowl on the plate", "turn on the stove"][i]], "length": n}) + "\n"
        for i, n in enumerate(lengths)))
    truth = {}
    for i, n in enumerate(lengths):
        imgs = rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8)

        def png(a):
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, format="PNG")
            return {"bytes": buf.getvalue(), "path": None}

        cols = {"image": [png(a) for a in imgs], "wrist_image": [png(a[::-1]) for a in imgs],
                "state": rng.normal(size=(n, 8)).astype(np.float32).tolist(),
                "actions": rng.uniform(-1, 1, (n, 7)).astype(np.float32).tolist(),
                "timestamp": (np.arange(n) / 10).tolist(), "frame_index": list(range(n)),
                "episode_index": [i] * n, "index": list(range(n)), "task_index": [i] * n}
        (root / "data" / "chunk-000").mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(cols), root / "data" / "chunk-000" / f"episode_{i:06d}.parquet")
        truth[i] = (imgs, np.array(cols["state"], np.float32), np.array(cols["actions"], np.float32))
    return truth


def test_loader_reads_lerobot_format_through_the_same_path(tmp_path):
    root = tmp_path / "libero_lerobot"
    truth = _lerobot_dataset(root)
    ds = LiberoDemoDataset(root, WindowSpec(n_future=2, future_stride=2, chunk=4))
    assert len(ds) == 15 and [d.task for d in ds.demos] == ["put the bowl on the plate", "turn on the stove"]
    s = ds[6 + 3]  # episode 1, step 3
    imgs, states, actions = truth[1]
    assert list(s["frame_ids"]) == [3, 5, 7]
    assert np.array_equal(s["images"]["agentview"][0], imgs[3])  # LeRobot images are already upright
    assert np.array_equal(s["images"]["eye_in_hand"][1], imgs[5][::-1])
    assert np.allclose(s["state"], states[3]) and np.allclose(s["actions"], actions[3:7])
    assert s["language"] == "turn on the stove"
    assert (root / "bench_stats.json").exists() and ds.stats["num_steps"] == 15
    both = LiberoDemoDataset([FIXTURE, root], WindowSpec(chunk=4), stats_path=tmp_path / "both.json")
    assert len(both) == len(ds) + sum(d.length for d in LiberoDemoDataset(FIXTURE, stats_path=tmp_path / "f.json").demos)


def test_replayed_demos_get_the_wait_steps_back_in_their_budget(tmp_path):
    """Demo actions start with the protocol's wait steps; a demo that used its whole budget must fit."""
    from bench.policies.replay import ReplayPolicy
    from bench.eval.runner import RunConfig, plan_episodes
    from bench.sim.suites import get_suite

    suite = get_suite("libero_object")
    policy = ReplayPolicy(FIXTURE)
    cfg = RunConfig(suite=suite, policy_name="replay", task_ids=[0], out=tmp_path)
    planned = plan_episodes(cfg, policy)
    assert len(planned) == 2
    assert all(p.wait_steps == 0 and p.max_steps == suite.protocol.max_steps + suite.protocol.wait_steps
               for p in planned)
    normal = plan_episodes(RunConfig(suite=suite, policy_name="zero", task_ids=[0], out=tmp_path, episodes=1),
                           object())
    assert normal[0].max_steps == suite.protocol.max_steps and normal[0].wait_steps == suite.protocol.wait_steps


def test_demo_fractions_are_nested_per_task_subsets():
    from bench.demos.dataset import _DemoIndex, fraction_of_demos

    demos = [_DemoIndex(0, f"demo_{i}", 10, f"task{i % 3}", "l") for i in range(30)]
    ten, half, full = (fraction_of_demos(demos, f, seed=0) for f in (0.1, 0.5, 1.0))
    assert len(full) == 30 and len(half) == 15 and len(ten) == 3
    assert {d.task for d in ten} == {"task0", "task1", "task2"}  # every task keeps its share
    assert {d.key for d in ten} <= {d.key for d in half}  # a larger fraction adds demos, never swaps them
    assert [d.key for d in half] == sorted((d.key for d in half), key=lambda k: int(k.split("_")[1]))  # file order
    assert {d.key for d in fraction_of_demos(demos, 0.5, seed=1)} != {d.key for d in half}
    with pytest.raises(ValueError, match="must be in"):
        fraction_of_demos(demos, 0.0)


def test_frames_every_k_steps_are_the_full_files_frames_at_those_steps(tmp_path, gl):
    """--frame-every 4 runs the same demo (same attempt, same seed) and keeps the full file's frames at every
    4th step, in phase with the policy's first observation; states and actions of every step are kept."""
    from bench.eval.demos import generate
    from bench.demos.libero_hdf5 import file_frame_every
    from bench.sim.suites import get_suite

    suite = get_suite("libero_object")
    full, sparse = tmp_path / "full.hdf5", tmp_path / "sparse.hdf5"
    generate(suite, [1], per_task=1, out=full, resolution=32, workers=1)
    generate(suite, [1], per_task=1, out=sparse, resolution=32, workers=1, frame_every=4)
    assert file_frame_every(full) == 1 and file_frame_every(sparse) == 4
    with h5py.File(full) as f, h5py.File(sparse) as s:
        a, b = f["data/demo_0"], s["data/demo_0"]
        n = len(a["actions"])
        assert np.array_equal(a["actions"][()], b["actions"][()]) and np.array_equal(a["states"][()], b["states"][()])
        steps = b["obs/frame_steps"][()]
        wait = suite.protocol.wait_steps
        assert list(steps) == [i for i in range(n) if (i - wait) % 4 == 0] and wait in steps
        for cam in ("agentview_rgb", "eye_in_hand_rgb"):
            assert np.array_equal(b[f"obs/{cam}"][()], a[f"obs/{cam}"][()][steps])
        assert len(b["obs/ee_states"]) == n
    spec = WindowSpec(n_current=1, n_future=1, future_stride=8, chunk=8)
    ds_full = LiberoDemoDataset(full, spec, stats_path=tmp_path / "f.json")
    ds = LiberoDemoDataset(sparse, spec, stats_path=tmp_path / "s.json")
    assert len(ds) == len(steps) and ds.fingerprint() != ds_full.fingerprint()
    for i, t in enumerate(steps):
        x, y = ds[i], ds_full[int(t)]
        assert x["frame_ids"][0] == t and np.array_equal(x["actions"], y["actions"])
        if t + 8 <= steps[-1]:  # the future frame is the full file's; past the last frame, the last one
            assert np.array_equal(x["images"]["agentview"], y["images"]["agentview"])
        else:
            assert x["frame_ids"][1] == steps[-1]
    with pytest.raises(DemoFileError, match="frames every 4 steps"):  # 6 apart: not a frame the file has
        LiberoDemoDataset(sparse, WindowSpec(n_future=1, future_stride=6), stats_path=tmp_path / "x.json")
    with pytest.raises(ValueError, match="one frame spacing"):  # a file never mixes spacings
        generate(suite, [1], per_task=2, out=sparse, resolution=32, workers=1, frame_every=2)
    one_frame = LiberoDemoDataset(sparse, WindowSpec(n_future=0, future_stride=1), stats_path=tmp_path / "y.json")
    assert len(one_frame) == len(steps)  # a window of one frame (groot, pi05) takes any spacing


def test_a_task_the_policy_never_solves_is_not_topped_up_forever(tmp_path, gl):
    """A whole round without one kept demo (random actions on a LIBERO task) ends that task's attempts: the
    summary names it instead of spending the top-up rounds on it. (Frames every 40 steps: rendering is most of
    an episode's cost, and this test is about the attempts.)"""
    from bench.eval.demos import generate
    from bench.sim.suites import get_suite

    suite = get_suite("libero_object")
    summary = generate(suite, [1], per_task=1, out=tmp_path / "demos.hdf5", resolution=32, workers=1,
                       policy_name="random", frame_every=40)
    assert summary["attempts"] == 1 and summary["kept"] == 0
    assert summary["unsolved"] == [suite.task(1).name] and summary["per_task"] == {suite.task(1).name: 0}
    # The verdict is written in the file: a rerun (another `bench demos make gr1_tabletop_proxy`) does not replay the same
    # failing attempts, and --retry-unsolved does.
    from bench.demos.libero_hdf5 import file_unsolved
    assert file_unsolved(tmp_path / "demos.hdf5") == [suite.task(1).name]
    again = generate(suite, [1], per_task=1, out=tmp_path / "demos.hdf5", resolution=32, workers=1,
                     policy_name="random", frame_every=40)
    assert again["attempts"] == 0 and again["unsolved"] == [suite.task(1).name]
    retried = generate(suite, [1], per_task=1, out=tmp_path / "demos.hdf5", resolution=32, workers=1,
                       policy_name="random", retry_unsolved=True, frame_every=40)
    assert retried["attempts"] == 1 and file_unsolved(tmp_path / "demos.hdf5") == [suite.task(1).name]


def test_the_same_demos_under_other_names_read_back_alike(tmp_path):
    """`bench demos generate` names a demo when its worker finishes (timing), so regenerating a training set
    gives the same demos under other names: the loader orders them by episode key and fingerprints what they
    are, so training sees the same windows in the same order and its data fingerprint does not move."""
    import shutil

    from bench.ablate.jobs import demo_fingerprint

    swapped = tmp_path / "regenerated" / FIXTURE.name  # the fingerprint names the file, not its folder
    swapped.parent.mkdir()
    shutil.copy(FIXTURE, swapped)
    with h5py.File(swapped, "a") as f:
        f["data"].move("demo_0", "tmp")
        f["data"].move("demo_1", "demo_0")
        f["data"].move("tmp", "demo_1")
        assert f["data/demo_0"].attrs["episode_key"] != h5py.File(FIXTURE, "r")["data/demo_0"].attrs["episode_key"]
    spec = WindowSpec(cameras=("agentview",))
    a = LiberoDemoDataset([str(FIXTURE)], spec, stats_path=tmp_path / "a.json")
    b = LiberoDemoDataset([str(swapped)], spec, stats_path=tmp_path / "b.json")
    assert a.fingerprint() == b.fingerprint() and demo_fingerprint(FIXTURE) == demo_fingerprint(swapped)
    assert [d.identity for d in a.demos] == ["libero_object/0/attempt0", "libero_object/0/attempt1"]
    for i in (0, len(a) // 2, len(a) - 1):
        assert np.array_equal(a[i]["actions"], b[i]["actions"]) and np.array_equal(a[i]["state"], b[i]["state"])
    a.close(), b.close()
    # A file with no episode keys (official LIBERO) keeps its numeric order, and its names are what it holds.
    with h5py.File(swapped, "a") as f:
        for g in f["data"].values():
            del g.attrs["episode_key"]
    c = LiberoDemoDataset([str(swapped)], spec, stats_path=tmp_path / "c.json")
    assert [d.key for d in c.demos] == ["demo_0", "demo_1"] and c.fingerprint() != a.fingerprint()
    c.close()


def test_frame_cache_gives_the_same_windows_as_the_hdf5_reads(tmp_path):
    """The decoded, memory-mapped frame cache is an optimisation only: every window is the same bytes, it is
    built once and reused, and a dataset using it still pickles (DataLoader workers) and reopens it."""
    import pickle
    import shutil

    data = tmp_path / FIXTURE.name
    shutil.copyfile(FIXTURE, data)
    spec = WindowSpec(n_future=2, future_stride=3, chunk=4)
    plain = LiberoDemoDataset(data, spec, stats_path=tmp_path / "s.json")
    cached = LiberoDemoDataset(data, spec, stats_path=tmp_path / "s.json", frame_cache=True)
    done = next((tmp_path / (data.name + ".frames")).glob("*/done"))
    built = done.stat().st_mtime_ns
    assert len(plain) == len(cached) > 0
    for i in range(len(plain)):
        a, b = plain[i], cached[i]
        for cam in spec.cameras:
            assert a["images"][cam].dtype == b["images"][cam].dtype == np.uint8
            assert np.array_equal(a["images"][cam], b["images"][cam]), (i, cam)
        assert np.array_equal(a["actions"], b["actions"]) and np.array_equal(a["state"], b["state"])
    again = pickle.loads(pickle.dumps(LiberoDemoDataset(data, spec, stats_path=tmp_path / "s.json", frame_cache=True)))
    assert done.stat().st_mtime_ns == built, "the cache is built once"
    assert np.array_equal(again[len(plain) - 1]["images"]["agentview"], plain[len(plain) - 1]["images"]["agentview"])


def test_task_balance_is_reported_and_can_be_sampled(tmp_path):
    """Each task's share of the training samples: by windows (the default sampler) or every task alike, drawn
    reproducibly per step."""
    import torch

    from bench.demos.dataset import LiberoDemoDataset, WindowSpec
    from bench.train.loop import StepBatches

    ds = LiberoDemoDataset(["tests/fixtures/libero_object_t0_2demos_32.hdf5"], WindowSpec(n_future=0),
                           stats_path=tmp_path / "s.json")
    table = ds.balance()
    assert table["windows"].sum() == len(ds) and abs(table["share_windows"].sum() - 1) < 1e-12
    assert ds.window_weights("windows") is None
    w = ds.window_weights("tasks")
    assert len(w) == len(ds) and abs(w.sum() - len(table)) < 1e-9  # each task weighs 1 in all
    with pytest.raises(ValueError, match="unknown balance 'demos'; valid: windows, tasks"):
        ds.window_weights("demos")
    a = list(StepBatches(len(ds), 4, 0, 3, 6, weights=w))
    assert a == list(StepBatches(len(ds), 4, 0, 3, 6, weights=w)) and len(a) == 3
    assert all(0 <= i < len(ds) for b in a for i in b)
    ds.close()
    assert torch.is_tensor(StepBatches(len(ds), 4, 0, 0, 1, weights=w).weights)
