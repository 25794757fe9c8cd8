"""Issue 12: multi-fidelity trials (ASHA, asynchronous Hyperband) and the epoch budget.

The rule is checked against hand-worked cases on objectives with known per-epoch curves (no
Keras); one case trains tiny real models on digits.
"""

import numpy as np
import pytest

from leanml import nas, params, search
from leanml.errors import LeanmlError
from leanml.nas.space import ArchSpace
from leanml.params import GA, RL, Bayes, Fidelity, Fit, ModelSpec, Nas, NasSpace, Search
from leanml.search.objective import search_study
from leanml.search.space import Space
from leanml.trials import execution, runner
from leanml.trials.base import Algorithm, key
from leanml.trials.checkpoint import Checkpoint
from leanml.trials.fidelity import Plan, RungStop, promoted
from tests.objectives import _curved, nas_synthetic_curves, synthetic_curves
from tests.test_nas import meta_rows

ALGORITHMS = list(search.ALGORITHMS)
# enas needs real data for its supernet phase (its own tests, tests/test_enas.py, check the
# baseline child first and resume); the others run on synthetic objectives here
STRATEGIES = [name for name in nas.STRATEGIES if name != "enas"]
ASHA = Plan("asha", min_epochs=1, max_epochs=9, eta=3)  # rungs at 1 and 3 epochs, 9 at most


class FixedList(Algorithm):
    """Proposes given configurations in order, `batch` at a time (no model of its own)."""

    def __init__(self, configs, batch=1):
        super().__init__(space=None, cfg=None, seed=0, budget=len(configs))
        self.left, self.batch, self.told = list(configs), batch, []

    def ask(self):
        out, self.left = self.left[: self.batch], self.left[self.batch :]
        return out

    def tell(self, configs, scores):
        self.told += list(zip([c["q"] for c in configs], scores, strict=True))


def q_objective(config, seed, stop=None):
    """Final val accuracy q; after e epochs q − 0.5·0.6^e (the order of q at every epoch)."""
    return _curved({"val_accuracy": config["q"], "params": 1, "file_bytes": 1}, stop, 9)


QS = [0.5, 0.9, 0.3, 0.7, 0.8, 0.2, 0.95]


def _run_q(qs=QS, batch=1, plan=ASHA, **kwargs):
    return runner.run(
        FixedList([{"q": q} for q in qs], batch),
        q_objective,
        budget=len(qs),
        progress=False,
        fidelity=plan,
        **kwargs,
    )


def test_promotion_rule_worked_by_hand():
    # n values at the rung (this one included), the top max(1, n // eta) go on
    assert promoted(0.9, [], 3)  # the first trial at a rung always goes on
    assert not promoted(0.6, [0.5, 0.7], 3)  # n=3: only the best
    assert promoted(0.85, [0.5, 0.6, 0.7, 0.8, 0.9], 3)  # n=6: the best two
    assert not promoted(0.75, [0.5, 0.6, 0.7, 0.8, 0.9], 3)
    assert promoted(0.7, [0.7, 0.1], 3)  # a tie with the cut-off goes on
    assert not promoted(float("nan"), [], 3)
    stop = RungStop(3, ((1, (0.2, 0.4)), (3, ())))
    assert not stop.keep_going(1, 0.3) and stop.keep_going(1, 0.5)
    assert stop.keep_going(2, 0.0)  # not a rung: never stopped there


def test_rungs_and_brackets():
    assert Plan("asha", 2, 30, 3).rungs() == [2, 6, 18]
    hyper = Plan("hyperband", 1, 9, 3)
    assert hyper.brackets == 3
    assert [hyper.rungs(b) for b in range(3)] == [[1, 3], [3], []]
    assert [hyper.bracket(i) for i in range(5)] == [0, 1, 2, 0, 1]
    assert not Plan.of(Fidelity()).active and Plan.of(Fidelity(kind="asha")).active


def test_asha_stops_exactly_the_trials_its_rule_says():
    trials = _run_q()
    # worked by hand, rungs at 1 and 3 epochs, eta 3:
    # 0.5 first everywhere; 0.9 best of 2; 0.3, 0.7, 0.8 not the best of 3, 4, 5 at epoch 1;
    # 0.2 not in the top 2 of 6; 0.95 best of 7 at epoch 1 and of 3 at epoch 3
    assert [t.status for t in trials] == ["ok", "ok", "pruned", "pruned", "pruned", "pruned", "ok"]
    assert [t.epochs for t in trials] == [9, 9, 1, 1, 1, 1, 9]
    # a pruned trial's score is its val accuracy at the rung it stopped at
    assert trials[3].val_accuracy == pytest.approx(0.7 - 0.5 * 0.6)
    assert runner.best_trial(trials).config == {"q": 0.95}
    assert [t.extra["val_curve"][-1] for t in trials] == [t.val_accuracy for t in trials]


