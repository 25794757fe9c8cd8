"""train_and_score: learns on real data, scores on val only, is reproducible from its seed."""

import numpy as np
import pytest

from leanml.params import MLP, Fit, ModelSpec
from leanml.train import evaluate, train_and_score

pytestmark = pytest.mark.slow  # every test here trains a Keras model

SPEC = ModelSpec(mlp=MLP(hidden_units=[32]))


def test_learns_and_reports(tiny_splits):
    hooked = []
    result = train_and_score(
        SPEC,
        tiny_splits,
        Fit(epochs=3, learning_rate=0.01),
        seed=1,
        progress=False,
        on_epoch=lambda metrics, step: hooked.append((step, metrics)),
    )
    assert result.ok
    assert result.metrics["val_accuracy"] > 0.5  # 10 classes: chance is 0.1
    assert result.metrics["epochs_run"] == len(result.history) == 3
    assert [step for step, _ in hooked] == [1, 2, 3]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(hooked[0][1])
    again = evaluate(result.model, tiny_splits.val)
    assert again["accuracy"] == result.metrics["val_accuracy"]


def test_same_seed_same_numbers(tiny_splits):
    fit = Fit(epochs=2, batch_size=16)
    a = train_and_score(SPEC, tiny_splits, fit, seed=7, progress=False)
    b = train_and_score(SPEC, tiny_splits, fit, seed=7, progress=False)
    c = train_and_score(SPEC, tiny_splits, fit, seed=8, progress=False)
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert a.history == b.history
    assert a.metrics["val_loss"] == b.metrics["val_loss"]
    assert a.metrics["val_loss"] != c.metrics["val_loss"]


def test_early_stopping_stops(tiny_splits):
    fit = Fit(epochs=50, early_stopping_patience=1, learning_rate=0.05)
    result = train_and_score(SPEC, tiny_splits, fit, seed=0, progress=False)
    assert result.metrics["epochs_run"] < 50


def test_divergence_is_reported_not_raised(tiny_splits):
    fit = Fit(epochs=3, optimizer="sgd", learning_rate=10)
    spec = ModelSpec(mlp=MLP(hidden_units=[64, 64, 64], activation="elu"))
    result = train_and_score(spec, tiny_splits, fit, seed=0, progress=False)
    assert result.metrics["status"] == "diverged"
    assert not result.ok
    assert result.metrics["epochs_run"] < 3  # TerminateOnNaN stopped it
