"""bench/functions.py: the test functions' known minima and the regret the bench reports."""

import math

import pytest

from bench import functions as F
from leanml.trials.base import Trial


@pytest.mark.parametrize("name", list(F.FUNCTIONS))
def test_known_minimum_at_the_argmin(name):
    fn = F.FUNCTIONS[name]
    assert fn.space.contains(fn.argmin)
    assert abs(fn.f(fn.argmin) - fn.optimum) < 1e-4


@pytest.mark.parametrize("name", list(F.FUNCTIONS))
def test_no_sampled_point_beats_the_minimum(name):
    # a wrong optimum (too high) would give negative regrets; 2000 samples would find some
    import numpy as np

    fn = F.FUNCTIONS[name]
    rng = np.random.default_rng(0)
    values = [fn.f(fn.space.sample(rng)) for _ in range(2000)]
    assert min(values) >= fn.optimum - 1e-12
    assert min(values) > fn.optimum + 1e-3  # and the minimum is not trivially everywhere


def test_branin_has_its_three_minima():
    for x1, x2 in [(-math.pi, 12.275), (math.pi, 2.275), (9.42478, 2.475)]:
        assert abs(F.branin({"x1": x1, "x2": x2}) - 0.397887) < 1e-5


def test_mixed_category_moves_the_optimum():
    # at the global argmin's numbers, another category costs at least its floor, and each
    # category's own best point scores exactly its floor
    best = F.FUNCTIONS["mixed"].argmin
    for kind, (n1, n2, lg, floor) in F.MIXED_KINDS.items():
        own = {"n1": n1, "n2": n2, "lr": 10**lg, "x": 0.3, "kind": kind}
        assert F.mixed(own) == pytest.approx(floor)
        if kind != best["kind"]:
            assert F.mixed({**best, "kind": kind}) > floor + 0.5


def _trial(proposal, f, from_cache=False):
    return Trial(
        proposal=proposal,
        evaluation=proposal + 1,
        config={"x": proposal},
        val_accuracy=-f,
        params=0,
        file_bytes=0,
        seconds=0.0,
        status="ok",
        from_cache=from_cache,
        seed=0,
        extra={"f": f},
    )


def test_simple_regret_by_hand():
    # trained values 3.0, 1.5, 2.0 → best 1.5; a cached row repeating a value changes nothing
    trials = [_trial(0, 3.0), _trial(1, 1.5), _trial(2, 2.0), _trial(3, 1.5, from_cache=True)]
    assert F.simple_regret(trials, optimum=0.5) == pytest.approx(1.0)
    assert F.simple_regret(trials, optimum=-3.0) == pytest.approx(4.5)
    assert F.score(trials[1]) == -1.5


def test_objective_reports_f_and_maximises_minus_f():
    fn = F.FUNCTIONS["branin"]
    out = F.objective_for(fn)(fn.argmin, 0)
    assert out["f"] == pytest.approx(fn.optimum) and out["val_accuracy"] == -out["f"]


def test_one_search_through_the_engine():
    # random search, 12 evaluations: exactly the budget, in bounds, regret ≥ 0 and > 0
    fn = F.FUNCTIONS["hartmann6"]
    run = F.run_one(fn, "random", 0, F.search_cfg(12, 100))
    assert run["calls"] == 12 and run["out_of_bounds"] == 0
    assert 0 < run["regret"] < 3.33


def test_wilcoxon_and_bootstrap():
    a = [0.1 * i for i in range(10)]
    assert F.wilcoxon_p(a, a) is None
    assert F.wilcoxon_p(a, [x + 1 for x in a]) < 0.01
    low, high = F.bootstrap_ci(a)
    assert low < sum(a) / len(a) < high
