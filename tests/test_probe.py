"""`bench probe features`: the five feature variants, paired against the computed features."""

from __future__ import annotations

import json

import numpy as np
import torch
from typer.testing import CliRunner

from bench.cli import app
from tests.test_dit4dit import FIXTURE, small_config


def _checkpoint(tmp_path):
    from bench.train.loop import TrainConfig, train

    torch.set_num_threads(1)
    return train(small_config(), [FIXTURE], tmp_path / "run", TrainConfig(steps=4, batch_size=4, warmup=1))


def test_probe_features_pairs_every_variant_with_the_computed_features(tmp_path):
    from bench.analysis.probe import VARIANTS, feature_use

    ckpt = _checkpoint(tmp_path)
    r = feature_use(ckpt, [FIXTURE], windows=12, batch=5)
    assert set(r["rows"]) == set(VARIANTS) and r["windows"] == 12
    per = {k: np.asarray(v) for k, v in r["per_window"].items()}
    assert all(len(v) == 12 and np.isfinite(v).all() for v in per.values())
    assert r["rows"]["computed"]["minus_computed"] is None
    for name in VARIANTS:
        row = r["rows"][name]
        assert row["ci_low"] <= row["mean"] <= row["ci_high"]
        if name != "computed":
            d = row["minus_computed"]
            assert abs(d["diff"] - (per[name] - per["computed"]).mean()) < 1e-9 and 0 <= d["p"] <= 1
    # the variants change what the action DiT sees, so its chunks (and errors) change
    assert not np.allclose(per["zeroed"], per["computed"]) and not np.allclose(per["shuffled"], per["computed"])
    again = feature_use(ckpt, [FIXTURE], windows=12, batch=3)  # another batching, the same seeded noise order
    assert np.allclose(again["per_window"]["computed"], per["computed"], atol=1e-5)


def test_probe_features_command_writes_md_and_json_and_names_bad_input(tmp_path):
    ckpt = _checkpoint(tmp_path)
    out = tmp_path / "feature_use"
    res = CliRunner().invoke(app, ["probe", "features", "--checkpoint", str(ckpt), "--label", "small", "--data",
                                   str(FIXTURE), "--windows", "6", "--out", str(out)])
    assert res.exit_code == 0, res.output
    saved = json.loads(out.with_suffix(".json").read_text())
    assert set(saved["results"]) == {"small"} and "checkpoint_hashes" in saved["provenance"]
    md = out.with_suffix(".md").read_text()
    assert "| `shuffled` |" in md and "## small" in md
    bad = CliRunner().invoke(app, ["probe", "features", "--checkpoint", str(tmp_path), "--data", str(FIXTURE)])
    assert bad.exit_code == 2 and str(tmp_path) in bad.output


def test_probe_replay_scores_a_policy_on_the_simulators_own_frames_along_replayed_demos(tmp_path, gl):
    """The fixture's two demos replay to their goal; every chunk boundary after the wait steps is scored, the same
    numbers come back for the same seed, and the command pairs a second policy against the first."""
    from bench.analysis.replay import replay_error

    ckpt = _checkpoint(tmp_path)
    r = replay_error("dit4dit", ckpt, FIXTURE, demos=2)
    assert r["replay_success"] == 1.0 and r["demos"] == 2
    # 183 and 186 recorded actions, 10 of them wait steps: a chunk of 8 starts every 8 steps while 8 are left
    assert r["points"] == len(range(10, 183 - 7, 8)) + len(range(10, 186 - 7, 8))
    assert np.isfinite(r["per_point"]).all() and r["ci_low"] <= r["mean"] <= r["ci_high"]
    out = tmp_path / "replay"
    res = CliRunner().invoke(app, ["probe", "replay", "-p", "dit4dit", "-p", "dit4dit", "-c", str(ckpt), "-c", "-",
                                   "--label", "small", "--label", "bundled", "--data", str(FIXTURE), "--demos", "1",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    md = out.with_suffix(".md").read_text()
    assert "| small |" in md and "| bundled |" in md and "minus small" in md
    one = json.loads(out.with_suffix(".json").read_text())["results"]["small"]["per_point"]
    assert one == r["per_point"][:len(one)]  # the first demo again, the same seed: the same numbers
    bad = CliRunner().invoke(app, ["probe", "replay", "-p", "dit4dit", "-c", "a", "-c", "b", "--data", str(FIXTURE)])
    assert bad.exit_code == 2 and "one --checkpoint" in bad.output
