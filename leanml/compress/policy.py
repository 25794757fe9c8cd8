"""A compression policy (compress@auto): k-means bits per layer, and the sparsity that makes it fit
a size target.

AMC (He et al. 2018) bounds its agent's actions so that every policy it proposes meets the
resource constraint; here the same: a policy names its bit widths (and, with per-layer sparsity,
each layer's relative density), and the overall sparsity t is then solved for — the smallest t
whose file fits the target — so no trial is spent on a policy over the target and every trial
uses the whole byte budget (where the accuracy is). The size of a policy at t is measured on a
real encoding of the one-shot pruned and clustered baseline (no fine-tuning: about 0.1 s); the
gradual pruning and fine-tuning of a trial move it by about 1 %, hence `FIT_MARGIN`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from leanml.compress.cluster import cluster_model, strip_clusters
from leanml.compress.encode import encode
from leanml.compress.prune import prune_unstructured
from leanml.data import Splits
from leanml.params import FineTune
from leanml.trials.base import Config

FIT_MARGIN = 0.02  # fitted to 98 % of the target: a trial's fine-tuning moves the size ~1 %
FIT_STEPS = 8  # bisection steps: t to within (high - low) / 256 (0.004 of sparsity)


@dataclass(frozen=True)
class Policy:
    """Bits per layer; `keep` None: one global magnitude threshold (global sparsity t), else each
    layer's density relative to the densest (layer i's sparsity 1 − (1 − t)·keep_i / max keep)."""

    names: tuple[str, ...]
    bits: tuple[int, ...]
    keep: tuple[float, ...] | None = None

    @classmethod
    def of(cls, config: Config, names: list[str]) -> Policy:
        bits = tuple(int(config[f"{n}.bits"]) for n in names)
        if f"{names[0]}.keep" in config:
            return cls(tuple(names), bits, tuple(float(config[f"{n}.keep"]) for n in names))
        return cls(tuple(names), bits)

    def sparsity(self, t: float) -> float | list[float]:
        """The pruning target at overall sparsity t: one share, or one per layer."""
        if self.keep is None:
            return t
        top = max(self.keep)
        return [1.0 - (1.0 - t) * k / top for k in self.keep]

    def describe(self, t: float) -> str:
        """`s0.83 global · dense_0 b1 · output b3`, or `dense_0 s0.91 b2 · output s0.40 b3`."""
        sparsity = self.sparsity(t)
        if isinstance(sparsity, float):
            layers = [f"{n} b{b}" for n, b in zip(self.names, self.bits, strict=True)]
            return " · ".join([f"s{sparsity:.3f} global", *layers])
        return " · ".join(
            f"{n} s{s:.3f} b{b}" for n, s, b in zip(self.names, sparsity, self.bits, strict=True)
        )


def packed_bytes(model: keras.Model, tensors: dict[int, Any]) -> int:
    """Bytes of the model's sparse, entropy-coded `.packed` file (written, measured, removed)."""
    with tempfile.TemporaryDirectory(prefix="leanml-auto-") as work:
        packed = Path(work) / "policy.packed"
        encode(model, packed, quantized=tensors, sparse=True, entropy_coded=True)
        return packed.stat().st_size


def apply(
    baseline: keras.Model,
    data: Splits,
    policy: Policy,
    t: float,
    *,
    epochs: int,
    fine: FineTune,
    init: str,
    seed: int,
) -> tuple[keras.Model, dict[int, Any]]:
    """Prune to the policy's sparsity at t (gradually while fine-tuning `epochs`; one-shot with
    0), then k-means each layer's survivors into 2^bits shared values: the plain model and its
    clustered kernels by weight index."""
    pruned = prune_unstructured(
        baseline,
        data,
        sparsity=policy.sparsity(t),
        criterion="magnitude",
        scope="global",  # a list of sparsities is always per layer
        epochs=epochs,
        ramp=0.6,
        frequency=10,
        fine=fine,
    )
    return strip_clusters(cluster_model(pruned, list(policy.bits), init, seed, "auto"))


def fit(
    baseline: keras.Model,
    data: Splits,
    policy: Policy,
    target: int,
    bounds: tuple[float, float],
    init: str,
    seed: int,
) -> float:
    """The smallest overall sparsity t in `bounds` whose one-shot file is within the target (less
    the margin); the upper bound when even that is over (the score then says by how much)."""
    limit = target * (1 - FIT_MARGIN)

    def size(t: float) -> int:
        oneshot = apply(baseline, data, policy, t, epochs=0, fine=FineTune(), init=init, seed=seed)
        return packed_bytes(*oneshot)

    low, high = bounds
    if size(low) <= limit:
        return low
    if size(high) > limit:
        return high
    for _ in range(FIT_STEPS):  # size falls as t rises: keep `high` feasible
        mid = (low + high) / 2
        if size(mid) <= limit:
            high = mid
        else:
            low = mid
    return round(high, 6)
