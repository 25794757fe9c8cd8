"""What every compression method shares: the Method interface, a Variant, rebuild, fine-tune."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np

from leanml.data import Splits
from leanml.errors import LeanmlError
from leanml.measure import KerasRunner, Runner
from leanml.params import FineTune

WEIGHTED = (keras.layers.Dense, keras.layers.Conv2D)


@dataclass
class Variant:
    """One compressed model: how it was made, how to run it, and the real files it lives in.

    `model_file` is the runnable model (`.keras` or `.tflite`); `artifact` is the most compact
    real encoding of it (a packed file, or the model file itself). Both are measured on disk by
    `measure.score`, which runs `runner` (the in-memory twin of `model_file`). `counts`, when
    set, are the parameters/FLOPs the results table reports instead of the runner's own.
    """

    name: str
    setting: dict[str, Any]
    model_file: Path
    artifact: Path
    runner: Runner
    counts: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities for `x`, as `measure.score` computes them."""
        return self.runner.predict(x)

    @property
    def keras_model(self) -> keras.Model | None:
        return self.runner.model if isinstance(self.runner, KerasRunner) else None


class Method(ABC):
    """A compression method: a sweep of settings, and how to apply one to the baseline."""

    name: ClassVar[str]
    # Columns of the results table that describe a setting, in order (the knob first).
    columns: ClassVar[tuple[str, ...]]

    def __init__(self, cfg: Any, fine_tune: FineTune, seed: int):
        self.cfg, self.fine_tune, self.seed = cfg, fine_tune, seed

    def prepare(self, baseline: keras.Model, data: Splits, ref: dict, ctx: Any) -> None:
        """Before `settings`: a method whose settings are searched (auto) searches them here.

        `ref` is the baseline's reference row (`run.reference`); `ctx` the stage's `Context`
        (its MLflow run, label, resume checkpoint and fingerprint, trials table path)."""
        return None  # a sweep of fixed settings has nothing to search

    def metrics(self) -> dict[str, Any]:
        """Method-level numbers for metrics.json beside the variants' (e.g. a search's)."""
        return {}

    @abstractmethod
    def settings(self) -> list[dict[str, Any]]:
        """Every variant of the sweep, each a dict with at least a `name`."""

    @abstractmethod
    def apply(
        self, baseline: keras.Model, data: Splits, setting: dict[str, Any], out_dir: Path
    ) -> Variant:
        """Compress a copy of `baseline` as `setting` says; write its files under `out_dir`."""


def sequential_layers(model: keras.Model, method: str) -> list[keras.layers.Layer]:
    """The layers of a Sequential model; any other topology is refused with a clear message."""
    if not isinstance(model, keras.Sequential):
        raise LeanmlError(
            f"compress.{method}: the baseline {model.name!r} is a {type(model).__name__}; "
            f"{method} handles keras.Sequential models (what the train stage builds)"
        )
    return list(model.layers)


def as_sequential(model: keras.Model) -> keras.Model:
    """A functional model that is one chain of layers (a NAS child without skip connections) as
    the Sequential model of the same layers and weights, so every method can take it; a model
    with branches is returned as it is (the methods then refuse it, naming its type)."""
    if isinstance(model, keras.Sequential):
        return model
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    previous = model.layers[0] if model.layers else None
    for layer in layers:
        inbound = layer.input
        if isinstance(inbound, (list, tuple)) or len(layer._inbound_nodes) != 1:
            return model  # a join (Add) or a shared layer: not a chain
        if inbound._keras_history.operation is not previous:
            return model
        previous = layer
    if not layers or model.outputs[0]._keras_history.operation is not previous:
        return model
    return rebuild(model, [(copy_layer(layer), layer.get_weights()) for layer in layers])


def copy_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
    return layer.__class__.from_config(layer.get_config())


def rebuild(
    model: keras.Model, layers: Sequence[tuple[keras.layers.Layer, list[np.ndarray] | None]]
) -> keras.Sequential:
    """A new Sequential with the baseline's input and `layers`, each given its weights."""
    # A fixed input name: Keras numbers unnamed inputs per process, which would make the saved
    # config (and so the file bytes) depend on how many models were built before.
    inputs = keras.Input(shape=model.input_shape[1:], name=f"{model.name}_input")
    new = keras.Sequential([inputs, *(layer for layer, _ in layers)], name=model.name)
    for layer, weights in layers:
        if weights is not None:
            layer.set_weights(weights)
    return new


