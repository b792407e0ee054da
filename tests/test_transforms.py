"""The peers' request and response transforms (bench/policies/transforms.py) on one observation row."""

import numpy as np
import pytest

from bench.policies.transforms import PEERS, Dit4ditActions, RepackKeys, ResizeWithPad, Rotate180, to_openpi_observation


def row():
    rng = np.random.default_rng(0)
    return {"agentview": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
            "eye_in_hand": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
            "state": np.arange(8, dtype=np.float32) / 10, "prompt": "put the bowl on the plate"}


def test_small_transforms():
    with pytest.raises(KeyError, match="missing 'nope'"):
        RepackKeys({"a": "nope"})({"b": 1})
    img = np.zeros((100, 200, 3), dtype=np.uint8)
    out = ResizeWithPad(("x",), 224)({"x": img})["x"]
    assert out.shape == (224, 224, 3) and out[:50].max() == 0  # letterboxed, not stretched
    r = row()
    twice = Rotate180(("agentview",))(Rotate180(("agentview",))(r))
    assert np.array_equal(twice["agentview"], r["agentview"])
    assert np.array_equal(Rotate180(("agentview",))(r)["agentview"][0, 0], r["agentview"][-1, -1])


def test_openpi_round_trip_is_exact():
    r = row()
    back = to_openpi_observation(PEERS["openpi"].request(r))
    assert all(np.array_equal(back[k], r[k]) for k in ("agentview", "eye_in_hand", "state")) and back["prompt"] == r["prompt"]


def test_gr00t_layout():
    req = PEERS["gr00t"].request(row())
    assert req["video.image"].shape == (1, 224, 224, 3) and req["state.gripper"].shape == (1, 2)
    assert req["state.yaw"].tolist() == [[pytest.approx(0.5)]] and req["annotation.human.action.task_description"] == [
        "put the bowl on the plate"]


def test_dit4dit_layout_and_post_processing():
    req = PEERS["dit4dit"].request(row())
    assert req["image"][0].shape == (224, 448, 3) and req["lang"] == "put the bowl on the plate"
    assert req["state"].shape == (1, 16) and req["state"][0, :4] == pytest.approx([np.sin(0), np.cos(0), np.sin(.1),
                                                                                   np.cos(.1)])
    norm = np.zeros((1, 8, 8))
    norm[0, :, 6] = [0.0, 0.2, 0.6, 1.0, 2.0, -1.0, 0.5, 0.49]
    norm[0, :, 0] = 0.0  # the middle of [low, high]
    out = Dit4ditActions(low=(-2,) * 6 + (0,), high=(2,) * 6 + (1,))({"normalized_actions": norm})["actions"]
    assert out.shape == (8, 7) and out[:, 0] == pytest.approx(0.0)
    # the gripper: to 0/1 at 0.5, unnormalised to [0, 1], then above 0.5 (open) is -1 and the rest +1
    assert out[:, 6].tolist() == [1, 1, -1, -1, -1, 1, -1, 1]


def test_action_postprocessing_by_hand():
    from bench.policies.transforms import action_postprocess

    chunk = np.array([[[1.7, -0.2, -1.3, 0.5, 2.0, -3.0, 0.3], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, -0.01]]])
    official = action_postprocess("official")({"actions": chunk})["actions"]
    np.testing.assert_array_equal(official, [[[1.0, -0.2, -1.0, 0.5, 1.0, -1.0, 1.0],
                                              [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, -1.0]]])
    np.testing.assert_array_equal(action_postprocess("continuous")({"actions": chunk})["actions"], chunk)
    with pytest.raises(ValueError, match="unknown action post-processing 'binary'; valid: continuous, official"):
        action_postprocess("binary")


