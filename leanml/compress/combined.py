"""Deep-Compression style: prune (gradual, masks fixed) → fine-tune → quantize the surviving
weights to k bits → encode sparse (bitmask + packed codes + per-channel scales)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from leanml.compress.base import Method, Variant, keras_variant, kernel_sparsity
from leanml.compress.encode import encode
from leanml.compress.prune import prune_unstructured
from leanml.compress.ptq import quantize_kernels
from leanml.data import Splits
from leanml.measure import save_model


class Combined(Method):
    name = "combined"
    columns = ("sparsity", "bits", "criterion", "scope", "granularity", "sparsity_achieved")

    def settings(self) -> list[dict[str, Any]]:
        return [
            {
                "name": f"s{round(100 * s)}_k{bits}",
                "sparsity": s,
                "bits": bits,
                "criterion": self.cfg.criterion,
                "scope": self.cfg.scope,
                "granularity": self.cfg.granularity,
            }
            for s in self.cfg.sparsities
            for bits in self.cfg.bits
        ]

    def apply(
        self, baseline: keras.Model, data: Splits, setting: dict[str, Any], out_dir: Path
    ) -> Variant:
        cfg = self.cfg
        pruned = prune_unstructured(
            baseline,
            data,
            sparsity=setting["sparsity"],
            criterion=setting["criterion"],
            scope=cfg.scope,
            epochs=cfg.epochs,
            ramp=0.6,
            frequency=10,
            fine=self.fine_tune,
        )
        # Symmetric codes map zero to zero, so quantizing keeps every pruned weight pruned.
        per_channel = setting["granularity"] == "per_channel"
        model, quantized = quantize_kernels(pruned, setting["bits"], per_channel, symmetric=True)
        # Biases are stored as float16 in the packed file; the Keras model holds the same values.
        weights = model.get_weights()
        for i, w in enumerate(weights):
            if i not in quantized:
                weights[i] = w.astype(np.float16).astype(np.float32)
        model.set_weights(weights)
        name = setting["name"]
        model_file, artifact = out_dir / f"{name}.keras", out_dir / f"{name}.packed"
        save_model(model, model_file)
        encode(model, artifact, quantized=quantized, sparse=True, float_dtype="float16")
        setting = {**setting, "sparsity_achieved": kernel_sparsity(model)}
        return keras_variant(name, setting, model, model_file, artifact)
