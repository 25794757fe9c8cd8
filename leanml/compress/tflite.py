"""TFLite post-training quantization: the baseline converted to a `.tflite` flatbuffer as
dynamic-range int8, float16 or full-integer int8 (calibrated on train samples)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np

from leanml.compress.base import Method, Variant
from leanml.data import Splits
from leanml.errors import LeanmlError
from leanml.io import atomic_write_bytes
from leanml.measure import count_params, flops
from leanml.tflite import TFLiteRunner, quiet_fds


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
        with quiet_fds(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return converter.convert()
    except Exception as exc:
        raise LeanmlError(
            f"compress.quantize.tflite: the baseline could not be converted to TFLite {mode} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None


def apply(
    method: Method, baseline: keras.Model, data: Splits, setting: dict[str, Any], out_dir: Path
) -> Variant:
    """The `tflite` kind of `Quantize`: convert, write the flatbuffer (its own artifact)."""
    name = setting["name"]
    calibration = data.train.x[: method.cfg.tflite.calibration_samples]
    content = to_tflite(baseline, setting["mode"], calibration)
    path = out_dir / f"{name}.tflite"
    atomic_write_bytes(path, content)
    # The results table reports the converted model's parameters and FLOPs (the baseline's: a
    # conversion keeps its weights and operations), not counts read back from the flatbuffer,
    # where int8 rounding turns some small weights into zeros.
    counts = {**count_params(baseline), "flops": flops(baseline)}
    return Variant(name, setting, path, path, TFLiteRunner(content), counts=counts)
