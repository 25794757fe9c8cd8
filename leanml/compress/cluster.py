"""Weight clustering / sharing (Deep Compression stage 2, Han et al. 2016), Keras 3 native.

Every Dense/Conv2D kernel is clustered by 1-D k-means into 2^bits shared values (`kmeans.py`),
then fine-tuned through twins whose kernel is gather(centroids, indices) · keep: the indices are
fixed, only the centroids (and biases) train, and the gradient of a centroid is the sum of its
members' gradients (what the gather's backward pass computes). Stripped back to plain layers
holding codebook[indices]; stored as k-bit indices (entropy coded) plus a float codebook.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from leanml.compress.base import (
    Method,
    Variant,
    copy_layer,
    fine_tune,
    rebuild,
    sequential_layers,
)
from leanml.compress.kmeans import CTensor, cluster_tensor
from leanml.compress.ptq import save_quantized
from leanml.data import Splits
from leanml.errors import LeanmlError


class _Shared:
    """What the two twins share: the fixed indices and mask, the trainable centroids."""

    def __init__(self, *args, clusters: int = 16, **kw):
        super().__init__(*args, **kw)
        self.clusters = clusters

    def build(self, input_shape):
        super().build(input_shape)
        self._add_sharing(self.clusters)

    def get_config(self) -> dict:
        return {**super().get_config(), "clusters": self.clusters}

    def _add_sharing(self, clusters: int) -> None:
        self._kernel.trainable = False  # the kernel is derived from the codebook, not trained
        self.centroids = self.add_weight(
            shape=(clusters,), initializer="zeros", name="centroids", trainable=True
        )
        shape = tuple(self._kernel.shape)
        self.indices = self.add_weight(
            shape=shape, initializer="zeros", dtype="int32", name="indices", trainable=False
        )
        self.keep = self.add_weight(shape=shape, initializer="ones", name="keep", trainable=False)

    def shared_kernel(self):
        return keras.ops.take(self.centroids, self.indices) * self.keep


@keras.saving.register_keras_serializable(package="leanml")
class ClusterDense(_Shared, keras.layers.Dense):
    """Dense whose kernel is codebook[indices] (zero where pruned); only centroids train."""

    def call(self, inputs, training=None):
        x = keras.ops.matmul(inputs, self.shared_kernel())
        if self.use_bias:
            x = keras.ops.add(x, self.bias)
        return self.activation(x) if self.activation is not None else x


@keras.saving.register_keras_serializable(package="leanml")
class ClusterConv2D(_Shared, keras.layers.Conv2D):
    """Conv2D whose kernel is codebook[indices] (zero where pruned); only centroids train."""

    def call(self, inputs):
        x = self.convolution_op(inputs, self.shared_kernel())
        if self.use_bias:
            shape = (1,) * (len(x.shape) - 1) + (self.filters,)
            x = keras.ops.add(x, keras.ops.reshape(self.bias, shape))
        return self.activation(x) if self.activation is not None else x


TWINS = {keras.layers.Dense: ClusterDense, keras.layers.Conv2D: ClusterConv2D}
PLAIN = {twin: plain for plain, twin in TWINS.items()}


def cluster_model(
    model: keras.Model, bits: int | Sequence[int], init: str, seed: int, method: str = "cluster"
) -> keras.Model:
    """`model` with each Dense/Conv2D kernel k-means clustered (exact zeros left out and kept
    zero) and the layer swapped for its shared-weight twin, ready to fine-tune the centroids.

    `bits`: 2^bits clusters in every kernel, or one width per Dense/Conv2D layer in order."""
    layers = sequential_layers(model, method)
    n_kernels = sum(type(layer) in TWINS for layer in layers)
    widths = iter([bits] * n_kernels if isinstance(bits, int) else list(bits))
    if not isinstance(bits, int) and len(bits) != n_kernels:
        raise LeanmlError(
            f"compress.{method}: {len(bits)} per-layer bit widths for {n_kernels} Dense/Conv2D "
            "layers"
        )
    out, shared = [], []
    for layer in layers:
        twin = TWINS.get(type(layer))
        unsupported = twin is None and getattr(layer, "kernel", None) is not None
        if unsupported or getattr(layer, "data_format", "channels_last") != "channels_last":
            raise LeanmlError(
                f"compress.{method}: layer {layer.name!r} ({type(layer).__name__}) cannot be "
                "clustered; weight sharing supports Dense and channels_last Conv2D"
            )
        if twin is None:
            out.append((copy_layer(layer), layer.get_weights() or None))
            continue
        c = cluster_tensor(np.asarray(layer.kernel), next(widths), init, seed, sparse=True)
        new = twin(**layer.get_config(), clusters=len(c.codebook))
        out.append((new, None))
        shared.append((new, layer, c))
    clustered = rebuild(model, out)
    for new, old, c in shared:
        new._kernel.assign(c.dequantize())
        if new.use_bias:
            new.bias.assign(np.asarray(old.bias))
        new.centroids.assign(c.codebook)
        new.indices.assign(c.indices.astype(np.int32))
        new.keep.assign(np.ones(c.indices.shape, np.float32) if c.keep is None else c.keep)
    return clustered


def strip_clusters(model: keras.Model, half: bool = True) -> tuple[keras.Model, dict[int, CTensor]]:
    """Back to plain Dense/Conv2D holding codebook[indices], and the clustered kernels by weight
    index (for packing). With `half`, codebooks and biases are rounded to float16, so the
    packed file stores them in 2 bytes and still decodes to exactly this model."""

    def rounded(w: np.ndarray) -> np.ndarray:
        return w.astype(np.float16).astype(np.float32) if half else w.astype(np.float32)

    out, tensors = [], {}
    for layer in model.layers:
        plain = PLAIN.get(type(layer))
        if plain is None:
            out.append((copy_layer(layer), layer.get_weights() or None))
            continue
        config = {k: v for k, v in layer.get_config().items() if k != "clusters"}
        keep = np.asarray(layer.keep) > 0
        c = CTensor(
            np.asarray(layer.indices).astype(np.uint32),
            rounded(np.asarray(layer.centroids)),
            max(1, int(np.ceil(np.log2(max(layer.clusters, 2))))),
            None if keep.all() else keep,
        )
        weights = [c.dequantize()] + ([rounded(np.asarray(layer.bias))] if layer.use_bias else [])
        new = plain.from_config(config)
        out.append((new, weights))
        tensors[id(new)] = c
    stripped = rebuild(model, out)
    by_index = {}
    for i, var in enumerate(stripped.weights):
        owner = next((x for x in stripped.layers if id(x) in tensors and var is x.kernel), None)
        if owner is not None:
            by_index[i] = tensors[id(owner)]
    return stripped, by_index


class Cluster(Method):
    name = "cluster"
    columns = ("bits", "init", "sparsity_achieved")

    def settings(self) -> list[dict[str, Any]]:
        init = self.cfg.init
        short = {"linear": "lin", "density": "den", "kmeans++": "kpp"}[init]
        return [{"name": f"c{bits}_{short}", "bits": bits, "init": init} for bits in self.cfg.bits]

    def apply(
        self, baseline: keras.Model, data: Splits, setting: dict[str, Any], out_dir: Path
    ) -> Variant:
        shared = cluster_model(baseline, setting["bits"], setting["init"], self.seed)
        fine_tune(shared, data, self.fine_tune, self.cfg.epochs, teacher=baseline)
        model, tensors = strip_clusters(shared)
        return save_quantized(setting, model, tensors, out_dir, sparsity=True)
