"""Pruning, Keras 3 native: unstructured (magnitude, gradient or Taylor scores; per-layer or
global threshold; gradual polynomial schedule with fixed masks) and structured (whole Dense
neurons / Conv filters removed, giving a genuinely smaller model).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras
import numpy as np

from leanml.compress.base import (
    WEIGHTED,
    Method,
    Variant,
    clone,
    copy_layer,
    fine_tune,
    gradients,
    keras_predict,
    rebuild,
    sequential_layers,
)
from leanml.compress.encode import encode
from leanml.compress.schedule import PolynomialDecay, Schedule
from leanml.data import Splits
from leanml.errors import LeanmlError
from leanml.measure import save_model
from leanml.params import FineTune


class Pruner:
    """Masks over the kernels of a model's Dense/Conv layers (biases are never pruned)."""

    def __init__(self, model: keras.Model, criterion: str, scope: str, data: Splits):
        self.model, self.criterion, self.scope, self.data = model, criterion, scope, data
        self.layers = [layer for layer in model.layers if isinstance(layer, WEIGHTED)]
        if not self.layers:
            raise LeanmlError("compress.prune: the baseline has no Dense or Conv2D layer to prune")
        self.masks = [np.ones(layer.kernel.shape, bool) for layer in self.layers]

    def scores(self) -> list[np.ndarray]:
        kernels = [layer.kernel for layer in self.layers]
        if self.criterion == "magnitude":
            return [np.abs(np.asarray(k)) for k in kernels]
        grads = gradients(self.model, self.data, kernels)
        if self.criterion == "gradient":
            # The seed's I_i = |g_i| / Σ_j |g_j| (accumulated over batches, per layer).
            return [g / max(g.sum(), 1e-30) for g, _ in grads]
        return [t for _, t in grads]  # Taylor: Σ_batches |w·g|

    def update(self, sparsity: float) -> None:
        """Recompute the masks so that exactly round(sparsity·n) kernel entries are zero."""
        scores = self.scores()
        if self.scope == "global":
            flat = np.concatenate([s.reshape(-1) for s in scores])
            drop = np.zeros(flat.size, bool)
            drop[np.argsort(flat, kind="stable")[: round(sparsity * flat.size)]] = True
            sizes = np.cumsum([0] + [s.size for s in scores])
            self.masks = [
                ~drop[a:b].reshape(s.shape)
                for a, b, s in zip(sizes[:-1], sizes[1:], scores, strict=True)
            ]
        else:
            self.masks = []
            for s in scores:
                drop = np.zeros(s.size, bool)
                drop[np.argsort(s.reshape(-1), kind="stable")[: round(sparsity * s.size)]] = True
                self.masks.append(~drop.reshape(s.shape))

    def apply(self) -> None:
        for layer, mask in zip(self.layers, self.masks, strict=True):
            layer.kernel.assign(np.asarray(layer.kernel) * mask)

    def sparsity(self) -> float:
        zeros = sum(int(np.sum(np.asarray(layer.kernel) == 0)) for layer in self.layers)
        return zeros / sum(int(np.prod(layer.kernel.shape)) for layer in self.layers)


class MaskUpdater(keras.callbacks.Callback):
    """Update masks as the schedule says before a step; re-apply them after every step,
    so weights pruned once stay exactly zero whatever the optimizer's momentum does."""

    def __init__(self, pruner: Pruner, schedule: Schedule):
        super().__init__()
        self.pruner, self.schedule, self.step = pruner, schedule, 0

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        due, sparsity = self.schedule(self.step)
        if due:
            self.pruner.update(sparsity)
            self.pruner.apply()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.pruner.apply()
        self.step += 1


def steps_per_epoch(data: Splits, batch_size: int) -> int:
    return math.ceil(len(data.train.x) / batch_size)


def prune_unstructured(
    baseline: keras.Model,
    data: Splits,
    *,
    sparsity: float,
    criterion: str,
    scope: str,
    epochs: int,
    ramp: float,
    frequency: int,
    fine: FineTune,
) -> keras.Model:
    """A copy of `baseline` with `sparsity` of its kernel entries zero, fine-tuned with masks.

    Sparsity rises from 0 along a cubic schedule over the first `ramp` share of the fine-tune
    steps, then the masks are held fixed while the remaining steps recover accuracy.
    """
    sequential_layers(baseline, "prune")
    model = clone(baseline)
    pruner = Pruner(model, criterion, scope, data)
    total = epochs * steps_per_epoch(data, fine.batch_size)
    if total < 2:
        pruner.update(sparsity)  # one-shot, no fine-tuning
        pruner.apply()
        return model
    end = min(max(1, math.ceil(ramp * total)), total - 1)
    schedule = PolynomialDecay(0.0, sparsity, 0, end, frequency=frequency)
    fine_tune(model, data, fine, epochs, [MaskUpdater(pruner, schedule)])
    return model


# --- structured ------------------------------------------------------------------------------

# Layers that structured pruning can see through: they act on each channel independently.
CHANNELWISE = (
    keras.layers.Dropout,
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.Activation,
    keras.layers.ReLU,
)