def test_without_rungs_every_trial_trains_to_the_end():
    trials = _run_q(plan=Plan())
    assert all(t.status == "ok" and t.epochs == 9 for t in trials)


def test_algorithms_are_told_the_score_at_the_fidelity_reached():
    algo = FixedList([{"q": q} for q in QS])
    runner.run(algo, q_objective, budget=7, progress=False, fidelity=ASHA)
    told = dict(algo.told)
    assert told[0.3] == pytest.approx(0.3 - 0.5 * 0.6)  # pruned after one epoch
    assert told[0.95] == pytest.approx(0.95 - 0.5 * 0.6**9)  # trained to the end


def test_epoch_budget_stops_new_trials():
    # 9 + 9 = 18 epochs, then 0.3 (1 epoch) brings 19 < 20, 0.7 (1 epoch) reaches 20: stop
    trials = _run_q(epoch_budget=20)
    assert [t.config["q"] for t in trials] == [0.5, 0.9, 0.3, 0.7]
    assert sum(t.epochs for t in trials) == 20


def test_epoch_budget_counts_each_planned_trial_of_a_batch():
    batched = runner.run(
        FixedList([{"q": q} for q in [0.5, 0.9, 0.1, 0.3, 0.7]], batch=2),
        q_objective,
        budget=5,
        progress=False,
        fidelity=ASHA,
        epoch_budget=19,
    )
    # 0.5, 0.9: 18 epochs; next batch (0.1, 0.3): 0.1 starts at 18 < 19, while 0.3 would start
    # after at least 18 + 1 = 19 epochs: not planned, although its batch-mate ran only 1 epoch
    assert [t.config["q"] for t in batched] == [0.5, 0.9, 0.1]


def test_a_wave_sees_only_the_trials_finished_before_it():
    wave2 = Plan("asha", min_epochs=1, max_epochs=9, eta=3, wave=2)
    trials = _run_q(qs=[0.5, 0.3, 0.9, 0.8], batch=4, plan=wave2)
    # wave 1 (0.5, 0.3): both see empty rungs, both go on to the end; wave 2 (0.9, 0.8): the
    # rungs hold 0.5 and 0.3 only, so 0.8 is the best of its three and goes on beside 0.9
    assert [t.status for t in trials] == ["ok", "ok", "ok", "ok"]
    # in waves of one (the default) 0.3 sees 0.5, and 0.8 sees 0.9: both stop after one epoch
    one = _run_q(qs=[0.5, 0.3, 0.9, 0.8], batch=4)
    assert [t.status for t in one] == ["ok", "pruned", "ok", "pruned"]


def test_hyperband_brackets_compare_within_their_bracket():
    plan = Plan("hyperband", 1, 9, 3)
    qs = [0.9, 0.91, 0.92, 0.1, 0.11, 0.12]  # brackets 0, 1, 2, 0, 1, 2
    trials = _run_q(qs=qs, plan=plan)
    assert [t.status for t in trials] == ["ok", "ok", "ok", "pruned", "pruned", "ok"]
    assert [t.epochs for t in trials] == [9, 9, 9, 1, 3, 9]  # bracket 1 starts at 3 epochs


def test_resume_mid_rung_gives_the_same_trials(tmp_path):
    full = _run_q(checkpoint=Checkpoint(tmp_path / "full.jsonl", "fp"))
    path = tmp_path / "cut.jsonl"
    lines = (tmp_path / "full.jsonl").read_text().splitlines()
    # killed after trial 3 of 7 (two pruned, two full), while writing trial 4
    path.write_text("\n".join(lines[:5]) + "\n" + lines[5][:30])
    calls = []

    def counting(config, seed, stop=None):
        calls.append(config["q"])
        return q_objective(config, seed, stop)

    resumed = runner.run(
        FixedList([{"q": q} for q in QS]),
        counting,
        budget=7,
        progress=False,
        fidelity=ASHA,
        checkpoint=Checkpoint(path, "fp"),
    )
    assert calls == QS[4:]  # the first four replayed, not trained again
    assert [(t.status, t.epochs, t.val_accuracy) for t in resumed] == [
        (t.status, t.epochs, t.val_accuracy) for t in full
    ]


