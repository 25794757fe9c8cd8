"""Uniform k-bit weight quantization, the seed's Q(w) = round(w·s): per tensor or per channel,
symmetric or asymmetric, in NumPy (for PTQ and packing) and in Keras ops (fake-quant for QAT).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class QTensor:
    """Integer codes in [0, 2^bits - 1] plus the float scales (and zero points) to undo them.

    Channel-wise parameters run along the last axis (a kernel's output units / filters).
    """

    codes: np.ndarray
    bits: int
    scale: np.ndarray
    zero: np.ndarray
    per_channel: bool
    symmetric: bool

    def dequantize(self) -> np.ndarray:
        return ((self.codes.astype(np.float32) - self.zero) * self.scale).astype(np.float32)


def levels(bits: int, symmetric: bool) -> tuple[int, int]:
    """The smallest and largest signed code: symmetric keeps 0 exact and the range balanced."""
    if symmetric:
        top = 2 ** (bits - 1) - 1
        return -top, top
    return 0, 2**bits - 1


def quantize(w: np.ndarray, bits: int, per_channel: bool, symmetric: bool) -> QTensor:
    """Quantize `w` to `bits` bits; exact zeros stay exact zeros in the symmetric scheme."""
    w = np.asarray(w, np.float32)
    axes = tuple(range(w.ndim - 1)) if per_channel and w.ndim > 1 else None
    lo, hi = levels(bits, symmetric)
    if symmetric:
        peak = np.max(np.abs(w), axis=axes, keepdims=True)
        scale = np.where(peak > 0, peak / hi, 1.0).astype(np.float32)
        signed = np.clip(np.round(w / scale), lo, hi)
        zero = np.full_like(scale, -lo)  # stored codes are shifted to be ≥ 0
        codes = (signed - lo).astype(np.uint32)
        return QTensor(codes, bits, scale, zero, per_channel, symmetric)
    w_min = np.minimum(np.min(w, axis=axes, keepdims=True), 0.0)
    w_max = np.maximum(np.max(w, axis=axes, keepdims=True), 0.0)
    scale = np.where(w_max > w_min, (w_max - w_min) / hi, 1.0).astype(np.float32)
    zero = np.clip(np.round(-w_min / scale), 0, hi).astype(np.float32)
    codes = np.clip(np.round(w / scale) + zero, 0, hi).astype(np.uint32)
    return QTensor(codes, bits, scale, zero, per_channel, symmetric)


def fake_quantize(w, bits: int, per_channel: bool, symmetric: bool):
    """Keras-ops twin of `quantize(...).dequantize()` with a straight-through gradient."""
    from keras import ops

    axes = tuple(range(len(w.shape) - 1)) if per_channel and len(w.shape) > 1 else None
    lo, hi = levels(bits, symmetric)
    if symmetric:
        peak = ops.max(ops.abs(w), axis=axes, keepdims=True)
        scale = ops.where(peak > 0, peak / hi, ops.ones_like(peak))
        q = ops.clip(ops.round(w / scale), lo, hi) * scale
    else:
        w_min = ops.minimum(ops.min(w, axis=axes, keepdims=True), 0.0)
        w_max = ops.maximum(ops.max(w, axis=axes, keepdims=True), 0.0)
        scale = ops.where(w_max > w_min, (w_max - w_min) / hi, ops.ones_like(w_max))
        zero = ops.clip(ops.round(-w_min / scale), 0, hi)
        q = (ops.clip(ops.round(w / scale) + zero, 0, hi) - zero) * scale
    # Straight-through estimator: forward uses q, backward treats rounding as identity.
    return w + ops.stop_gradient(q - w)
