"""Paired statistics (bench/analysis/paired.py) against values worked out by hand or by simulation."""

import json

import numpy as np
import pytest

from bench.analysis.paired import (holm, mcnemar_exact, mcnemar_power, minimum_detectable_difference, paired_bootstrap,
                          paired_compare)


def test_mcnemar_exact_counts_only_discordant_pairs():
    # 6 against 0: under no difference each discordant pair is a fair coin, P(6 heads) = 1/64, doubled
    assert mcnemar_exact(6, 0) == pytest.approx((2 / 64, 1 / 64))
    assert mcnemar_exact(0, 6)[1] == pytest.approx(1.0)  # nothing supports "A better"
    assert mcnemar_exact(0, 0) == (1.0, 1.0)
    # concordant pairs do not enter: the same discordant counts give the same p whatever else happened
    a = np.array([1, 1, 1, 0, 0] + [1] * 40, bool)
    b = np.array([0, 0, 0, 1, 0] + [1] * 40, bool)
    r = paired_compare(a, b)
    assert (r.a_only, r.b_only) == (3, 1) and r.p_two_sided == pytest.approx(mcnemar_exact(3, 1)[0])


def test_holm_matches_the_step_down_by_hand():
    # sorted 0.01, 0.03, 0.04, 0.5 with m = 4: 0.04, 0.09, max(0.08, 0.09) = 0.09, 0.5
    assert holm([0.01, 0.04, 0.03, float("nan"), 0.5]) == pytest.approx([0.04, 0.09, 0.09, float("nan"), 0.5],
                                                                         nan_ok=True)
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])  # 2 x 0.8 capped at 1, then monotone
    assert holm([]) == []


def test_paired_bootstrap_is_seeded_and_covers_the_true_difference():
    rng = np.random.default_rng(3)
    strata = np.repeat(np.arange(10), 50)
    covered = 0
    for _ in range(40):
        shared = rng.random(500)  # the episode's difficulty, shared by both policies
        a, b = shared < 0.4, shared < 0.3  # true difference 0.1, perfectly paired
        lo, hi = paired_bootstrap(a, b, strata, samples=2000)
        covered += lo <= 0.1 <= hi
    assert covered >= 34  # a 95% interval misses in about 2 of 40
    a, b = rng.random(100) < 0.5, rng.random(100) < 0.5
    assert paired_bootstrap(a, b, np.zeros(100)) == paired_bootstrap(a, b, np.zeros(100))


def test_power_and_minimum_detectable_difference():
    # exact power agrees with a simulation of the same design
    n, psi, diff = 50, 0.3, 0.2
    rng = np.random.default_rng(0)
    rejects = 0
    for _ in range(2000):
        disc = rng.random(n) < psi
        favours_a = rng.random(n) < (psi + diff) / (2 * psi)
        x, y = int(np.sum(disc & favours_a)), int(np.sum(disc & ~favours_a))
        rejects += mcnemar_exact(x, y)[0] <= 0.05 and x > y
    assert mcnemar_power(n, psi, diff) == pytest.approx(rejects / 2000, abs=0.04)
    # more pairs detect smaller differences; more discordance hides them
    assert minimum_detectable_difference(500, 0.2) < minimum_detectable_difference(50, 0.2)
    assert minimum_detectable_difference(50, 0.5) > minimum_detectable_difference(50, 0.1)
    # 50 pairs, none discordant: a detectable difference must itself make discordant pairs
    assert 0.1 < minimum_detectable_difference(50, 0.0) < 0.25


def test_paired_compare_refuses_unequal_lengths():
    with pytest.raises(ValueError, match="differ in length"):
        paired_compare(np.ones(3, bool), np.ones(4, bool))


def test_compare_falls_back_to_unpaired_when_the_episodes_differ(tmp_path):
    from bench.analysis.compare import compare, load_summary
    from test_results import _published

    a = _published(tmp_path, "a", [10, 10])
    b = _published(tmp_path, "b", [5, 5])
    # drop a different episode from each: neither run's episodes are all among the other's
    for path, cut in ((a.with_name("episodes.jsonl"), 0), (b.with_name("episodes.jsonl"), 1)):
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(lines[:cut] + lines[cut + 1:]))
    table = compare([load_summary(a), load_summary(b)])
    assert (table["vs_b:pairs"] == 0).all() and table["vs_b:mcnemar_p"].isna().all()
    assert table["vs_b:fisher_p"].notna().all()


def test_a_run_on_some_of_the_others_episodes_pairs_over_those(tmp_path):
    """b ran the first 10 initial states of each task, a all 50: paired over b's 10, each rate over its own."""
    from bench.analysis.compare import compare, load_summary
    from test_results import _published

    a = _published(tmp_path, "a", [10, 10])  # successes on initial states 0-9 of each task
    b = _published(tmp_path, "b", [0, 5])
    path = b.with_name("episodes.jsonl")
    path.write_text("".join(ln for ln in path.read_text().splitlines(keepends=True)
                            if int(json.loads(ln)["init_id"]) < 10))
    table = compare([load_summary(a), load_summary(b)]).set_index("task")
    assert table.loc["ALL", "vs_b:pairs"] == 20 and table.loc["task0", "vs_b:pairs"] == 10
    assert table.loc["ALL", "a:success_rate"] == 20 / 100  # a's rate: its 100 episodes
    assert table.loc["task0", "vs_b:diff"] == 1.0 and table.loc["task1", "vs_b:diff"] == 0.5  # over the shared 10
