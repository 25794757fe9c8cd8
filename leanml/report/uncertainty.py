"""How sure a test accuracy is: Wilson intervals, exact McNemar tests against the baseline on the
same test samples, and Holm's correction across the candidates.

A test split of n samples moves accuracy in steps of 100/n pp (270 samples: 0.37 pp), so a
ranking by raw accuracy calls one-sample differences gains. These numbers say which differences
the test split can tell apart; the multi-seed study (`make study`) stays the way to compare
methods, since one split and one seed say nothing about training noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# Two-sided 95%: the interval and the significance level the reports use.
LEVEL = 0.95
ALPHA = 1 - LEVEL
# Below this many test samples the summary warns that single samples move the ranking.
SMALL_TEST = 500


def wilson(correct: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion `correct / n` (Wilson 1927): unlike the
    normal approximation it stays inside [0, 1] and is not empty at 0 or n correct."""
    if n <= 0:
        return (math.nan, math.nan)
    z = _z(level)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


def mcnemar(candidate: np.ndarray, baseline: np.ndarray) -> float:
    """Exact (binomial) McNemar p-value, two-sided, of two classifiers' per-sample correctness on
    the same samples: only the discordant pairs count (b: baseline right, candidate wrong; c: the
    reverse); under "no difference" b ~ Binomial(b + c, 1/2). 1.0 when they never disagree."""
    candidate, baseline = np.asarray(candidate, bool), np.asarray(baseline, bool)
    if candidate.shape != baseline.shape:
        raise ValueError(f"mcnemar: {candidate.shape} vs {baseline.shape} samples")
    b = int(np.sum(baseline & ~candidate))
    c = int(np.sum(candidate & ~baseline))
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (None stays None): with many candidates compared to one
    baseline, some raw p < 0.05 by chance; adjusted p < 0.05 keeps the family-wise error ≤ 5%."""
    given = [(p, i) for i, p in enumerate(pvalues) if p is not None]
    order = sorted(given)
    m = len(order)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def one_sample_pp(n: int) -> float:
    """How many percentage points one test sample is worth."""
    return 100 / n if n else math.nan
