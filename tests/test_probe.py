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
