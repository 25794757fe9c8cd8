"""TFLite post-training quantization: the baseline converted to a `.tflite` flatbuffer as
dynamic-range int8, float16 or full-integer int8 (calibrated on train samples)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from leanml.compress.base import Method, Variant
from leanml.data import Splits
from leanml.errors import LeanmlError
from leanml.io import atomic_write_bytes
from leanml.measure import count_params, flops
from leanml.tflite import TFLiteRunner, convert


def to_tflite(model: keras.Model, mode: str, calibration: np.ndarray) -> bytes:
    """`leanml.tflite.convert`, its failure said as a params error."""
    try:
        return convert(model, mode, calibration)
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
