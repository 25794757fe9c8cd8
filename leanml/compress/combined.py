"""Deep-Compression style: prune (gradual, masks fixed) → fine-tune → quantize the surviving
weights to k bits, uniformly (symmetric, per channel) or by k-means weight sharing (2^bits
shared values per kernel, `cluster.py`) → optionally fine-tune the quantized model with zeros
kept → encode sparse and entropy coded (gap coded positions + Huffman coded codes, `encode.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from leanml.compress.base import (
    WEIGHTED,
    Method,
    Variant,
    fine_tune,
)
from leanml.compress.cluster import cluster_model, strip_clusters
from leanml.compress.prune import prune_unstructured
from leanml.compress.ptq import quantize_kernels, save_quantized
from leanml.compress.qat import qat_model, strip_qat
from leanml.data import Splits


class KeepZeros(keras.callbacks.Callback):
    """Re-zero the pruned kernel entries after every step (the optimizer's momentum would
    otherwise revive them), so quantization-aware fine-tuning keeps the sparsity exact."""

    def __init__(self, model: keras.Model):
        super().__init__()
        self.layers = [layer for layer in model.layers if isinstance(layer, WEIGHTED)]
        self.masks = [np.asarray(layer.kernel) != 0 for layer in self.layers]

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        for layer, mask in zip(self.layers, self.masks, strict=True):
            layer.kernel.assign(np.asarray(layer.kernel) * mask)


class Combined(Method):
    name = "combined"
    columns = (
        "sparsity",
        "bits",
        "quantizer",
        "criterion",
        "scope",
        "granularity",
        "sparsity_achieved",
    )

    def settings(self) -> list[dict[str, Any]]:
        tag = {"uniform": "k", "kmeans": "c"}[self.cfg.quantizer]  # s90_k4: uniform; s90_c4
        return [
            {
                "name": f"s{round(100 * s)}_{tag}{bits}",
                "sparsity": s,
                "bits": bits,
                "quantizer": self.cfg.quantizer,
                "criterion": self.cfg.criterion,
                "scope": self.cfg.scope,
                "granularity": self.cfg.granularity if self.cfg.quantizer == "uniform" else "",
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
        if setting["quantizer"] == "kmeans":
            # Zeros are left out of the clusters and stay zero; codebooks and biases float16.
            shared = cluster_model(pruned, setting["bits"], cfg.init, self.seed, "combined")
            fine_tune(shared, data, self.fine_tune, cfg.quantize_epochs, teacher=baseline)
            model, quantized = strip_clusters(shared)
        else:
            model, quantized = self._uniform(pruned, data, setting, baseline)
        return save_quantized(setting, model, quantized, out_dir, sparsity=True)

    def _uniform(
        self, pruned: keras.Model, data: Splits, setting: dict[str, Any], teacher: keras.Model
    ):
        # Symmetric codes map zero to zero, so quantizing keeps every pruned weight pruned.
        per_channel = setting["granularity"] == "per_channel"
        if self.cfg.quantize_epochs > 0:
            trainable = qat_model(pruned, setting["bits"], per_channel, symmetric=True)
            keep = KeepZeros(trainable)
            fine_tune(
                trainable, data, self.fine_tune, self.cfg.quantize_epochs, [keep], teacher=teacher
            )
            model, quantized = strip_qat(trainable)
        else:
            model, quantized = quantize_kernels(pruned, setting["bits"], per_channel, True)
        # Biases are stored as float16 in the packed file; the Keras model holds the same values.
        weights = model.get_weights()
        for i, w in enumerate(weights):
            if i not in quantized:
                weights[i] = w.astype(np.float16).astype(np.float32)
        model.set_weights(weights)
        return model, quantized
