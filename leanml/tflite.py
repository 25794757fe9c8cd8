"""The one TFLite runtime: LiteRT (`ai-edge-litert`), the one converter (Keras -> `.tflite`),
and the parameter/FLOP counts read from a flatbuffer.

Every latency on the leaderboard is measured here, in one interpreter with one thread count and
one protocol (`measure.time_calls`): a candidate's own `.tflite` file, or the float32 export of a
Keras candidate (`convert`). Timing Keras calls beside TFLite calls would compare runtimes, not
models (a Keras call costs ~0.3 ms of framework overhead at batch 1, a TFLite call ~0.01 ms).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import warnings
from collections.abc import Iterator

import numpy as np

# One interpreter thread, for every .tflite file the pipeline times (compress and evaluate).
# The models here take microseconds of arithmetic per sample, so at batch 1 a thread pool costs
# more than it saves; one thread also keeps the numbers independent of how many cores the
# machine has and of what else runs on them, and is how a microcontroller-class target runs.
# Predictions do not depend on it: the default pipeline's evaluate leaderboard, scored with the
# interpreter's default thread count before, is byte-identical with one thread.
NUM_THREADS = 1
# Rows per interpreter call when predicting a whole split (the batch is resized to fit).
PREDICT_BATCH = 512


def runtime() -> str:
    """The name of the latency runtime, as the leaderboard's `latency_runtime` column says it."""
    from importlib.metadata import version

    threads = "thread" if NUM_THREADS == 1 else "threads"
    return f"LiteRT {version('ai-edge-litert')}, {NUM_THREADS} {threads}"


@contextlib.contextmanager
def quiet_fds() -> Iterator[None]:
    """The TFLite converter and interpreter print pages of C++ logs to stdout/stderr."""
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


def convert(model, mode: str = "float32", calibration: np.ndarray | None = None) -> bytes:
    """A Keras model as a `.tflite` flatbuffer: `float32` (as is: how a Keras candidate is
    timed), or post-training quantized `dynamic_int8`, `float16`, `full_int8` (calibrated on
    `calibration`, int8 inputs/outputs). Through `from_keras_model`: `from_concrete_functions`
    yields NaN on Keras 3. Raises the converter's exception."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "float32":
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
    with quiet_fds(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.convert()


class TFLiteRunner:
    """A `.tflite` flatbuffer run in LiteRT's interpreter (`NUM_THREADS` threads), int8
    inputs/outputs (de)quantized; the runner interface of `measure.score`."""

    def __init__(self, content: bytes):
        from ai_edge_litert.interpreter import Interpreter

        with quiet_fds():
            self.interpreter = Interpreter(model_content=content, num_threads=NUM_THREADS)
        self.content = content
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch: int | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for one batch `x` (float32)."""
        if self.batch != len(x):
            shape = [len(x), *self.input["shape"][1:]]
            self.interpreter.resize_tensor_input(self.input["index"], shape)
            with quiet_fds():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
                self.interpreter.allocate_tensors()
            self.batch = len(x)
        if self.input["dtype"] in (np.int8, np.uint8):
            scale, zero = self.input["quantization"]
            info = np.iinfo(self.input["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        self.interpreter.set_tensor(self.input["index"], x.astype(self.input["dtype"]))
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output["index"])
        if self.output["dtype"] in (np.int8, np.uint8):
            scale, zero = self.output["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return np.asarray(y, np.float32)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for a whole split, `PREDICT_BATCH` rows per call."""
        return np.concatenate(
            [self(x[i : i + PREDICT_BATCH]) for i in range(0, len(x), PREDICT_BATCH)]
        )

    def counts(self) -> dict[str, int | None]:
        """Parameters, non-zero parameters and FLOPs read from the flatbuffer (None if its op
        layout is not one `tflite_stats` parses: sizes and scores still stand)."""
        try:
            return tflite_stats(self.content)
        except Exception:
            return {"params": None, "nonzero_params": None, "flops": None}

    def latency(self, sample: np.ndarray, cfg) -> dict[str, float]:
        """`measure.time_calls` on the interpreter; `cfg` is a `Measure` section."""
        from leanml.measure import time_calls

        return time_calls(self, sample, warmup=cfg.warmup, runs=cfg.runs, batch_size=cfg.batch_size)


def tflite_stats(content: bytes) -> dict[str, int]:
    """Parameters, non-zero parameters and FLOPs of a TFLite flatbuffer, read from its ops.

    Counts the weight and bias tensors of FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D (through
    a DEQUANTIZE when weights are stored as float16 or int8), with the same FLOP convention as
    `measure.flops`: 2 × MACs plus the bias additions, for one sample.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    ops = schema.BuiltinOperator
    dtypes = {
        schema.TensorType.FLOAT32: np.float32,
        schema.TensorType.FLOAT16: np.float16,
        schema.TensorType.INT32: np.int32,
        schema.TensorType.INT8: np.int8,
        schema.TensorType.UINT8: np.uint8,
        schema.TensorType.INT16: np.int16,
        schema.TensorType.INT64: np.int64,
    }
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    graph = model.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    producer = {out: op for op in graph.operators for out in (op.outputs or [])}

    def constant(index: int):
        tensor = graph.tensors[index]
        data = model.buffers[tensor.buffer].data if tensor.buffer < len(model.buffers) else None
        if data is not None and len(data):
            return np.frombuffer(bytes(bytearray(data)), dtypes.get(tensor.type, np.uint8))
        op = producer.get(index)
        if op is not None and codes[op.opcodeIndex] == ops.DEQUANTIZE:
            return constant(op.inputs[0])
        return None

    params = nonzero = flops = 0
    kinds = (ops.FULLY_CONNECTED, ops.CONV_2D, ops.DEPTHWISE_CONV_2D)
    for op in graph.operators:
        code = codes[op.opcodeIndex]
        if code not in kinds:
            continue
        inputs = list(op.inputs)
        weights = [constant(i) for i in inputs[1:3] if i >= 0]
        for w in weights:
            if w is not None:
                params += int(w.size)
                nonzero += int(np.count_nonzero(w))
        has_bias = len(inputs) > 2 and inputs[2] >= 0
        w_shape = list(graph.tensors[inputs[1]].shape)
        out_shape = list(graph.tensors[op.outputs[0]].shape)
        if code == ops.FULLY_CONNECTED:
            units, fan_in = w_shape
            positions = math.prod(out_shape[1:-1]) if len(out_shape) > 2 else 1
            flops += positions * (2 * fan_in * units + (units if has_bias else 0))
        elif code == ops.CONV_2D:
            out_c, kh, kw, in_c = w_shape
            positions = math.prod(out_shape[1:-1])
            flops += positions * out_c * (2 * kh * kw * in_c + (1 if has_bias else 0))
        else:
            _, kh, kw, channels = w_shape
            positions = math.prod(out_shape[1:-1])
            flops += positions * channels * (2 * kh * kw + (1 if has_bias else 0))
    return {"params": params, "nonzero_params": nonzero, "flops": int(flops)}