def clone(model: keras.Model) -> keras.Model:
    """An independent copy with the same weights (never mutate the baseline)."""
    copy = model.__class__.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def keras_variant(
    name: str, setting: dict[str, Any], model: keras.Model, model_file: Path, artifact: Path
) -> Variant:
    """A variant whose runnable model is the Keras `model` (already saved as `model_file`)."""
    return Variant(name, setting, model_file, artifact, KerasRunner(model))


# Where `fine_tune` appends val accuracy after each epoch while `recording` is active.
_CURVE: ContextVar[list[float] | None] = ContextVar("leanml_fine_tune_curve", default=None)


@contextmanager
def recording() -> Iterator[list[float]]:
    """Collect the val accuracy after every fine-tune epoch run inside the block, in order
    across phases (e.g. pruning, then quantization-aware training): a variant's learning
    curve, logged as steps of its MLflow run. Reads val only; trains nothing differently."""
    curve: list[float] = []
    token = _CURVE.set(curve)
    try:
        yield curve
    finally:
        _CURVE.reset(token)


class _ValCurve(keras.callbacks.Callback):
    """Val accuracy of the model at the end of each epoch (`KerasRunner.predict`: the model
    called in inference mode, no tf.data, no random state touched), appended to `sink`."""

    def __init__(self, val, sink: list[float]):
        super().__init__()
        self.val, self.sink = val, sink

    def on_epoch_end(self, epoch, logs=None):
        probs = KerasRunner(self.model).predict(self.val.x)
        self.sink.append(round(float(np.mean(np.argmax(probs, axis=-1) == self.val.y)), 6))


def fine_tune(
    model: keras.Model,
    data: Splits,
    cfg: FineTune,
    epochs: int,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    *,
    teacher: keras.Model | None,
) -> None:
    """Fit for a fixed number of epochs (no early stopping: it would restore unpruned weights).

    `teacher` is the uncompressed model the method received: with `cfg.distill.alpha` > 0 the
    loss adds its soft targets (`distill.py`). It is a required keyword so that a method cannot
    forget it; None only where there is no teacher. With alpha 0 the fit is the plain one.
    """
    from leanml.train import make_optimizer

    if epochs <= 0:
        return
    x, y = data.train.x, data.train.y
    loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
    if teacher is not None and cfg.distill.alpha > 0:
        from leanml.compress import distill

        y = distill.targets(teacher, x, y, cfg.distill.temperature)
        # accuracy would read the packed target as one-hot; nothing reads fit's metrics here
        loss, metrics = distill.loss(cfg.distill), []
    model.compile(
        optimizer=make_optimizer(cfg.optimizer, cfg.learning_rate),
        loss=loss,
        metrics=metrics,
    )
    model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=cfg.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[*callbacks, keras.callbacks.TerminateOnNaN(), *_recorders(data)],
    )


def _recorders(data: Splits) -> list[keras.callbacks.Callback]:
    sink = _CURVE.get()
    return [] if sink is None else [_ValCurve(data.val, sink)]


def gradients(
    model: keras.Model, data: Splits, variables: Sequence, batch_size: int = 256
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per batch of the train split, the loss gradient for each of `variables` (and its value).

    Returned as a list over variables of (Σ_batches |g|, Σ_batches |w·g|).
    """
    import tensorflow as tf

    sums = [np.zeros(v.shape, np.float64) for v in variables]
    taylor = [np.zeros(v.shape, np.float64) for v in variables]
    x, y = data.train.x, data.train.y
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        with tf.GradientTape() as tape:
            probs = model(xb, training=False)
            loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(yb, probs))
        grads = tape.gradient(loss, list(variables))
        for i, (var, grad) in enumerate(zip(variables, grads, strict=True)):
            g = np.asarray(grad, np.float64)
            sums[i] += np.abs(g)
            taylor[i] += np.abs(g * np.asarray(var, np.float64))
    return list(zip(sums, taylor, strict=True))


def kernel_sparsity(model: keras.Model) -> float:
    """Share of exact zeros among the kernels of Dense/Conv layers."""
    kernels = [np.asarray(layer.kernel) for layer in model.layers if isinstance(layer, WEIGHTED)]
    return float(sum(int(np.sum(k == 0)) for k in kernels) / sum(k.size for k in kernels))
