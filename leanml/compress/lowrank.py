"""Low-rank factorization: truncated SVD of each Dense kernel W (m×n) into two Dense layers of
rank r (m×r then r×n), and of each Conv2D kernel reshaped to (kh·kw·c_in)×c_out into a k×k
convolution with r filters followed by a 1×1 convolution; then fine-tune.

A layer is left dense where r·(m+n) ≥ m·n, since factorizing it would not save anything.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras
import numpy as np

from leanml.compress.base import (
    Method,
    Variant,
    copy_layer,
    fine_tune,
    keras_variant,
    rebuild,
    sequential_layers,
)
from leanml.compress.encode import encode
from leanml.data import Splits
from leanml.errors import LeanmlError
from leanml.measure import save_model


def _matrix(layer) -> np.ndarray:
    kernel = np.asarray(layer.kernel, np.float64)
    return kernel.reshape(-1, kernel.shape[-1])


def choose_rank(singular: np.ndarray, criterion: str, value: float) -> int:
    """Rank for one layer: a share of its full rank, the smallest rank keeping `value` of the
    energy Σσ², or a fixed rank."""
    full = len(singular)
    if criterion == "rank_ratio":
        return max(1, min(full, math.ceil(value * full)))
    if criterion == "energy":
        energy = np.cumsum(singular**2) / max(np.sum(singular**2), 1e-30)
        return int(min(full, np.searchsorted(energy, value - 1e-12) + 1))
    return int(value)


def factorize(layer, rank: int) -> list[tuple[keras.layers.Layer, list[np.ndarray]]]:
    """Two layers whose product is the rank-`rank` SVD truncation of `layer`'s kernel."""
    u, s, vt = np.linalg.svd(_matrix(layer), full_matrices=False)
    root = np.sqrt(s[:rank])
    first = (u[:, :rank] * root).astype(np.float32)
    second = (root[:, None] * vt[:rank]).astype(np.float32)
    config = layer.get_config()
    rest = layer.get_weights()[1:]
    if isinstance(layer, keras.layers.Dense):
        a = keras.layers.Dense(rank, use_bias=False, name=f"{layer.name}_u")
        b = keras.layers.Dense.from_config({**config, "name": f"{layer.name}_v"})
        return [(a, [first]), (b, [second, *rest])]
    kh, kw, c_in, _ = layer.kernel.shape
    a = keras.layers.Conv2D(
        rank,
        config["kernel_size"],
        strides=config["strides"],
        padding=config["padding"],
        dilation_rate=config["dilation_rate"],
        use_bias=False,
        name=f"{layer.name}_u",
    )
    b = keras.layers.Conv2D.from_config(
        {
            **config,
            "name": f"{layer.name}_v",
            "kernel_size": (1, 1),
            "strides": (1, 1),
            "padding": "valid",
            "dilation_rate": (1, 1),
        }
    )
    return [(a, [first.reshape(kh, kw, c_in, rank)]), (b, [second.reshape(1, 1, rank, -1), *rest])]


def factorize_model(
    model: keras.Model, criterion: str, value: float, skip_if_no_saving: bool = True
) -> tuple[keras.Sequential, dict[str, int]]:
    """Factorize every Dense/Conv2D layer; return the new model and the rank used per layer
    (0 where the layer was left dense)."""
    out: list[tuple[keras.layers.Layer, list[np.ndarray] | None]] = []
    ranks: dict[str, int] = {}
    largest = 0
    for layer in sequential_layers(model, "lowrank"):
        if isinstance(layer, keras.layers.Conv2D) and (
            type(layer) is not keras.layers.Conv2D
            or layer.groups != 1
            or layer.data_format != "channels_last"
        ):
            raise LeanmlError(
                f"compress.lowrank: layer {layer.name!r} ({type(layer).__name__}, "
                f"groups={layer.groups}) cannot be handled by low-rank factorization; it supports "
                "Dense and channels_last Conv2D with groups=1"
            )
        if not isinstance(layer, keras.layers.Dense | keras.layers.Conv2D):
            out.append((copy_layer(layer), layer.get_weights() or None))
            continue
        m, n = _matrix(layer).shape
        largest = max(largest, min(m, n))
        singular = np.linalg.svd(_matrix(layer), compute_uv=False)
        rank = choose_rank(singular, criterion, value)
        if rank > min(m, n) or (skip_if_no_saving and rank * (m + n) >= m * n):
            ranks[layer.name] = 0
            out.append((copy_layer(layer), layer.get_weights()))
            continue
        ranks[layer.name] = rank
        out.extend(factorize(layer, rank))
    if criterion == "rank" and value > largest:
        raise LeanmlError(
            f"compress.lowrank.values: rank {value} is larger than every layer of the baseline "
            f"(the largest allows rank {largest})"
        )
    return rebuild(model, out), ranks


class Lowrank(Method):
    name = "lowrank"
    columns = ("rank_knob", "criterion", "ranks")

    def settings(self) -> list[dict[str, Any]]:
        short = {"rank_ratio": "r", "energy": "e", "rank": "rank"}[self.cfg.criterion]
        out = []
        for value in self.cfg.values:
            label = str(value) if self.cfg.criterion == "rank" else str(round(100 * value))
            out.append(
                {
                    "name": f"{short}{label}",
                    "criterion": self.cfg.criterion,
                    "rank_knob": value,
                }
            )
        return out

    def apply(
        self, baseline: keras.Model, data: Splits, setting: dict[str, Any], out_dir: Path
    ) -> Variant:
        model, ranks = factorize_model(baseline, setting["criterion"], setting["rank_knob"])
        fine_tune(model, data, self.fine_tune, self.cfg.epochs, teacher=baseline)
        name = setting["name"]
        model_file, artifact = out_dir / f"{name}.keras", out_dir / f"{name}.packed"
        save_model(model, model_file)
        encode(model, artifact, entropy_coded=True)
        ranks_text = " ".join(f"{k}:{v or 'dense'}" for k, v in ranks.items())
        return keras_variant(name, {**setting, "ranks": ranks_text}, model, model_file, artifact)
