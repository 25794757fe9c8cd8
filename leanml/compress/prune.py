"""Unstructured pruning, Keras 3 native: magnitude, gradient or Taylor scores; per-layer or global
threshold; gradual polynomial schedule with fixed masks. The `Prune` method also dispatches its
structured settings to `structured.py`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from leanml.compress import structured
from leanml.compress.base import (
    WEIGHTED,
    Method,
    Variant,
    clone,
    fine_tune,
    gradients,
    keras_variant,
    kernel_sparsity,
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

    def __init__(
        self,
        model: keras.Model,
        criterion: str,
        scope: str,
        data: Splits,
        targets: Sequence[float] | None = None,
    ):
        self.model, self.criterion, self.scope, self.data = model, criterion, scope, data
        self.layers = [layer for layer in model.layers if isinstance(layer, WEIGHTED)]
        if not self.layers:
            raise LeanmlError("compress.prune: the baseline has no Dense or Conv2D layer to prune")
        self.masks = [np.ones(layer.kernel.shape, bool) for layer in self.layers]
        # per-layer final sparsities (a searched policy): `update(f)` then sets layer i to
        # f · targets[i], f rising from 0 to 1 along the schedule; None: one sparsity for all
        self.targets = None if targets is None else [float(t) for t in targets]
        if self.targets is not None and len(self.targets) != len(self.layers):
            raise LeanmlError(
                f"compress: {len(self.targets)} per-layer sparsities for "
                f"{len(self.layers)} Dense/Conv2D layers"
            )

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
        """Recompute the masks so that exactly round(sparsity·n) kernel entries are zero (per
        layer with `targets`: round(sparsity·targets[i]·n_i) in layer i)."""
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
            targets = self.targets or [1.0] * len(scores)
            self.masks = []
            for s, target in zip(scores, targets, strict=True):
                drop = np.zeros(s.size, bool)
                n = round(sparsity * target * s.size)
                drop[np.argsort(s.reshape(-1), kind="stable")[:n]] = True
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
    sparsity: float | Sequence[float],
    criterion: str,
    scope: str,
    epochs: int,
    ramp: float,
    frequency: int,
    fine: FineTune,
) -> keras.Model:
    """A copy of `baseline` with `sparsity` of its kernel entries zero, fine-tuned with masks.

    `sparsity`: one share for all kernels (thresholds per `scope`), or one share per Dense/
    Conv2D layer in order (a per-layer policy: per-layer thresholds, `scope` not used).
    Sparsity rises from 0 along a cubic schedule over the first `ramp` share of the fine-tune
    steps, then the masks are held fixed while the remaining steps recover accuracy.
    """
    sequential_layers(baseline, "prune")
    model = clone(baseline)
    if isinstance(sparsity, (int, float)):
        pruner = Pruner(model, criterion, scope, data)
    else:  # one sparsity per Dense/Conv2D layer (a policy): thresholds are per layer
        pruner = Pruner(model, criterion, "per_layer", data, targets=sparsity)
        sparsity = 1.0
    total = epochs * steps_per_epoch(data, fine.batch_size)
    if total < 2:
        pruner.update(sparsity)  # one-shot, no fine-tuning
        pruner.apply()
        return model
    end = min(max(1, math.ceil(ramp * total)), total - 1)
    schedule = PolynomialDecay(0.0, sparsity, 0, end, frequency=frequency)
    fine_tune(model, data, fine, epochs, [MaskUpdater(pruner, schedule)], teacher=baseline)
    return model


def unstructured(
    method: Method, baseline: keras.Model, data: Splits, setting: dict[str, Any], out_dir: Path
) -> Variant:
    """The `unstructured` kind of `Prune`: masks fixed while fine-tuning, encoded sparse."""
    cfg, name = method.cfg, setting["name"]
    model = prune_unstructured(
        baseline,
        data,
        sparsity=setting["sparsity"],
        criterion=setting["criterion"],
        scope=setting["scope"],
        epochs=cfg.epochs,
        ramp=cfg.ramp,
        frequency=cfg.frequency,
        fine=method.fine_tune,
    )
    model_file, artifact = out_dir / f"{name}.keras", out_dir / f"{name}.packed"
    encode(model, artifact, sparse=True, entropy_coded=True)
    save_model(model, model_file)
    setting = {**setting, "sparsity_achieved": kernel_sparsity(model)}
    return keras_variant(name, setting, model, model_file, artifact)


# Each kind of setting, and the file of the technique that applies it.
TECHNIQUES = {"unstructured": unstructured, "structured": structured.apply}


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
        return TECHNIQUES[setting["kind"]](self, baseline, data, setting, out_dir)
