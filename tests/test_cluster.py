"""Weight clustering (k-means weight sharing): exact cluster counts, centroid gradients that are
sums over members, zeros kept, codebook + indices through the file, reproducible variants."""

from __future__ import annotations

import json
import zipfile

import keras
import numpy as np
import pytest

from leanml import compress, models
from leanml.compress.cluster import ClusterDense, cluster_model, strip_clusters
from leanml.compress.encode import decode
from leanml.compress.kmeans import INITS, cluster_tensor, kmeans_1d
from leanml.errors import LeanmlError
from leanml.params import Fit, ModelSpec, parse
from leanml.train import fit_model, seed_everything

TINY_FT = {"fine_tune": {"learning_rate": 0.002}}


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("seed", range(4))
def test_kmeans_has_exactly_k_nonempty_clusters(init, seed):
    rng = np.random.default_rng(seed)
    samples = [
        rng.normal(0, 0.1, 2000),
        np.concatenate([rng.normal(-1, 0.01, 500), rng.normal(1, 0.01, 20), [50.0]]),
        np.repeat(rng.normal(0, 1, 40), 25),  # heavy duplicates: 40 distinct values
    ]
    for values in samples:
        for k in (2, 8, 16):
            centroids, labels = kmeans_1d(values, k, init, seed)
            assert len(centroids) == k and np.all(np.diff(centroids) > 0)
            assert np.all(np.bincount(labels, minlength=k) > 0)
            again = kmeans_1d(values, k, init, seed)
            assert np.array_equal(again[0], centroids) and np.array_equal(again[1], labels)
    # fewer distinct values than clusters: one cluster each, exact
    centroids, labels = kmeans_1d(np.array([0.5, -1.0, 0.5, 2.0]), 8, init, seed)
    assert np.array_equal(centroids, [-1.0, 0.5, 2.0]) and np.array_equal(labels, [1, 0, 1, 2])


def test_kmeans_lowers_the_error_of_its_initialisation():
    values = np.random.default_rng(0).laplace(0, 0.05, 5000)
    for init in INITS:
        c = cluster_tensor(values.reshape(100, 50), 3, init, 0, sparse=False)
        err = np.mean((c.dequantize().reshape(-1) - values) ** 2)
        uniform = np.linspace(values.min(), values.max(), 8)
        nearest = uniform[np.argmin(np.abs(values[:, None] - uniform[None]), axis=1)]
        assert err < np.mean((nearest - values) ** 2)  # better than 8 evenly spaced levels


def test_cluster_tensor_keeps_zeros_out():
    w = np.random.default_rng(2).normal(0, 1, (30, 20)).astype(np.float32)
    w[np.abs(w) < 1.0] = 0
    c = cluster_tensor(w, 2, "linear", 0, sparse=True)
    back = c.dequantize()
    assert np.array_equal(back == 0, w == 0) and len(np.unique(back[back != 0])) == 4


@pytest.fixture(scope="module")
def mlp(tiny_splits):
    seed_everything(0)
    spec = ModelSpec.model_validate({"kind": "mlp", "mlp": {"hidden_units": [24]}})
    model = models.build(spec, tiny_splits.input_shape, tiny_splits.n_classes)
    fit_model(model, tiny_splits, Fit(epochs=8, early_stopping_patience=0), progress=False)
    return model


def test_centroid_gradient_is_the_sum_over_members(mlp, tiny_splits):
    import tensorflow as tf

    shared = cluster_model(mlp, 2, "linear", 0)
    layer = next(layer for layer in shared.layers if isinstance(layer, ClusterDense))
    x, y = tiny_splits.train.x[:64], tiny_splits.train.y[:64]

    def loss(model):
        probs = model(x, training=False)
        return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, probs))

    with tf.GradientTape() as tape:
        value = loss(shared)
    g_centroids = np.asarray(tape.gradient(value, layer.centroids))
    # the same model with plain layers holding codebook[indices]: gradient per kernel entry
    plain, _ = strip_clusters(shared, half=False)
    kernel = plain.layers[shared.layers.index(layer)].kernel
    with tf.GradientTape() as tape:
        value = loss(plain)
    g_kernel = np.asarray(tape.gradient(value, kernel))
    expected = np.bincount(
        np.asarray(layer.indices).reshape(-1), weights=g_kernel.reshape(-1), minlength=4
    )
    assert np.allclose(g_centroids, expected, rtol=1e-4, atol=1e-7)
    assert [w.name for w in layer.trainable_weights] == ["bias", "centroids"]


