"""TPE through Optuna: what the contract suite in test_search.py does not cover.

Same proposals in two processes (Optuna must not depend on hash order or the clock), a silent
in-memory study (nothing on stderr, no file), the `initial` configurations asked first,
constant-liar batches, and their resume after an interruption mid-batch.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from leanml import search
from leanml.params import TPE, Search
from leanml.search.space import Space
from leanml.trials import runner
from leanml.trials.base import key
from leanml.trials.checkpoint import Checkpoint
from tests.objectives import synthetic

ROOT = Path(__file__).resolve().parents[1]

# 15 trials: 4 random startup points, then 11 from the Parzen estimators
SCRIPT = """
import json
from leanml import search
from leanml.params import Search
from leanml.search.space import Space
from leanml.trials import runner
from tests.objectives import synthetic

cfg = Search(budget=15)
algo = search.create("tpe", Space.from_params(cfg.space), cfg, 7, cfg.budget)
trials = runner.run(algo, synthetic, budget=15, seed=7, progress=False)
print(json.dumps([[t.config, t.score] for t in trials]))
"""


def _tpe(cfg, seed, initial=()):
    cls = search.ALGORITHMS.get("tpe")
    return cls(Space.from_params(cfg.space), cfg, seed, cfg.budget, initial=initial)


def _run(algo, budget, seed):
    return runner.run(algo, synthetic, budget=budget, seed=seed, progress=False)


def test_same_proposals_in_two_processes_and_nothing_printed_or_written(tmp_path):
    outputs = []
    for hash_seed in ("1", "2"):  # a different str hash order in each process
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""  # Optuna's study and trial log lines are silenced
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1]
    assert len({json.dumps(c, sort_keys=True) for c, _ in outputs[0]}) > 10
    # and the same as in this process
    cfg = Search(budget=15)
    here = _run(search.create("tpe", Space.from_params(cfg.space), cfg, 7, 15), 15, 7)
    assert [[t.config, t.score] for t in here] == outputs[0]
    assert list(tmp_path.iterdir()) == []  # an in-memory study: no storage file


def test_initial_configurations_are_asked_first_then_tpe_goes_on():
    cfg = Search(budget=12)
    space = Space.from_params(cfg.space)
    baseline = {
        "hidden_units": 64,
        "n_layers": 1,
        "learning_rate": 0.001,
        "dropout": 0.0,
        "batch_size": 32,
        "activation": "relu",
        "optimizer": "adam",
    }
    second = {**baseline, "hidden_units": 180, "activation": "tanh"}
    trials = _run(_tpe(cfg, 0, initial=[baseline, second]), 12, 0)
    assert [t.config for t in trials[:2]] == [baseline, second]
    assert [type(v) for v in trials[0].config.values()] == [type(v) for v in baseline.values()]
    assert sum(not t.from_cache for t in trials) == 12
    assert all(space.contains(t.config) for t in trials)
    again = _run(_tpe(cfg, 0, initial=[baseline, second]), 12, 0)
    assert [key(t.config) for t in again] == [key(t.config) for t in trials]
    # the enqueued points are TPE's own observations: the rest differs from a run without them
    plain = _run(_tpe(cfg, 0), 12, 0)
    assert [key(t.config) for t in plain[2:]] != [key(t.config) for t in trials[2:]]


def test_an_initial_configuration_outside_the_space_is_refused():
    cfg = Search(budget=5)
    outside = {**Space.from_params(cfg.space).sample(np.random.default_rng(0)), "n_layers": 9}
    with pytest.raises(ValueError, match="outside the search space"):
        _tpe(cfg, 0, initial=[outside])


def test_batches_spend_the_exact_budget_and_constant_liar_spreads_them():
    def keys(batch, liar, budget=14):
        cfg = Search(budget=budget, tpe=TPE(n_startup_trials=3, batch=batch, constant_liar=liar))
        trials = _run(_tpe(cfg, 1), budget, 1)
        assert sum(not t.from_cache for t in trials) == budget
        return [key(t.config) for t in trials]

    liar = keys(4, True)  # 3 full batches of 4 and half of a 4th
    assert liar == keys(4, True)
    # the pending points of a batch count as bad ones: the batches change with constant_liar...
    assert keys(4, False)[4:] != liar[4:]
    # ...and one point per ask has no pending points, so it changes nothing
    assert keys(1, False) == keys(1, True)


def test_a_batch_cut_by_an_interruption_resumes_to_the_same_trials(tmp_path):
    cfg = Search(budget=15, tpe=TPE(n_startup_trials=3, batch=3))
    full = _run(_tpe(cfg, 2), 15, 2)
    trained = []

    def dies_after_7(config, seed):  # two batches of 3, then one point into the third
        if len(trained) == 7:
            raise KeyboardInterrupt
        trained.append(key(config))
        return synthetic(config, seed)

    path = tmp_path / "checkpoint.jsonl"
    with pytest.raises(KeyboardInterrupt):
        runner.run(
            _tpe(cfg, 2),
            dies_after_7,
            budget=15,
            seed=2,
            progress=False,
            checkpoint=Checkpoint(path, "fp"),
        )
    again = []

    def counting(config, seed):
        again.append(key(config))
        return synthetic(config, seed)

    resumed = runner.run(
        _tpe(cfg, 2), counting, budget=15, seed=2, progress=False, checkpoint=Checkpoint(path, "fp")
    )
    assert len(again) == 8 and not set(again) & set(trained)
    assert [(key(t.config), t.score) for t in resumed] == [(key(t.config), t.score) for t in full]
