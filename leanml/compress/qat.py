"""Quantization: TFLite post-training (dynamic-range int8, float16, full-integer int8), the
seed's uniform k-bit Q(w) = round(w·s) as PTQ, and quantization-aware training (fake-quant in
the forward pass, straight-through gradient) for Keras 3.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np

from leanml.compress.base import (
    WEIGHTED,
    Method,
    Predict,
    Variant,
    clone,
    copy_layer,
    fine_tune,
    keras_predict,
    rebuild,
    sequential_layers,
)
from leanml.compress.encode import encode
from leanml.compress.uniform import QTensor, fake_quantize, quantize
from leanml.data import Splits
from leanml.errors import LeanmlError
from leanml.io import atomic_write_bytes
from leanml.measure import save_model

# --- TFLite ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_fds():
    """The TFLite converter prints pages of C++ logs to the process's stdout/stderr."""
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1), os.dup2(null.fileno(), 2)
        try:
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                yield
        finally:
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])


def to_tflite(model: keras.Model, mode: str, calibration: np.ndarray) -> bytes:
    """Convert through `from_keras_model` (`from_concrete_functions` yields NaN on Keras 3)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "full_int8":

        def representative():
            for x in calibration:
                yield [x[None].astype(np.float32)]

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    try:
        with _quiet_fds(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return converter.convert()
    except Exception as exc:
        raise LeanmlError(
            f"compress.quantize.tflite: the baseline could not be converted to TFLite {mode} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None


class TFLiteRunner:
    """Runs a TFLite model with `tf.lite.Interpreter`, quantizing int8 inputs/outputs as needed."""

    def __init__(self, content: bytes):
        import tensorflow as tf

        with _quiet_fds(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its deprecation notice; ai-edge-litert is not a dep
            self.interpreter = tf.lite.Interpreter(model_content=content, num_threads=1)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch = None

    def _resize(self, n: int) -> None:
        if self.batch != n:
            self.interpreter.resize_tensor_input(self.input["index"], [n, *self.input["shape"][1:]])
            self.interpreter.allocate_tensors()
            self.batch = n

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self._resize(len(x))
        if self.input["dtype"] == np.int8:
            scale, zero = self.input["quantization"]
            x = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
        self.interpreter.set_tensor(self.input["index"], x.astype(self.input["dtype"]))
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output["index"])
        if self.output["dtype"] == np.int8:
            scale, zero = self.output["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return np.asarray(y, np.float32)

    def latency(
        self, sample: np.ndarray, *, warmup: int, runs: int, batch_size: int
    ) -> dict[str, float]:
        """Same protocol as `measure.latency`: batch-1 p50/p95 after warm-up, batch throughput."""
        from leanml.measure import time_calls

        return time_calls(self, sample, warmup=warmup, runs=runs, batch_size=batch_size)


# --- uniform k-bit PTQ -----------------------------------------------------------------------


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


# --- quantization-aware training -------------------------------------------------------------


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


# --- the method ------------------------------------------------------------------------------


class Quantize(Method):
    name = "quantize"
    columns = ("bits", "kind", "granularity", "scheme")

    def settings(self) -> list[dict[str, Any]]:
        cfg = self.cfg
        bits_of = {"dynamic_int8": 8, "float16": 16, "full_int8": 8}
        out: list[dict[str, Any]] = [
            {"name": f"tflite_{mode}", "kind": "tflite", "mode": mode, "bits": bits_of[mode]}
            for mode in cfg.tflite.modes
        ]
        short = {"per_tensor": "pt", "per_channel": "pc", "symmetric": "sym", "asymmetric": "asym"}
        out += [
            {
                "name": f"ptq_k{bits}_{short[g]}_{short[s]}",
                "kind": "ptq",
                "bits": bits,
                "granularity": g,
                "scheme": s,
            }
            for bits in cfg.ptq.bits
            for g in cfg.ptq.granularities
            for s in cfg.ptq.schemes
        ]
        q = cfg.qat
        out += [
            {
                "name": f"qat_k{bits}_{short[q.granularity]}_{short[q.scheme]}",
                "kind": "qat",
                "bits": bits,
                "granularity": q.granularity,
                "scheme": q.scheme,
            }
            for bits in q.bits
        ]
        return out

    def apply(
        self, baseline: keras.Model, data: Splits, setting: dict[str, Any], out_dir: Path
    ) -> Variant:
        name, kind = setting["name"], setting["kind"]
        if kind == "tflite":
            calibration = data.train.x[: self.cfg.tflite.calibration_samples]
            content = to_tflite(baseline, setting["mode"], calibration)
            path = out_dir / f"{name}.tflite"
            atomic_write_bytes(path, content)
            runner = TFLiteRunner(content)
            return Variant(
                name=name,
                setting=setting,
                model_file=path,
                artifact=path,
                predict=_batched(runner),
                latency=lambda sample, **kw: runner.latency(sample, **kw),
            )
        per_channel = setting["granularity"] == "per_channel"
        symmetric = setting["scheme"] == "symmetric"
        if kind == "ptq":
            sequential_layers(baseline, "quantize")
            model, quantized = quantize_kernels(baseline, setting["bits"], per_channel, symmetric)
        else:
            trainable = qat_model(baseline, setting["bits"], per_channel, symmetric)
            fine_tune(trainable, data, self.fine_tune, self.cfg.qat.epochs)
            model, quantized = strip_qat(trainable)
        model_file, artifact = out_dir / f"{name}.keras", out_dir / f"{name}.packed"
        save_model(model, model_file)
        encode(model, artifact, quantized=quantized)
        return Variant(
            name=name,
            setting=setting,
            model_file=model_file,
            artifact=artifact,
            predict=keras_predict(model),
            keras_model=model,
        )


def _batched(runner: TFLiteRunner, size: int = 512) -> Predict:
    def predict(x: np.ndarray) -> np.ndarray:
        return np.concatenate([runner(x[i : i + size]) for i in range(0, len(x), size)])

    return predict
