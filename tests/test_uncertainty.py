"""Uncertainty of test accuracies: Wilson intervals, exact McNemar tests, Holm's correction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from leanml.report.uncertainty import holm, mcnemar, one_sample_pp, wilson


def test_wilson_contains_the_accuracy_and_narrows_with_more_samples():
    # a textbook value (Newcombe 1998, Table I: 81/263 → 0.2553–0.3662)
    low, high = wilson(81, 263)
    assert low == pytest.approx(0.2553, abs=1e-4) and high == pytest.approx(0.3662, abs=1e-4)
    widths = []
    for n in (27, 270, 2700, 27000):
        low, high = wilson(round(0.9 * n), n)
        assert low < round(0.9 * n) / n < high
        widths.append(high - low)
    assert widths == sorted(widths, reverse=True) and widths[-1] < widths[0] / 25
    # at the edges it stays inside [0, 1] and is not empty
    assert wilson(0, 20)[0] == 0.0 and wilson(0, 20)[1] > 0.1
    assert wilson(20, 20)[1] == 1.0 and wilson(20, 20)[0] < 0.9
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_mcnemar_one_for_identical_predictions_small_for_a_clearly_different_model():
    rng = np.random.default_rng(0)
    baseline = rng.random(500) < 0.9
    assert mcnemar(baseline, baseline) == 1.0
    # a model that gets 60 more samples right and none fewer
    better = baseline.copy()
    better[np.flatnonzero(~baseline)[:40]] = True
    assert mcnemar(better, baseline) < 1e-10
    # exact binomial: 1 discordant pair of 1 → p = 1; 0 vs 10 → 2 / 2^10; symmetric
    one = baseline.copy()
    one[np.flatnonzero(baseline)[0]] = False
    assert mcnemar(one, baseline) == 1.0
    worse = baseline.copy()
    worse[np.flatnonzero(baseline)[:10]] = False
    assert mcnemar(worse, baseline) == pytest.approx(2 / 2**10)
    assert mcnemar(baseline, worse) == mcnemar(worse, baseline)
    # equal accuracy, different samples: 5 won, 5 lost → p = 1
    swap = baseline.copy()
    swap[np.flatnonzero(baseline)[:5]] = False
    swap[np.flatnonzero(~baseline)[:5]] = True
    assert swap.mean() == baseline.mean() and mcnemar(swap, baseline) == 1.0
    with pytest.raises(ValueError):
        mcnemar(baseline[:10], baseline)


def test_holm_adjusts_in_order_and_keeps_missing_values():
    assert holm([0.01, None, 0.04, 0.03]) == pytest.approx([0.03, None, 0.06, 0.06])
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    assert holm([]) == []


def test_one_sample_is_worth_100_over_n_points():
    assert one_sample_pp(270) == pytest.approx(0.37037, abs=1e-5)
    assert one_sample_pp(27) == pytest.approx(3.7037, abs=1e-4)
