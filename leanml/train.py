"""Fit and score one model: `train_and_score` is the objective every search and NAS stage uses."""

from __future__ import annotations

import logging
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np

from leanml import deadline
from leanml.data import Split, Splits
from leanml.models import build
from leanml.params import Fit, ModelSpec

# Called after every epoch as hook(metrics, step); `StageRun.log_metrics` fits.
EpochHook = Callable[[dict[str, float], int], None]
# Multi-fidelity: stop(epochs done, val accuracy) -> False to stop here (`trials.fidelity`).
StopRule = Callable[[int, float], bool]


class _NoRetracingNotice(logging.Filter):
    """Drop TensorFlow's "triggered tf.function retracing" warning: every trial and child builds
    a new model, hence new training functions, so the warning fires on any search (a wall of
    text per stage) and says nothing about a problem here. Other TensorFlow warnings pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


# on the logger itself: both TensorFlow's handler and any propagated copy (MLflow's) drop it
_RETRACING = _NoRetracingNotice()
logging.getLogger("tensorflow").addFilter(_RETRACING)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and make TF ops deterministic."""
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    # Keras draws every default layer/initializer seed from Python's *global* `random`, which
    # other threads of the process may draw from too (a Dask worker's event loop does): a race
    # that changed trial results from run to run. Keras gets its own stream.
    from keras.src.random import seed_generator

    seed_generator.python_random = random.Random(seed)


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """The optimizer `name` at `learning_rate`; SGD with Nesterov momentum 0.9.

    Plain SGD (no momentum) at the learning rates the search space spans barely moves in a
    few epochs: measured, 13 of 32 default search trials stayed near chance (bench/README.md).
    """
    optimizers = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": lambda learning_rate: keras.optimizers.SGD(
            learning_rate=learning_rate, momentum=0.9, nesterov=True
        ),
        "rmsprop": keras.optimizers.RMSprop,
    }
    return optimizers[name](learning_rate=learning_rate)


def evaluate(model: keras.Model, split: Split, batch_size: int = 1024) -> dict[str, float]:
    """Accuracy and cross-entropy of `model` on one split (no compile needed)."""
    # Direct calls, not model.predict: predict builds a new tf.function per model, which in a
    # search of many models floods the log with retracing warnings.
    probs = np.concatenate(
        [
            keras.ops.convert_to_numpy(model(split.x[i : i + batch_size], training=False))
            for i in range(0, len(split.x), batch_size)
        ]
    )
    picked = probs[np.arange(len(split.y)), split.y]
    return {
        "accuracy": float(np.mean(np.argmax(probs, axis=1) == split.y)),
        "loss": float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0)))),
    }


class _TimeLimit(keras.callbacks.Callback):
    """Stop fitting at the next batch once the trial's deadline (`leanml.deadline`) passes."""

    def on_train_batch_end(self, batch, logs=None):
        if deadline.expired():
            self.model.stop_training = True


class _Rungs(keras.callbacks.Callback):
    """Stop fitting after an epoch whose val accuracy the trial's rung rule does not promote."""

    def __init__(self, stop: StopRule):
        super().__init__()
        self.stop, self.pruned_at = stop, 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = float((logs or {}).get("val_accuracy", float("nan")))
        if not self.model.stop_training and not self.stop(epoch + 1, value):
            self.model.stop_training = True
            self.pruned_at = epoch + 1


class _Progress(keras.callbacks.Callback):
    """One quiet line per epoch on stderr, plus an optional hook (e.g. MLflow logging)."""

    def __init__(self, epochs: int, label: str, show: bool, hook: EpochHook | None):
        super().__init__()
        self.epochs, self.label, self.show, self.hook = epochs, label, show, hook
        self.rows: list[dict[str, float]] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        row.pop("learning_rate", None)
        self.rows.append(row)
        if self.hook:
            self.hook({k: v for k, v in row.items() if k != "epoch"}, epoch + 1)
        if self.show:
            shown = " ".join(f"{k} {v:.4f}" for k, v in row.items() if k != "epoch")
            print(f"{self.label}: epoch {epoch + 1}/{self.epochs} {shown}", file=sys.stderr)


