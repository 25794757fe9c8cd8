"""Entropy coding of the `.packed` format: Huffman, gap coding and per-stream codecs decode to
exactly what was encoded, and a whole model decodes to the model that was scored, bit for bit."""

from __future__ import annotations

import gzip

import keras
import numpy as np
import pytest

from leanml.compress import entropy
from leanml.compress.encode import MAGIC, PREFIX, decode, encode
from leanml.compress.kmeans import cluster_tensor
from leanml.compress.ptq import quantize_kernels

SEEDS = range(6)


def _streams(seed: int) -> list[tuple[np.ndarray, int]]:
    """Symbol streams with their alphabet: uniform, skewed (geometric), one symbol, empty."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    return [
        (rng.integers(0, 16, n), 16),
        (np.minimum(rng.geometric(0.35, n) - 1, 255), 256),
        (np.full(n, int(rng.integers(0, 8))), 8),
        (np.zeros(0, np.int64), 4),
        (rng.integers(0, 2, n), 2),
    ]


@pytest.mark.parametrize("seed", SEEDS)
def test_huffman_round_trip(seed):
    for symbols, alphabet in _streams(seed):
        blob = entropy.huffman_encode(symbols, alphabet)
        assert np.array_equal(entropy.huffman_decode(blob, symbols.size), symbols)


def test_huffman_is_near_entropy_and_lone_symbols_are_free():
    rng = np.random.default_rng(0)
    skewed = np.minimum(rng.geometric(0.5, 20000) - 1, 15)
    p = np.bincount(skewed, minlength=16) / skewed.size
    h = -np.sum(p[p > 0] * np.log2(p[p > 0]))
    bits = 8 * len(entropy.huffman_encode(skewed, 16))
    assert h * skewed.size <= bits <= (h + 0.1) * skewed.size + 16 + 5 * 16 + 8
    assert bits < 0.6 * 4 * skewed.size  # far below the fixed 4 bits a symbol
    # one symbol: only the table (16 + 5·8 bits) is stored, whatever the count
    assert len(entropy.huffman_encode(np.full(10000, 3), 8)) == 7


def test_canonical_codes_are_prefix_free_from_lengths_only():
    lengths = entropy.huffman_lengths(np.array([40, 0, 3, 3, 10, 1, 1]))
    assert lengths[1] == 0 and np.sum(2.0 ** -lengths[lengths > 0]) == pytest.approx(1.0)
    codes = entropy.canonical_codes(lengths)
    words = [format(int(codes[s]), f"0{lengths[s]}b") for s in np.flatnonzero(lengths)]
    assert not any(a != b and b.startswith(a) for a in words for b in words)


@pytest.mark.parametrize("seed", SEEDS)
def test_position_codings_round_trip(seed):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 5000))
    masks = [
        rng.random(size) < rng.uniform(0.01, 0.99),
        np.zeros(size, bool),
        np.ones(size, bool),
        np.arange(size) % 128 >= 100,  # runs, as dead input pixels make in a kernel
    ]
    for mask in masks:
        candidates = entropy.position_candidates(mask)
        assert "mask" in candidates and (mask.sum() == 0 or "classgap" in candidates)
        for scheme, blob in candidates.items():
            for codec, (compress, _) in entropy.CODECS.items():
                back = entropy.unwrap(codec, compress(blob))
                decoded = entropy.decode_positions(scheme, back, size, int(mask.sum()))
                assert np.array_equal(decoded, mask), (scheme, codec)


def test_gap_coding_beats_the_bitmask_when_sparse():
    mask = np.random.default_rng(1).random(9472) < 0.1
    candidates = entropy.position_candidates(mask)
    p = 0.1
    bound = 9472 * -(p * np.log2(p) + (1 - p) * np.log2(1 - p)) / 8  # the entropy, in bytes
    best = min(len(b) for k, b in candidates.items() if k != "mask")
    assert best < 0.55 * len(candidates["mask"]) and best < 1.1 * bound
    assert entropy.smallest(candidates)[0] != "mask"


def test_unknown_codings_are_refused():
    with pytest.raises(ValueError, match="unknown codec 'zstd'"):
        entropy.unwrap("zstd", b"")
    with pytest.raises(ValueError, match="unknown position coding 'runs'"):
        entropy.decode_positions("runs", b"", 8, 1)
    with pytest.raises(ValueError, match="ends early"):
        entropy.huffman_decode(entropy.huffman_encode(np.arange(4), 4)[:2], 4)


# --- whole models ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    m = keras.Sequential(
        [
            keras.Input((8, 8, 1), name="cnn_input"),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(24, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="cnn",
    )
    weights = m.get_weights()
    for w in weights:  # prune half of every kernel: sparse positions get exercised
        if w.ndim > 1:
            w[np.abs(w) < np.median(np.abs(w))] = 0
    m.set_weights(weights)
    return m


def _same(a: keras.Model, b: keras.Model) -> None:
    for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
        assert x.dtype == y.dtype and np.array_equal(x, y)


@pytest.mark.parametrize("entropy_coded", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
def test_models_decode_bit_for_bit(model, tmp_path, entropy_coded, sparse):
    floats = encode(model, tmp_path / "f.packed", sparse=sparse, entropy_coded=entropy_coded)
    _same(decode(floats), model)
    for per_channel, symmetric in [(True, True), (False, False)]:
        small, q = quantize_kernels(model, 3, per_channel, symmetric)
        path = encode(small, tmp_path / "q.packed", q, sparse=sparse, entropy_coded=entropy_coded)
        _same(decode(path), small)
    clustered = keras.Sequential.from_config(model.get_config())
    weights, tensors = model.get_weights(), {}
    for i, w in enumerate(weights):
        if w.ndim > 1:
            tensors[i] = cluster_tensor(w, 2, "kmeans++", 0, sparse=True)
            tensors[i].codebook = tensors[i].codebook.astype(np.float16).astype(np.float32)
            weights[i] = tensors[i].dequantize()
    clustered.set_weights(weights)
    path = encode(clustered, tmp_path / "c.packed", tensors, sparse, entropy_coded)
    back = decode(path)
    _same(back, clustered)
    for i in tensors:  # 4 shared values plus the pruned zeros
        assert len(np.unique(back.get_weights()[i])) == 5


def test_entropy_coding_is_smaller_deterministic_and_versioned(model, tmp_path):
    small, q = quantize_kernels(model, 4, True, True)
    plain = encode(small, tmp_path / "plain.packed", q, sparse=True)
    coded = encode(small, tmp_path / "coded.packed", q, sparse=True, entropy_coded=True)
    again = encode(small, tmp_path / "again.packed", q, sparse=True, entropy_coded=True)
    assert coded.stat().st_size < plain.stat().st_size
    assert coded.read_bytes() == again.read_bytes()
    gz = len(gzip.compress(coded.read_bytes(), 9, mtime=0))
    assert gz < len(gzip.compress(plain.read_bytes(), 9, mtime=0))
    blob = coded.read_bytes()
    assert blob[:4] == MAGIC
    future = tmp_path / "future.packed"
    future.write_bytes(blob[:4] + bytes([9]) + blob[5:])
    with pytest.raises(ValueError, match="packed format version 9; this leanml reads 2"):
        decode(future)
    old = tmp_path / "old.packed"
    old.write_bytes(b"LEANMLPK" + blob[PREFIX.size :])
    with pytest.raises(ValueError, match="format version 1; re-run its stage"):
        decode(old)