def _search(name, seed=2, executor=None, plan=ASHA, budget=12):
    cfg = Search(
        budget=budget,
        bayes=Bayes(estimator="RF", initial_points=3, acq_points=200),
        ga=GA(population=3),
    )
    algo = search.create(name, Space.from_params(cfg.space), cfg, seed, budget)
    return runner.run(
        algo,
        synthetic_curves,
        budget=budget,
        seed=seed,
        progress=False,
        fidelity=plan,
        executor=executor,
        epoch_budget=60,
    )


@pytest.mark.parametrize("name", ALGORITHMS)
def test_every_algorithm_runs_under_asha(name):
    trials = _search(name)
    fresh = [t for t in trials if not t.from_cache]
    assert any(t.pruned for t in fresh), "ASHA pruned nothing on 12 trials"
    assert all(t.epochs in (1, 3) for t in fresh if t.pruned)
    assert sum(t.epochs for t in trials) < 60 + 9  # the last trial may finish past 60
    assert [(key(t.config), t.status, t.epochs) for t in _search(name)] == [
        (key(t.config), t.status, t.epochs) for t in trials
    ]


@pytest.mark.parametrize("name", STRATEGIES)
def test_every_nas_strategy_runs_under_asha(name):
    space = ArchSpace(NasSpace(), image_input=True)
    cfg = Nas(budget=8, rl=RL(controller="independent", children_per_update=2))
    extra = {}
    if name == "meta":
        rows, near = meta_rows(space)
        extra = {"rows": rows, "target": near}

    def go():
        algo = nas.create(name, space, cfg, 4, **extra)
        return runner.run(
            algo,
            nas_synthetic_curves,
            budget=8,
            seed=4,
            progress=False,
            fidelity=ASHA,
            trial_kwargs=None,
        )

    trials = go()
    assert any(t.pruned for t in trials)
    assert [(key(t.config), t.status) for t in go()] == [(key(t.config), t.status) for t in trials]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ga", "bayes"])
def test_asha_same_trials_on_two_workers(name):
    pool = execution.DaskExecutor(2)
    try:
        parallel = _search(name, executor=pool)
    finally:
        pool.close()
    serial = _search(name)
    assert [(key(t.config), t.status, t.epochs, t.val_accuracy) for t in parallel] == [
        (key(t.config), t.status, t.epochs, t.val_accuracy) for t in serial
    ]


def test_fidelity_params_are_checked():
    with pytest.raises(LeanmlError, match=r"search.fidelity.min_epochs: must be < max_epochs"):
        params.parse({"search": {"fidelity": {"kind": "asha", "min_epochs": 9, "max_epochs": 9}}})
    space = {"epochs": {"type": "int", "low": 1, "high": 5}}
    with pytest.raises(LeanmlError, match=r"search.space.epochs: cannot be searched"):
        params.parse({"search": {"fidelity": {"kind": "asha"}, "space": space}})
    with pytest.raises(LeanmlError, match=r"nas.fidelity.kind: must be one of"):
        params.parse({"nas": {"fidelity": {"kind": "bohb"}}})


def test_real_keras_trials_stop_at_the_rungs(tiny_splits):
    cfg = Search(
        budget=6,
        fit=Fit(epochs=4, early_stopping_patience=0),
        fidelity=Fidelity(kind="asha", min_epochs=1, max_epochs=4, eta=2),
    )
    space = Space.from_params(cfg.space)
    study = search_study(space, tiny_splits, ModelSpec(), cfg, "random", "fp")
    algo = search.create("random", space, cfg, 0, cfg.budget)
    trials = runner.run(
        algo,
        study.objective,
        budget=6,
        seed=0,
        progress=False,
        score=study.score,
        fidelity=Plan.of(cfg.fidelity),
    )
    assert any(t.pruned for t in trials) and any(t.status == "ok" for t in trials)
    for t in trials:
        curve = t.extra["val_curve"]
        assert len(curve) == t.epochs == (4 if t.status == "ok" else t.epochs)
        if t.pruned:
            assert t.epochs in (1, 2)
            # the score at the fidelity reached: the model as it was when it stopped
            assert t.val_accuracy == pytest.approx(curve[-1], abs=1e-6)
    assert np.isfinite([t.val_accuracy for t in trials]).all()


def test_epoch_budget_without_rungs_counts_the_fit_epochs():
    # one batch of 20: with 9-epoch trials and 30 epochs, trials start at 0, 9, 18, 27 spent
    trials = runner.run(
        FixedList([{"q": q / 100} for q in range(20)], batch=20),
        q_objective,
        budget=20,
        progress=False,
        fidelity=Plan.of(None, fit_epochs=9),
        epoch_budget=30,
    )
    assert [t.epochs for t in trials] == [9, 9, 9, 9]
