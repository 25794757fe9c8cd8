"""Structured pruning: whole Dense neurons / Conv filters removed (lowest score first), giving a
genuinely smaller model, then fine-tuned.
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
    copy_layer,
    fine_tune,
    gradients,
    keras_variant,
    kernel_sparsity,
    rebuild,
    sequential_layers,
)
from leanml.compress.encode import encode
from leanml.data import Splits
from leanml.errors import LeanmlError
from leanml.measure import save_model

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


def apply(
    method: Method, baseline: keras.Model, data: Splits, setting: dict[str, Any], out_dir: Path
) -> Variant:
    """The `structured` kind of `Prune`: remove units, fine-tune, encode dense."""
    name = setting["name"]
    model = prune_structured(
        baseline, data, fraction=setting["fraction"], criterion=setting["criterion"]
    )
    fine_tune(model, data, method.fine_tune, method.cfg.structured.epochs, teacher=baseline)
    removed = 1 - model.count_params() / baseline.count_params()
    model_file, artifact = out_dir / f"{name}.keras", out_dir / f"{name}.packed"
    encode(model, artifact, entropy_coded=True)
    save_model(model, model_file)
    setting = {
        **setting,
        "sparsity": round(removed, 4),
        "sparsity_achieved": kernel_sparsity(model),
    }
    return keras_variant(name, setting, model, model_file, artifact)
