"""Uniform k-bit post-training quantization, the seed's Q(w) = round(w·s): every Dense/Conv
kernel replaced by its k-bit values (per tensor or per channel, symmetric or asymmetric), packed
at k bits a weight."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

from leanml.compress.base import (
    WEIGHTED,
    Method,
    Variant,
    clone,
    keras_variant,
    kernel_sparsity,
    sequential_layers,
)
from leanml.compress.encode import encode
from leanml.compress.uniform import QTensor, quantize
from leanml.data import Splits
from leanml.measure import save_model


def quantize_kernels(
    model: keras.Model, bits: int, per_channel: bool, symmetric: bool
) -> tuple[keras.Model, dict[int, QTensor]]:
    """A copy whose Dense/Conv kernels hold their k-bit values (biases stay float32), and the
    quantized tensors by weight index (for packing)."""
    copy = clone(model)
    weights = copy.get_weights()
    kernels = {id(layer.kernel) for layer in copy.layers if isinstance(layer, WEIGHTED)}
    quantized: dict[int, QTensor] = {}
    for i, var in enumerate(copy.weights):
        if id(var) in kernels:
            quantized[i] = quantize(weights[i], bits, per_channel, symmetric)
            weights[i] = quantized[i].dequantize()
    copy.set_weights(weights)
    return copy, quantized


def apply(
    method: Method, baseline: keras.Model, data: Splits, setting: dict[str, Any], out_dir: Path
) -> Variant:
    """The `ptq` kind of `Quantize`: quantize the kernels, save, pack the codes."""
    sequential_layers(baseline, "quantize")
    per_channel = setting["granularity"] == "per_channel"
    symmetric = setting["scheme"] == "symmetric"
    model, quantized = quantize_kernels(baseline, setting["bits"], per_channel, symmetric)
    return save_quantized(setting, model, quantized, out_dir)


def save_quantized(
    setting: dict[str, Any],
    model: keras.Model,
    quantized: dict[int, Any],
    out_dir: Path,
    *,
    sparsity: bool = False,
) -> Variant:
    """Write `model` as `.keras` and its coded kernels (k-bit codes `QTensor`, or k-means
    indices + codebook `CTensor`) as `.packed` (the artifact); `sparsity`: the setting also
    records the kernels' achieved share of zeros (pruned and clustered variants)."""
    name = setting["name"]
    model_file, artifact = out_dir / f"{name}.keras", out_dir / f"{name}.packed"
    save_model(model, model_file)
    encode(model, artifact, quantized=quantized, sparse=True, entropy_coded=True)
    if sparsity:
        setting = {**setting, "sparsity_achieved": kernel_sparsity(model)}
    return keras_variant(name, setting, model, model_file, artifact)