def test_a_trained_policy_applies_the_post_processing_it_is_given():
    from bench.policies import make_policy
    from bench.policies.contract import EpisodeInfo, ObservationBatch
    from bench.sim.suites import get_suite

    rng = np.random.default_rng(0)
    batch = ObservationBatch(episode_keys=["e"], images={c: rng.integers(0, 256, (1, 128, 128, 3), dtype=np.uint8)
                                                        for c in ("agentview", "eye_in_hand")},
                             state=rng.normal(size=(1, 8)).astype(np.float32), prompts=["pick up the black bowl"],
                             steps=np.array([0]))
    task = get_suite("libero_spatial").task(0)
    chunks = {}
    for post in ("continuous", "official"):
        pol = make_policy("dit4dit", [f"postprocess={post}"])
        pol.reset(EpisodeInfo(key="e", task=task, init_id=0, seed=0))
        chunks[post] = pol.act(batch)[0]
    raw = chunks["continuous"]
    assert set(np.unique(chunks["official"][:, -1])) <= {-1.0, 1.0}
    np.testing.assert_allclose(chunks["official"][:, :6], np.clip(raw[:, :6], -1, 1), rtol=0, atol=1e-6)
    assert np.array_equal(chunks["official"][:, -1], np.where(raw[:, -1] > 0, 1.0, -1.0))
    with pytest.raises(ValueError, match="unknown action post-processing 'sign'"):
        make_policy("dit4dit", ["postprocess=sign"])


def test_per_episode_feature_noise_holds_the_future_slot_fixed_across_chunks():
    from bench.policies import make_policy
    from bench.policies.contract import EpisodeInfo, ObservationBatch
    from bench.sim.suites import get_suite

    rng = np.random.default_rng(1)
    task = get_suite("libero_spatial").task(0)
    slots = {}
    for mode in ("per_chunk", "per_episode"):
        pol = make_policy("dit4dit", [f"feature_noise={mode}"])
        pol.reset(EpisodeInfo(key="e", task=task, init_id=0, seed=0))
        seen, features = [], pol.model.features

        def spy(x0, text, noise=None, _features=features, _seen=seen):  # the future slot's noise of each pass
            _seen.append(noise[:, :, 1:].clone())
            return _features(x0, text, noise=noise)

        pol.model.features = spy
        for step in (0, 8):
            pol.act(ObservationBatch(episode_keys=["e"], images={c: rng.integers(0, 256, (1, 128, 128, 3), dtype=np.uint8)
                                                                 for c in ("agentview", "eye_in_hand")},
                                     state=rng.normal(size=(1, 8)).astype(np.float32), prompts=["pick up the bowl"],
                                     steps=np.array([step])))
        slots[mode] = seen
    assert not np.array_equal(slots["per_chunk"][0].numpy(), slots["per_chunk"][1].numpy())
    assert np.array_equal(slots["per_episode"][0].numpy(), slots["per_episode"][1].numpy())
    with pytest.raises(ValueError, match="a groot has no video features"):
        make_policy("groot", ["feature_noise=per_episode"])


def test_the_official_dit4dit_client_area_resizes_256_to_224():
    """Each 256 px view through the dit4dit-server request equals an area resize computed by hand: every output
    pixel the overlap-weighted mean of the input pixels it covers."""
    rng = np.random.default_rng(3)
    views = {c: rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for c in ("agentview", "eye_in_hand")}
    row = {**views, "state": np.zeros(8), "prompt": "go"}
    image = PEERS["dit4dit"].request(row)["image"][0]
    assert image.shape == (224, 448, 3)

    def area_weights(n_in: int, n_out: int) -> np.ndarray:
        w = np.zeros((n_out, n_in))
        scale = n_in / n_out
        for o in range(n_out):
            lo, hi = o * scale, (o + 1) * scale
            for i in range(int(np.floor(lo)), int(np.ceil(hi))):
                w[o, i] = min(hi, i + 1) - max(lo, i)
        return w / w.sum(1, keepdims=True)

    w = area_weights(256, 224)
    for k, cam in enumerate(("agentview", "eye_in_hand")):
        ref = np.stack([w @ views[cam][..., c].astype(np.float64) @ w.T for c in range(3)], axis=-1)
        assert np.abs(image[:, 224 * k: 224 * (k + 1)].astype(np.float64) - ref).max() <= 1.0