@pytest.mark.slow
@pytest.mark.parametrize("sparse", [False, True])
def test_fine_tuned_clusters_hold_exactly_2_to_the_bits_values(mlp, tiny_splits, sparse, tmp_path):
    from leanml.compress.base import clone, fine_tune
    from leanml.compress.ptq import save_quantized
    from leanml.params import FineTune

    start = clone(mlp)
    if sparse:  # a pruned model: zeros are no cluster and stay zero through fine-tuning
        weights = start.get_weights()
        for w in weights:
            if w.ndim == 2:
                w[np.abs(w) < np.quantile(np.abs(w), 0.7)] = 0
        start.set_weights(weights)
    shared = cluster_model(start, 3, "kmeans++", 0)
    before = [
        np.asarray(layer.centroids).copy() for layer in shared.layers if hasattr(layer, "centroids")
    ]
    fine_tune(shared, tiny_splits, FineTune(learning_rate=0.002), 2, teacher=None)
    after = [np.asarray(layer.centroids) for layer in shared.layers if hasattr(layer, "centroids")]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    model, tensors = strip_clusters(shared)
    kernels = [np.asarray(layer.kernel) for layer in model.layers if hasattr(layer, "kernel")]
    original = [np.asarray(layer.kernel) for layer in start.layers if hasattr(layer, "kernel")]
    for k, o in zip(kernels, original, strict=True):
        assert len(np.unique(k[k != 0])) == 8  # exactly 2^bits shared values per layer
        assert np.array_equal(k == 0, o == 0)  # zeros stayed zero (and no survivor became one)
    variant = save_quantized({"name": "c3"}, model, tensors, tmp_path, sparsity=True)
    back = decode(variant.artifact)
    for a, b in zip(back.get_weights(), model.get_weights(), strict=True):
        assert np.array_equal(a, b)  # codebook + indices round-trip to the identical kernel
    # the saved candidate holds plain Keras layers only: nothing of the method to load it
    with zipfile.ZipFile(variant.model_file) as z:
        config = json.loads(z.read("config.json"))
    classes = {layer["class_name"] for layer in config["config"]["layers"]}
    assert classes <= {"InputLayer", "Flatten", "Dense"}


@pytest.mark.slow
def test_combined_kmeans_is_byte_reproducible_and_decodes_to_the_scored_model(
    mlp, tiny_splits, tmp_path
):
    cfg = parse(
        {
            "compress": {
                **TINY_FT,
                "combined": {
                    "sparsities": [0.8], "bits": [3], "epochs": 1, "quantizer": "kmeans",
                    "quantize_epochs": 1, "scope": "per_layer",  # each layer at 80 %, below
                },
            }
        }
    )  # fmt: skip
    method = compress.get("combined", cfg)
    runs = []
    for out in ("a", "b"):
        seed_everything(method.seed)
        (setting,) = method.settings()
        runs.append(method.apply(mlp, tiny_splits, setting, tmp_path / out))
    first, second = runs
    assert first.name == "s80_c3" and first.setting["quantizer"] == "kmeans"
    assert first.artifact.read_bytes() == second.artifact.read_bytes()
    assert first.model_file.read_bytes() == second.model_file.read_bytes()
    back = decode(first.artifact)
    for a, b in zip(back.get_weights(), first.keras_model.get_weights(), strict=True):
        assert np.array_equal(a, b)
    probs = first.predict(tiny_splits.test.x)
    assert np.array_equal(back.predict(tiny_splits.test.x, verbose=0), probs)
    for layer in first.keras_model.layers:
        if hasattr(layer, "kernel"):
            k = np.asarray(layer.kernel)
            assert len(np.unique(k[k != 0])) == 8
            assert np.mean(k == 0) == pytest.approx(0.8, abs=0.01)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"cluster": {"bits": [3, 9]}}, "compress.cluster.bits[1]: must be a list of integers from 1 to 8, got 9"),
        ({"cluster": {"init": "random"}}, "compress.cluster.init: must be one of 'linear', 'density', 'kmeans++', got 'random'"),
        ({"cluster": {"epochs": -1}}, "compress.cluster.epochs: must be an integer ≥ 0, got -1"),
        ({"combined": {"quantizer": "lloyd"}}, "compress.combined.quantizer: must be one of 'uniform', 'kmeans', got 'lloyd'"),
        (
            {"combined": {"quantizer": "kmeans", "bits": [4, 12]}},
            "compress.combined.bits[1]: must be at most 8 when compress.combined.quantizer is 'kmeans', got 12",
        ),
    ],
)  # fmt: skip
def test_params_errors_are_one_line(raw, expected):
    with pytest.raises(LeanmlError) as err:
        parse({"compress": raw})
    assert expected in str(err.value)
    assert len(str(err.value).splitlines()) == 1


def test_cluster_refuses_what_it_cannot_share():
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.DepthwiseConv2D(3), keras.layers.Flatten()]
    )
    with pytest.raises(LeanmlError, match="layer 'depthwise_conv2d.*' \\(DepthwiseConv2D\\)"):
        cluster_model(model, 2, "linear", 0)
    functional = keras.Model(model.inputs, model.outputs)
    with pytest.raises(LeanmlError, match="compress.cluster: the baseline"):
        cluster_model(functional, 2, "linear", 0)
