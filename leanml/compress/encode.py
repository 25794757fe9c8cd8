"""A compact, loadable file for compressed Keras models: the saving is real bytes on disk.

Layout (format version 2): magic `LMPK`, the version byte, the header's codec and length, the
header (JSON: the model's Keras config without training-only settings, one entry per weight
tensor), then the payload: each tensor's streams in order. A tensor is stored dense or sparse
(its non-zero positions, then only those values), as floats (float16 where that is exact, else
float32), k-bit codes with their scales, or cluster indices with their codebook. With `entropy`,
every stream is stored the smallest of several ways (`entropy.py`: Huffman coded codes/indices,
gap coded positions, each optionally through raw DEFLATE or LZMA2) and its choice recorded in
the header; without it the layout is plain (bitmask, fixed-width codes). `decode` rebuilds the
Keras model with bit-identical weights, so the tests can check the file really is the model.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import keras
import numpy as np

from leanml.compress import entropy
from leanml.compress.entropy import pack_bits, unpack_bits
from leanml.compress.kmeans import CTensor
from leanml.compress.uniform import QTensor
from leanml.io import atomic_write_bytes

MAGIC = b"LMPK"
VERSION = 2
PREFIX = struct.Struct("<4sBBI")  # magic, version, header codec, header length
# The header may also be DEFLATE coded with a preset dictionary (zlib's zdict): the generic
# vocabulary of Keras layer configs and of the tensor entries (keys and enumerated values only:
# no layer sizes, shapes or names of any model, which a file must carry itself). It is part of
# format version 2 (the decoder holds the same bytes), so changing it means a new version.
HEADER_DICTIONARY = "".join(
    (
        '"kind":"kbit","bits":,"per_channel":true,"asym":true,"s":[["fixed","raw",',
        '["f32","raw",],["u16","raw",]["mask","raw",["rice2","raw",["rice3","raw",',
        '"class_name":"Conv2D","filters":,"kernel_size":[,"strides":[1,1],"padding":"same",',
        '"dilation_rate":[1,1],"groups":1,"class_name":"MaxPooling2D","pool_size":[',
        '"padding":"valid","class_name":"Dropout","rate":,"seed":null,"noise_shape":null},',
        '"activation":"linear","activation":"tanh","activation":"elu","activation":"softmax"',
        '{"model":{"module":"keras","class_name":"Sequential","config":{"name":"',
        '"layers":[{"module":"keras.layers","class_name":"InputLayer","config":',
        '{"batch_shape":[null,"dtype":"float32","sparse":false,"ragged":false,"name":"',
        '"optional":false},"registered_name":null},{"module":"keras.layers","class_name":',
        '"Flatten","config":{"name":"","data_format":"channels_last"},"registered_name":null,',
        '{"module":"keras.layers","class_name":"Dense","config":{"name":"',
        '","trainable":true,"dtype":{"module":"keras","class_name":"DTypePolicy","config":',
        '{"name":"float32"},"registered_name":null},"units":,"activation":"relu",',
        '"use_bias":true,"quantization_config":null},"registered_name":null,"build_config":',
        '{"input_shape":[null,"build_input_shape":[null,]},"registered_name":null,',
        '"build_config":{"input_shape":[null,]}},"tensors":[{"shape":[,"nnz":',
        '"kind":"cluster","bits":,"s":[["classgap","raw",],["huffman","raw",],["f16","raw",',
        ']]},{"shape":[],"kind":"float","s":[["f16","raw",',
    )
).encode()
HEADER_CODECS = [*entropy.CODECS, "deflate-dict"]


def _header_candidates(header: bytes) -> dict[str, bytes]:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15, zdict=HEADER_DICTIONARY)
    out = {codec: compress(header) for codec, (compress, _) in entropy.CODECS.items()}
    out["deflate-dict"] = packer.compress(header) + packer.flush()
    return out


def _header_text(codec: str, data: bytes) -> bytes:
    if codec == "deflate-dict":
        return zlib.decompressobj(-15, zdict=HEADER_DICTIONARY).decompress(data)
    return entropy.unwrap(codec, data)


# Training-only settings: an inference file does not need them (deserializing uses defaults).
TRAINING_ONLY = {
    "kernel_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "bias_constraint",
    "compile_config",
}

__all__ = ["decode", "encode", "pack_bits", "unpack_bits"]


def _inference_config(tree):
    if isinstance(tree, dict):
        return {k: _inference_config(v) for k, v in tree.items() if k not in TRAINING_ONLY}
    if isinstance(tree, list):
        return [_inference_config(v) for v in tree]
    return tree


def _floats(values: np.ndarray) -> dict[str, bytes]:
    """Float values as float16 when that is exact (nothing is rounded here), else float32."""
    values = np.asarray(values, np.float32).reshape(-1)
    half = values.astype(np.float16)
    if np.array_equal(half.astype(np.float32), values, equal_nan=True):
        return {"f16": half.tobytes()}
    return {"f32": values.tobytes()}


def _tensor(
    weight: np.ndarray, q: QTensor | CTensor | None, sparse: bool
) -> tuple[dict, list[dict[str, bytes]]]:
    """The header entry and the stream candidates (scheme -> bytes) of one tensor."""
    values = q.dequantize() if q is not None else np.asarray(weight, np.float32)
    entry: dict = {"shape": list(values.shape)}
    streams: list[dict[str, bytes]] = []
    mask = (values != 0).reshape(-1)
    keep = slice(None)
    if sparse:
        entry["nnz"] = int(mask.sum())
        streams.append(entropy.position_candidates(mask))
        keep = mask
    if isinstance(q, CTensor):
        indices, codebook, bits = q.indices.reshape(-1), q.codebook, q.bits
        if not sparse and q.keep is not None:  # dense: zero becomes one more shared value
            indices = np.where(q.keep.reshape(-1), indices + 1, 0)
            codebook = np.concatenate([np.zeros(1, np.float32), codebook])
            bits = max(1, int(np.ceil(np.log2(codebook.size))))
        entry.update(kind="cluster", bits=bits)
        streams.append(entropy.symbol_candidates(indices[keep], bits))
        streams.append(_floats(codebook))
    elif isinstance(q, QTensor):
        entry.update(kind="kbit", bits=q.bits, per_channel=q.per_channel)
        streams.append(entropy.symbol_candidates(q.codes.reshape(-1)[keep], q.bits))
        streams.append(_floats(q.scale))
        if not q.symmetric:  # symmetric zero points are all 2^(bits-1) - 1: not stored
            entry["asym"] = True
            streams.append({"u16": q.zero.astype("<u2").reshape(-1).tobytes()})
    else:
        entry["kind"] = "float"
        streams.append(_floats(values.reshape(-1)[keep]))
    return entry, streams


def _store(candidates: dict[str, bytes], smallest: bool) -> tuple[list, bytes]:
    """([scheme, codec, length], bytes) of a stream: the smallest way, or the plain one."""
    if smallest:
        scheme, codec, blob = entropy.smallest(candidates)
    else:  # plain: the first candidate (bitmask, fixed-width codes, floats) as it is
        scheme, blob = next(iter(candidates.items()))
        codec = "raw"
    return [scheme, codec, len(blob)], blob


def encode(
    model: keras.Model,
    path: str | Path,
    quantized: dict[int, QTensor | CTensor] | None = None,
    sparse: bool = False,
    entropy_coded: bool = False,
) -> Path:
    """Write `model` to `path`: weight i from `quantized[i]` (k-bit codes or cluster indices)
    if given, else as floats. With `sparse`, a tensor with zeros is stored as its non-zero
    positions plus values where that is smaller than dense; with `entropy_coded`, every stream
    (and the header) takes the smallest of its codings."""
    quantized = quantized or {}
    entries, chunks = [], []
    for i, weight in enumerate(model.get_weights()):
        q = quantized.get(i)
        options = [_tensor(weight, q, False)]
        values = q.dequantize() if q is not None else weight
        if sparse and not np.all(values != 0):
            options.append(_tensor(weight, q, True))
        best = None
        for entry, streams in options:
            stored = [_store(s, entropy_coded) for s in streams]
            size = sum(len(blob) for _, blob in stored)
            if best is None or size < best[0]:
                best = (size, entry, stored)
        _, entry, stored = best
        entry["s"] = [spec for spec, _ in stored]
        chunks += [blob for _, blob in stored]
        entries.append(entry)
    header = json.dumps(
        {
            "model": _inference_config(keras.saving.serialize_keras_object(model)),
            "tensors": entries,
        },
        separators=(",", ":"),
    ).encode()
    codec = "raw"
    if entropy_coded:  # the smallest of the codecs; ties go to the first listed
        candidates = _header_candidates(header)
        codec = min(candidates, key=lambda c: len(candidates[c]))
        header = candidates[codec]
    prefix = PREFIX.pack(MAGIC, VERSION, HEADER_CODECS.index(codec), len(header))
    atomic_write_bytes(path, prefix + header + b"".join(chunks))
    return Path(path)


def _values(kind: str, entry: dict, streams: list[bytes], specs: list, count: int) -> np.ndarray:
    """The stored (non-zero, if sparse) values of one tensor, as float32."""

    def floats(blob: bytes, scheme: str) -> np.ndarray:
        return np.frombuffer(blob, {"f16": "<f2", "f32": "<f4"}[scheme]).astype(np.float32)

    if kind == "float":
        return floats(streams[0], specs[0][0])
    codes = entropy.decode_symbols(specs[0][0], streams[0], entry["bits"], count)
    if kind == "cluster":
        return floats(streams[1], specs[1][0])[codes]
    raise AssertionError(kind)


def decode(path: str | Path) -> keras.Model:
    """Rebuild the Keras model stored by `encode` (architecture from its config, safe mode)."""
    blob = Path(path).read_bytes()
    if blob.startswith(b"LEANMLPK"):
        raise ValueError(f"{path}: a packed model of format version 1; re-run its stage")
    if len(blob) < PREFIX.size or blob[:4] != MAGIC:
        raise ValueError(f"{path}: not a leanml packed model")
    _, version, codec, size = PREFIX.unpack_from(blob)
    if version != VERSION:
        raise ValueError(f"{path}: packed format version {version}; this leanml reads {VERSION}")
    start = PREFIX.size
    header = json.loads(_header_text(HEADER_CODECS[codec], blob[start : start + size]))
    at = start + size

    weights = []
    for entry in header["tensors"]:
        streams = []
        for _, stream_codec, length in entry["s"]:
            streams.append(entropy.unwrap(stream_codec, blob[at : at + length]))
            at += length
        specs = entry["s"]
        shape = tuple(entry["shape"])
        n = int(np.prod(shape))
        keep = None
        if "nnz" in entry:
            keep = entropy.decode_positions(specs[0][0], streams[0], n, entry["nnz"])
            streams, specs = streams[1:], specs[1:]
        count = n if keep is None else entry["nnz"]
        if entry["kind"] == "kbit":
            values = _kbit(entry, streams, specs, shape, keep, count)
        else:
            values = _values(entry["kind"], entry, streams, specs, count)
        if keep is not None:
            full = np.zeros(n, np.float32)
            full[keep] = values
            values = full
        weights.append(values.reshape(shape))
    model = keras.saving.deserialize_keras_object(header["model"], safe_mode=True)
    model.set_weights(weights)
    return model


def _kbit(entry: dict, streams: list[bytes], specs: list, shape, keep, count: int) -> np.ndarray:
    """k-bit codes back to values: (code - zero) · scale, per tensor or per output channel."""
    n, bits = int(np.prod(shape)), entry["bits"]
    codes = entropy.decode_symbols(specs[0][0], streams[0], bits, count)
    scale = np.frombuffer(streams[1], {"f16": "<f2", "f32": "<f4"}[specs[1][0]])
    scale = scale.astype(np.float32)
    if entry.get("asym"):
        zero = np.frombuffer(streams[2], "<u2").astype(np.float32)
    else:
        zero = np.full_like(scale, 2 ** (bits - 1) - 1)
    if entry["per_channel"] and len(shape) > 1:
        channel = np.arange(n) % shape[-1]
        scale, zero = scale[channel], zero[channel]
    if keep is not None:
        scale, zero = np.broadcast_to(scale, (n,))[keep], np.broadcast_to(zero, (n,))[keep]
    return ((codes.astype(np.float32) - zero) * scale).astype(np.float32)
