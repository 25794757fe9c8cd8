"""Quantization-aware training for Keras 3: Dense/Conv2D twins whose kernels are fake-quantized
in the forward pass (straight-through gradient), fine-tuned, then stripped back to plain layers
holding the k-bit values (what gets saved and packed: no saved model needs these layers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

from leanml.compress.base import Method, Variant, copy_layer, fine_tune, rebuild, sequential_layers
from leanml.compress.ptq import save_quantized
from leanml.compress.uniform import QTensor, fake_quantize, quantize
from leanml.data import Splits
from leanml.errors import LeanmlError


@keras.saving.register_keras_serializable(package="leanml")
class QuantDense(keras.layers.Dense):
    """Dense whose kernel is fake-quantized to `bits` in the forward pass (STE backward)."""

    def __init__(
        self, *args, bits: int = 8, per_channel: bool = True, symmetric: bool = True, **kw
    ):
        super().__init__(*args, **kw)
        self.bits, self.per_channel, self.symmetric = bits, per_channel, symmetric

    def call(self, inputs, training=None):
        kernel = fake_quantize(self.kernel, self.bits, self.per_channel, self.symmetric)
        x = keras.ops.matmul(inputs, kernel)
        if self.use_bias:
            x = keras.ops.add(x, self.bias)
        return self.activation(x) if self.activation is not None else x

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "bits": self.bits,
            "per_channel": self.per_channel,
            "symmetric": self.symmetric,
        }


@keras.saving.register_keras_serializable(package="leanml")
class QuantConv2D(keras.layers.Conv2D):
    """Conv2D whose kernel is fake-quantized to `bits` in the forward pass (STE backward)."""

    def __init__(
        self, *args, bits: int = 8, per_channel: bool = True, symmetric: bool = True, **kw
    ):
        super().__init__(*args, **kw)
        self.bits, self.per_channel, self.symmetric = bits, per_channel, symmetric

    def call(self, inputs):
        kernel = fake_quantize(self.kernel, self.bits, self.per_channel, self.symmetric)
        x = self.convolution_op(inputs, kernel)
        if self.use_bias:
            shape = (1,) * (len(x.shape) - 1) + (self.filters,)
            x = keras.ops.add(x, keras.ops.reshape(self.bias, shape))
        return self.activation(x) if self.activation is not None else x

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "bits": self.bits,
            "per_channel": self.per_channel,
            "symmetric": self.symmetric,
        }


def qat_model(model: keras.Model, bits: int, per_channel: bool, symmetric: bool) -> keras.Model:
    """The baseline with every Dense/Conv2D swapped for its fake-quant twin (same weights)."""
    out = []
    for layer in sequential_layers(model, "quantize"):
        if isinstance(layer, keras.layers.Conv2D) and (
            layer.data_format != "channels_last" or layer.groups != 1
        ):
            raise LeanmlError(
                f"compress.quantize.qat: layer {layer.name!r} (Conv2D with groups={layer.groups}, "
                f"{layer.data_format}) cannot be handled by quantization-aware training; "
                "it supports Dense and channels_last Conv2D with groups=1"
            )
        twin = {keras.layers.Dense: QuantDense, keras.layers.Conv2D: QuantConv2D}.get(type(layer))
        extra = {"bits": bits, "per_channel": per_channel, "symmetric": symmetric}
        new = twin(**layer.get_config(), **extra) if twin else copy_layer(layer)
        out.append((new, layer.get_weights() or None))
    return rebuild(model, out)


def strip_qat(model: keras.Model) -> tuple[keras.Model, dict[int, QTensor]]:
    """Back to plain Dense/Conv2D holding the quantized kernels (what gets saved and packed)."""
    out = []
    q = {}
    for layer in model.layers:
        plain = {QuantDense: keras.layers.Dense, QuantConv2D: keras.layers.Conv2D}.get(type(layer))
        if plain is None:
            out.append((copy_layer(layer), layer.get_weights() or None))
            continue
        config = {
            k: v
            for k, v in layer.get_config().items()
            if k not in ("bits", "per_channel", "symmetric")
        }
        out.append((plain.from_config(config), layer.get_weights()))
        q[layer.name] = (layer.bits, layer.per_channel, layer.symmetric)
    stripped = rebuild(model, out)
    weights = stripped.get_weights()
    quantized: dict[int, QTensor] = {}
    for i, var in enumerate(stripped.weights):
        owner = next(
            (layer for layer in stripped.layers if layer.name in q and var is layer.kernel), None
        )
        if owner is not None:
            quantized[i] = quantize(weights[i], *q[owner.name])
            weights[i] = quantized[i].dequantize()
    stripped.set_weights(weights)
    return stripped, quantized


def apply(
    method: Method, baseline: keras.Model, data: Splits, setting: dict[str, Any], out_dir: Path
) -> Variant:
    """The `qat` kind of `Quantize`: fake-quant twins, fine-tune, strip, save, pack the codes."""
    per_channel = setting["granularity"] == "per_channel"
    symmetric = setting["scheme"] == "symmetric"
    trainable = qat_model(baseline, setting["bits"], per_channel, symmetric)
    fine_tune(trainable, data, method.fine_tune, method.cfg.qat.epochs, teacher=baseline)
    model, quantized = strip_qat(trainable)
    return save_quantized(setting, model, quantized, out_dir)
