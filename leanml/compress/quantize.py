"""Quantization: the `Quantize` method's sweep, each kind of setting applied by its own file:
`tflite.py` (TFLite post-training), `ptq.py` (uniform k-bit post-training), `qat.py`
(quantization-aware training).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

from leanml.compress import ptq, qat, tflite
from leanml.compress.base import Method, Variant
from leanml.data import Splits

# Each kind of setting, and the file of the technique that applies it.
TECHNIQUES = {"tflite": tflite.apply, "ptq": ptq.apply, "qat": qat.apply}


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
        return TECHNIQUES[setting["kind"]](self, baseline, data, setting, out_dir)
