"""Where trials run: the same trials serially and on 1 or 2 Dask workers; a dead worker fails one
trial (after one retry), never the search; a per-trial time limit fails a trial, not the search.

The Dask tests use a real `LocalCluster` of worker processes (slow tier) and mostly the synthetic
objective of the search contract suite; one compares a real Keras search serially and on two
workers.
"""

import functools

import pytest

from leanml import deadline, nas, search
from leanml.nas.space import ArchSpace
from leanml.params import GA, PSO, RL, TPE, Bayes, Fit, ModelSpec, Nas, Search
from leanml.search.objective import keras_objective
from leanml.search.space import Space
from leanml.trials import execution, runner
from leanml.trials.base import key
from tests.objectives import dies_on_trial, nas_synthetic, synthetic
from tests.test_nas import meta_rows

ALGORITHMS = list(search.ALGORITHMS)


@pytest.fixture(scope="module")
def two_workers():
    executor = execution.DaskExecutor(2)
    yield executor
    executor.close()


def _cfg(budget=10, **update):
    # bayes.batch and tpe.batch 2: two constant-liar points per ask, so both have a batch too
    bayes = Bayes(estimator="ET", initial_points=2, acq_points=100, batch=2)
    tpe = TPE(n_startup_trials=2, batch=2)
    return Search(
        budget=budget, bayes=bayes, tpe=tpe, ga=GA(population=2), pso=PSO(particles=2), **update
    )


def _search(name, objective=synthetic, executor=None, budget=10, seed=3):
    cfg = _cfg(budget)
    algo = search.create(name, Space.from_params(cfg.space), cfg, seed, budget)
    return runner.run(algo, objective, budget=budget, seed=seed, progress=False, executor=executor)


def _rows(trials):
    return [
        (t.proposal, t.evaluation, key(t.config), t.val_accuracy, t.status, t.from_cache, t.seed)
        for t in trials
    ]


@pytest.mark.slow
@pytest.mark.parametrize("name", ALGORITHMS)
def test_same_trials_serially_and_on_two_workers(name, two_workers):
    serial = _search(name, budget=8)
    parallel = _search(name, executor=two_workers, budget=8)
    assert _rows(parallel) == _rows(serial)
    assert sum(not t.from_cache for t in parallel) == 8


@pytest.mark.slow
def test_same_trials_on_one_worker():
    one = execution.DaskExecutor(1)
    try:
        assert _rows(_search("ga", executor=one)) == _rows(_search("ga"))
    finally:
        one.close()


@pytest.mark.slow
def test_worker_dying_once_is_retried(two_workers, tmp_path):
    victim = runner.trial_seed(3, 2)
    objective = functools.partial(dies_on_trial, victim_seed=victim, marker=tmp_path / "died-once")
    trials = _search("random", objective, executor=two_workers, budget=4)
    assert (tmp_path / "died-once").exists()  # the worker did die
    assert [t.status for t in trials] == ["ok"] * 4
    assert _rows(trials) == _rows(_search("random", budget=4))


@pytest.mark.slow
def test_worker_dying_twice_fails_that_trial_only(two_workers):
    victim = runner.trial_seed(3, 1)
    objective = functools.partial(dies_on_trial, victim_seed=victim, marker=None)
    trials = _search("random", objective, executor=two_workers, budget=4)
    assert [t.status for t in trials] == ["ok", "failed", "ok", "ok"]
    assert "retried once" in trials[1].error
    # the cluster is still usable afterwards
    assert [t.status for t in _search("random", executor=two_workers, budget=2)] == ["ok", "ok"]


def test_unreachable_scheduler_is_a_clear_error(monkeypatch):
    from leanml.errors import LeanmlError

    monkeypatch.setattr(execution, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(LeanmlError, match=r"execution.address: cannot reach a Dask scheduler"):
        execution.DaskExecutor(1, "tcp://127.0.0.1:9")


def test_deadline():
    assert not deadline.expired()
    with deadline.limit(0):
        assert deadline.expired()
    with deadline.limit(None):
        assert not deadline.expired()
    assert not deadline.expired()


@pytest.mark.slow
def test_trial_over_its_time_limit_fails_and_the_search_goes_on(tiny_splits):
    # a real Keras fit that cannot finish 200 epochs in 0.5 s: stopped, recorded, search goes on
    objective = keras_objective(
        tiny_splits, ModelSpec(), Fit(epochs=200, early_stopping_patience=0, batch_size=16)
    )
    cfg = _cfg(2, space={"hidden_units": {"type": "int", "low": 8, "high": 16}})
    algo = search.create("random", Space.from_params(cfg.space), cfg, 0, 2)
    trials = runner.run(algo, objective, budget=2, seed=0, progress=False, trial_timeout=0.5)
    assert [t.status for t in trials] == ["failed", "failed"]
    assert "exceeded execution.trial_timeout (0.5 s)" in trials[0].error
    assert all(t.extra["epochs_run"] < 200 for t in trials)  # stopped, not run to the end


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["rl", "meta", "random"])
def test_nas_same_children_serially_and_on_two_workers(strategy, two_workers):
    cfg = Nas(budget=6, rl=RL(children_per_update=3))
    space = ArchSpace(cfg.space, image_input=False)
    extra = {}
    if strategy == "meta":
        rows, target = meta_rows(space)
        extra = {"rows": rows, "target": target}

    def children(executor):
        algo = nas.create(strategy, space, cfg, 5, **extra)
        return runner.run(algo, nas_synthetic, budget=6, seed=5, progress=False, executor=executor)

    serial = children(None)
    assert len({key(t.config) for t in serial}) > 1
    assert _rows(children(two_workers)) == _rows(serial)


@pytest.mark.slow
def test_real_keras_search_same_trials_serially_and_on_two_workers(tiny_splits, two_workers):
    # real training on worker processes (one TensorFlow thread each) against this process: the
    # per-trial seeds and op determinism must give the very same accuracies, bit for bit
    objective = keras_objective(
        tiny_splits, ModelSpec(), Fit(epochs=1, early_stopping_patience=0, batch_size=32)
    )
    space = {
        "hidden_units": {"type": "int", "low": 8, "high": 32},
        "learning_rate": {"type": "real", "low": 1e-3, "high": 1e-2, "log": True},
    }
    cfg = _cfg(4, space=space)

    def trials(executor):
        algo = search.create("random", Space.from_params(cfg.space), cfg, 1, 4)
        return runner.run(algo, objective, budget=4, seed=1, progress=False, executor=executor)

    serial = trials(None)
    assert [t.status for t in serial] == ["ok"] * 4
    assert len({t.val_accuracy for t in serial}) > 1  # the configs really differ
    assert _rows(trials(two_workers)) == _rows(serial)
