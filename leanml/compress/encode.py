"""A compact, loadable file for compressed Keras models: the saving is real bytes on disk.

Layout: magic, a JSON header (the model's Keras config and one entry per weight tensor), then
the raw payload. Each tensor is stored dense or sparse (a bitmask of its non-zeros, then only
those values), as float32, float16 or k-bit codes packed bit by bit with their scales.
`decode` rebuilds the Keras model, so the tests can check that the file really is the model.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import keras
import numpy as np

from leanml.compress.uniform import QTensor
from leanml.io import atomic_write_bytes

MAGIC = b"LEANMLPK"
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


def _inference_config(tree):
    if isinstance(tree, dict):
        return {k: _inference_config(v) for k, v in tree.items() if k not in TRAINING_ONLY}
    if isinstance(tree, list):
        return [_inference_config(v) for v in tree]
    return tree


def pack_bits(codes: np.ndarray, bits: int) -> bytes:
    """Unsigned integer codes (< 2^bits) packed into a bit stream, `bits` bits each."""
    flat = codes.astype(">u4").reshape(-1, 1).view(np.uint8)
    stream = np.unpackbits(flat, axis=1)[:, 32 - bits :]
    return np.packbits(stream.reshape(-1)).tobytes()


def unpack_bits(data: bytes, bits: int, count: int) -> np.ndarray:
    stream = np.unpackbits(np.frombuffer(data, np.uint8))[: count * bits].reshape(count, bits)
    padded = np.zeros((count, 32), np.uint8)
    padded[:, 32 - bits :] = stream
    return np.packbits(padded, axis=1).view(">u4").reshape(-1).astype(np.uint32)


def encode(
    model: keras.Model,
    path: str | Path,
    quantized: dict[int, QTensor] | None = None,
    sparse: bool = False,
    float_dtype: str = "float32",
) -> Path:
    """Write `model` to `path`: weight i is stored from `quantized[i]` if given, else as floats.

    With `sparse`, every tensor that has zeros is stored as a bitmask plus its non-zero entries.
    """
    quantized = quantized or {}
    entries, chunks, offset = [], [], 0

    def add(blob: bytes) -> list[int]:
        nonlocal offset
        chunks.append(blob)
        span = [offset, len(blob)]
        offset += len(blob)
        return span

    for i, weight in enumerate(model.get_weights()):
        entry: dict = {"shape": list(weight.shape)}
        q = quantized.get(i)
        values = q.dequantize() if q is not None else weight
        mask = values != 0
        keep = slice(None)
        if sparse and not mask.all():
            entry["mask"] = add(np.packbits(mask.reshape(-1)).tobytes())
            keep = mask.reshape(-1)
        if q is not None:
            codes = q.codes.reshape(-1)[keep]
            entry.update(
                kind="kbit",
                bits=q.bits,
                per_channel=q.per_channel,
                count=int(codes.size),
                codes=add(pack_bits(codes, q.bits)),
                scale=add(q.scale.astype(np.float32).reshape(-1).tobytes()),
            )
            if not q.symmetric:  # symmetric zero points are all 2^(bits-1) - 1: not stored
                entry["zero"] = add(q.zero.astype(np.uint16).reshape(-1).tobytes())
        else:
            entry.update(
                kind=float_dtype,
                values=add(weight.reshape(-1)[keep].astype(float_dtype).tobytes()),
            )
        entries.append(entry)
    header = json.dumps(
        {
            "model": _inference_config(keras.saving.serialize_keras_object(model)),
            "tensors": entries,
        },
        separators=(",", ":"),
    ).encode()
    blob = MAGIC + struct.pack("<I", len(header)) + header + b"".join(chunks)
    atomic_write_bytes(path, blob)
    return Path(path)


def decode(path: str | Path) -> keras.Model:
    """Rebuild the Keras model stored by `encode` (architecture from its config, safe mode)."""
    blob = Path(path).read_bytes()
    if not blob.startswith(MAGIC):
        raise ValueError(f"{path}: not a leanml packed model")
    (size,) = struct.unpack("<I", blob[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    header = json.loads(blob[start : start + size])
    payload = memoryview(blob)[start + size :]

    def read(span: list[int]) -> bytes:
        return bytes(payload[span[0] : span[0] + span[1]])

    weights = []
    for entry in header["tensors"]:
        shape = tuple(entry["shape"])
        n = int(np.prod(shape))
        keep = None
        if "mask" in entry:
            keep = np.unpackbits(np.frombuffer(read(entry["mask"]), np.uint8))[:n].astype(bool)
        if entry["kind"] == "kbit":
            codes = unpack_bits(read(entry["codes"]), entry["bits"], entry["count"])
            scale = np.frombuffer(read(entry["scale"]), np.float32)
            if "zero" in entry:
                zero = np.frombuffer(read(entry["zero"]), np.uint16).astype(np.float32)
            else:
                zero = np.full_like(scale, 2 ** (entry["bits"] - 1) - 1)
            if entry["per_channel"] and len(shape) > 1:
                channel = np.arange(n) % shape[-1]
                scale, zero = scale[channel], zero[channel]
            if keep is not None:
                scale, zero = np.broadcast_to(scale, (n,))[keep], np.broadcast_to(zero, (n,))[keep]
            values = ((codes.astype(np.float32) - zero) * scale).astype(np.float32)
        else:
            values = np.frombuffer(read(entry["values"]), entry["kind"]).astype(np.float32)
        if keep is not None:
            full = np.zeros(n, np.float32)
            full[keep] = values
            values = full
        weights.append(values.reshape(shape))
    model = keras.saving.deserialize_keras_object(header["model"], safe_mode=True)
    model.set_weights(weights)
    return model