def _unit_scores(layer, criterion: str, taylor: dict[str, np.ndarray]) -> np.ndarray:
    kernel = np.asarray(layer.kernel)
    axes = tuple(range(kernel.ndim - 1))
    if criterion == "l1":
        return np.abs(kernel).sum(axis=axes)
    if criterion == "l2":
        return np.sqrt((kernel**2).sum(axis=axes))
    return taylor[layer.name].sum(axis=axes)


def prune_structured(
    baseline: keras.Model, data: Splits, *, fraction: float, criterion: str
) -> keras.Sequential:
    """Remove `fraction` of the units of every hidden Dense layer and of the filters of every
    Conv2D layer (lowest score first), and rebuild a smaller model with the surviving weights.
    The output layer keeps all its units."""
    layers = sequential_layers(baseline, "prune")
    weighted = [i for i, layer in enumerate(layers) if isinstance(layer, WEIGHTED)]
    for layer in layers:
        supported = isinstance(layer, (*WEIGHTED, *CHANNELWISE, keras.layers.Flatten))
        if not supported or (isinstance(layer, keras.layers.Conv2D) and layer.groups != 1):
            raise LeanmlError(
                f"compress.prune.structured: layer {layer.name!r} ({type(layer).__name__}) "
                "cannot be handled by structured pruning; it supports Dense, Conv2D (groups=1), "
                "Flatten, Dropout, pooling and activation layers"
            )
    taylor: dict[str, np.ndarray] = {}
    if criterion == "taylor":
        scored = [layers[i] for i in weighted]
        grads = gradients(baseline, data, [x.kernel for x in scored])
        for layer, (_, t) in zip(scored, grads, strict=True):
            taylor[layer.name] = t

    out: list[tuple[keras.layers.Layer, list[np.ndarray] | None]] = []
    keep_in: np.ndarray | None = None  # surviving channels of the tensor flowing in
    for i, layer in enumerate(layers):
        if isinstance(layer, keras.layers.Flatten) and keep_in is not None:
            positions = math.prod(layer.input.shape[1:-1])
            channels = layer.input.shape[-1]
            keep_in = (np.arange(positions)[:, None] * channels + keep_in[None, :]).reshape(-1)
        if not isinstance(layer, WEIGHTED):
            out.append((copy_layer(layer), layer.get_weights() or None))
            continue
        kernel, *rest = layer.get_weights()
        if keep_in is not None:
            kernel = np.take(kernel, keep_in, axis=-2)
        config = layer.get_config()
        if i != weighted[-1]:
            units = kernel.shape[-1]
            n_keep = max(1, round((1 - fraction) * units))
            scores = _unit_scores(layer, criterion, taylor)
            keep = np.sort(np.argsort(-scores, kind="stable")[:n_keep])
            kernel = kernel[..., keep]
            rest = [b[keep] for b in rest]
            config["units" if isinstance(layer, keras.layers.Dense) else "filters"] = n_keep
            keep_in = keep
        out.append((layer.__class__.from_config(config), [kernel, *rest]))
    return rebuild(baseline, out)


class Prune(Method):
    name = "prune"
    columns = ("sparsity", "kind", "criterion", "scope", "fraction", "sparsity_achieved")

    def settings(self) -> list[dict[str, Any]]:
        cfg = self.cfg
        out = [
            {
                "name": f"{criterion}_s{round(100 * s)}",
                "kind": "unstructured",
                "criterion": criterion,
                "scope": cfg.scope,
                "sparsity": s,
            }
            for criterion in cfg.criteria
            for s in cfg.sparsities
        ]
        out += [
            {
                "name": f"structured_{cfg.structured.criterion}_f{round(100 * f)}",
                "kind": "structured",
                "criterion": cfg.structured.criterion,
                "fraction": f,
            }
            for f in cfg.structured.fractions
        ]
        return out

    def apply(
        self, baseline: keras.Model, data: Splits, setting: dict[str, Any], out_dir: Path
    ) -> Variant:
        cfg, name = self.cfg, setting["name"]
        model_file, artifact = out_dir / f"{name}.keras", out_dir / f"{name}.packed"
        if setting["kind"] == "structured":
            model = prune_structured(
                baseline, data, fraction=setting["fraction"], criterion=setting["criterion"]
            )
            fine_tune(model, data, self.fine_tune, cfg.structured.epochs)
            removed = 1 - model.count_params() / baseline.count_params()
            setting = {**setting, "sparsity": round(removed, 4)}
            encode(model, artifact)
        else:
            model = prune_unstructured(
                baseline,
                data,
                sparsity=setting["sparsity"],
                criterion=setting["criterion"],
                scope=setting["scope"],
                epochs=cfg.epochs,
                ramp=cfg.ramp,
                frequency=cfg.frequency,
                fine=self.fine_tune,
            )
            encode(model, artifact, sparse=True)
        save_model(model, model_file)
        achieved = kernel_sparsity(model)
        return Variant(
            name=name,
            setting={**setting, "sparsity_achieved": achieved},
            model_file=model_file,
            artifact=artifact,
            predict=keras_predict(model),
            keras_model=model,
        )


def kernel_sparsity(model: keras.Model) -> float:
    """Share of exact zeros among the kernels of Dense/Conv layers."""
    kernels = [np.asarray(layer.kernel) for layer in model.layers if isinstance(layer, WEIGHTED)]
    return float(sum(int(np.sum(k == 0)) for k in kernels) / sum(k.size for k in kernels))