@dataclass
class TrainResult:
    """What one fit produced: the model, the per-epoch history and the validation metrics."""

    model: keras.Model
    history: list[dict[str, float]]
    metrics: dict[str, float | int | str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.metrics.get("status") == "ok"

    @property
    def val_curve(self) -> list[float]:
        """Val accuracy after every epoch (what multi-fidelity rungs compare)."""
        return [round(float(row.get("val_accuracy", math.nan)), 6) for row in self.history]


def fit_model(
    model: keras.Model,
    data: Splits,
    fit: Fit,
    *,
    on_epoch: EpochHook | None = None,
    progress: bool = True,
    label: str = "train",
    extra_callbacks: tuple[keras.callbacks.Callback, ...] = (),
) -> list[dict[str, float]]:
    """Compile and fit an already built model on train, early-stopping on val; return history."""
    model.compile(
        optimizer=make_optimizer(fit.optimizer, fit.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    progress_cb = _Progress(fit.epochs, label, progress, on_epoch)
    callbacks: list[keras.callbacks.Callback] = [
        progress_cb,
        keras.callbacks.TerminateOnNaN(),
        _TimeLimit(),
    ]
    if fit.early_stopping_patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=fit.early_stopping_patience, restore_best_weights=True
            )
        )
    callbacks.extend(extra_callbacks)
    model.fit(
        data.train.x,
        data.train.y,
        validation_data=(data.val.x, data.val.y),
        epochs=fit.epochs,
        batch_size=fit.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    return progress_cb.rows


def train_and_score(
    spec: ModelSpec,
    data: Splits,
    fit: Fit,
    *,
    seed: int,
    on_epoch: EpochHook | None = None,
    progress: bool = True,
    label: str = "train",
    stop: StopRule | None = None,
) -> TrainResult:
    """Build `spec` for `data`, fit it with `fit` from `seed`, and score it on the val split.

    Never reads the test split. `metrics` holds val accuracy/loss, epochs run, fit seconds and
    `status` ("ok"; "diverged" when the loss became NaN/inf; "timeout" when the trial's
    `leanml.deadline` passed and fitting was stopped early; "pruned" when `stop` said so after
    an epoch).
    """
    return train_and_score_model(
        lambda: build(spec, data.input_shape, data.n_classes),
        data,
        fit,
        seed=seed,
        on_epoch=on_epoch,
        progress=progress,
        label=label,
        stop=stop,
    )


def train_and_score_model(
    make_model: Callable[[], keras.Model],
    data: Splits,
    fit: Fit,
    *,
    seed: int,
    on_epoch: EpochHook | None = None,
    progress: bool = True,
    label: str = "train",
    stop: StopRule | None = None,
) -> TrainResult:
    """`train_and_score` for any model: `make_model` is called after seeding (weights init)."""
    seed_everything(seed)
    model = make_model()
    start = time.perf_counter()
    rungs = (_Rungs(stop),) if stop else ()
    history = fit_model(
        model, data, fit, on_epoch=on_epoch, progress=progress, label=label, extra_callbacks=rungs
    )
    seconds = time.perf_counter() - start
    val = evaluate(model, data.val)
    diverged = not history or not all(math.isfinite(v) for v in history[-1].values())
    diverged = diverged or not math.isfinite(val["loss"])
    status = "timeout" if deadline.expired() else "diverged" if diverged else "ok"
    if status == "ok" and rungs and rungs[0].pruned_at:
        status = "pruned"
    return TrainResult(
        model=model,
        history=history,
        metrics={
            "val_accuracy": val["accuracy"],
            "val_loss": val["loss"],
            "epochs_run": len(history),
            "fit_seconds": seconds,
            "status": status,
        },
    )
