"""Paired statistics for two policies that ran the same episodes.

Every policy in this suite runs the same episodes (same task, init state and
seed), so two runs pair episode by episode. Pairing removes the episode-to-
episode difficulty both policies share, which makes the comparison sharper than
two independent rates:

- McNemar's exact test: only discordant pairs (one policy succeeds, the other
  fails) carry information; under "no difference" each falls either way with
  probability 1/2 (scipy's exact binomial test on them).
- Holm's step-down correction over the tasks compared, so that ten per-task tests
  do not produce a "significant" task by chance one time in two.
- A paired bootstrap interval for the difference in success rate: episodes are
  resampled as pairs, within each task (stratified), with a fixed seed.
- The minimum detectable difference: the smallest true difference that this many
  pairs would detect with 80% power (exact McNemar power, computed by
  enumeration, given the discordance the run observed). A difference smaller
  than it may be real and still unseen: "not significant" is not "equal".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.stats import binom, binomtest

ALPHA = 0.05
POWER = 0.8
BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 0
PAIR_KEY = ("suite", "task_id", "init_id", "seed")  # what makes two episodes the same episode


@dataclass(frozen=True)
class PairedResult:
    pairs: int
    a_only: int  # pairs where A succeeds and B fails
    b_only: int  # pairs where B succeeds and A fails
    diff: float  # success rate of A minus that of B
    diff_low: float  # paired bootstrap 95% interval of diff
    diff_high: float
    p_two_sided: float  # McNemar exact
    p_greater: float  # McNemar exact, one-sided: A succeeds more often than B
    mdd: float  # minimum detectable difference (80% power, two-sided alpha 0.05)


def mcnemar_exact(a_only: int, b_only: int) -> tuple[float, float]:
    """(two-sided p, one-sided p that A beats B) of McNemar's exact test on the discordant pairs."""
    n = a_only + b_only
    if n == 0:
        return 1.0, 1.0
    two = binomtest(a_only, n, 0.5, alternative="two-sided").pvalue
    greater = binomtest(a_only, n, 0.5, alternative="greater").pvalue
    return float(two), float(greater)


def holm(pvalues: list[float]) -> list[float]:
    """Holm-adjusted p-values (step-down, monotone), NaN kept as NaN. Five lines, so written here rather
    than adding statsmodels for `multipletests(method="holm")`, which computes the same."""
    p = np.asarray(pvalues, dtype=float)
    keep = ~np.isnan(p)
    m = int(keep.sum())
    out = np.full_like(p, np.nan)
    order = np.argsort(p[keep])
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[keep][order]))
    vals = np.empty(m)
    vals[order] = adjusted
    out[keep] = vals
    return out.tolist()


def paired_bootstrap(a: np.ndarray, b: np.ndarray, strata: np.ndarray, samples: int = BOOTSTRAP_SAMPLES,
                     seed: int = BOOTSTRAP_SEED, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of mean(a) - mean(b) when (a[i], b[i]) pairs are resampled with replacement
    within each stratum (a task), keeping each stratum's size."""
    rng = np.random.default_rng(seed)
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    total = np.zeros(samples)
    for s in np.unique(strata):
        ds = d[strata == s]
        idx = rng.integers(0, len(ds), size=(samples, len(ds)))
        total += ds[idx].sum(axis=1)
    means = total / len(d)
    tail = (1 - confidence) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


@lru_cache(maxsize=64)
def _critical_counts(max_n: int, alpha: float) -> np.ndarray:
    """crit[D]: the smallest count k of the larger discordant side that McNemar's two-sided exact test
    rejects at `alpha` with D discordant pairs (D + 1 when no count can)."""
    crit = np.empty(max_n + 1, dtype=int)
    for d in range(max_n + 1):
        ks = np.arange(d + 1)
        p = np.minimum(1.0, 2 * binom.sf(ks - 1, d, 0.5))  # P(X >= k), doubled
        ok = np.nonzero((p <= alpha) & (ks * 2 > d))[0]
        crit[d] = ks[ok[0]] if len(ok) else d + 1
    return crit


def mcnemar_power(n: int, discordance: float, diff: float, alpha: float = ALPHA) -> float:
    """Exact power of McNemar's two-sided test with `n` pairs when a pair is discordant with probability
    `discordance` and A's success rate exceeds B's by `diff` (rejections in A's favour only)."""
    if diff <= 0:
        return 0.0
    psi = max(discordance, diff)  # a difference needs at least that many discordant pairs
    q = (psi + diff) / (2 * psi)  # P(a discordant pair favours A)
    crit = _critical_counts(n, alpha)
    dd = np.arange(n + 1)
    p_d = binom.pmf(dd, n, psi)
    p_reject = binom.sf(crit - 1, dd, q)
    return float(np.sum(p_d * p_reject))


def minimum_detectable_difference(n: int, discordance: float, power: float = POWER, alpha: float = ALPHA,
                                  step: float = 0.005) -> float:
    """The smallest difference (on a grid of `step`) that `n` pairs detect with `power`; NaN if none up to 1."""
    if n == 0:
        return float("nan")
    for diff in np.arange(step, 1 + step / 2, step):
        if mcnemar_power(n, discordance, float(diff), alpha) >= power:
            return float(round(diff, 6))
    return float("nan")


def paired_compare(a: np.ndarray, b: np.ndarray, strata: np.ndarray | None = None) -> PairedResult:
    """All paired statistics of A against B, given their successes (booleans) on the same episodes."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.shape} vs {b.shape}")
    strata = np.zeros(len(a), dtype=int) if strata is None else np.asarray(strata)
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    two, greater = mcnemar_exact(a_only, b_only)
    n = len(a)
    low, high = paired_bootstrap(a, b, strata) if n else (float("nan"), float("nan"))
    discordance = (a_only + b_only) / n if n else 0.0
    return PairedResult(pairs=n, a_only=a_only, b_only=b_only,
                        diff=float(a.mean() - b.mean()) if n else float("nan"), diff_low=low, diff_high=high,
                        p_two_sided=two, p_greater=greater,
                        mdd=minimum_detectable_difference(n, discordance))
