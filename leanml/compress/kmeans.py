"""Weight sharing by 1-D k-means (Deep Compression stage 2, Han et al. 2016), in NumPy.

Each kernel's weights are grouped into k = 2^bits clusters (Lloyd's algorithm, a fixed iteration
cap, seeded k-means++ or linear / density initialisation); the kernel is then stored as k-bit
indices into a float codebook. Exact zeros of a pruned kernel are left out and stay zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INITS = ("linear", "density", "kmeans++")
ITERATIONS = 50  # Lloyd in 1-D settles in a few dozen steps; the cap keeps it deterministic


@dataclass
class CTensor:
    """A clustered tensor: `indices` into `codebook` where `keep`, exact zeros elsewhere.

    `indices` has the tensor's shape (0 where not kept); `keep` is None when every entry is
    clustered. `bits` is the index width: len(codebook) ≤ 2^bits.
    """

    indices: np.ndarray
    codebook: np.ndarray
    bits: int
    keep: np.ndarray | None = None

    @property
    def codes(self) -> np.ndarray:
        return self.indices

    def dequantize(self) -> np.ndarray:
        values = self.codebook.astype(np.float32)[self.indices]
        return values if self.keep is None else np.where(self.keep, values, np.float32(0))


def init_centroids(values: np.ndarray, k: int, init: str, seed: int) -> np.ndarray:
    """k starting centroids: evenly over [min, max] (linear), at evenly spaced quantiles
    (density), or k-means++ (seeded: each next one drawn with probability ∝ squared distance)."""
    if init == "linear":
        return np.linspace(values.min(), values.max(), k)
    if init == "density":
        return np.quantile(values, (np.arange(k) + 0.5) / k)
    if init == "kmeans++":
        rng = np.random.default_rng(seed)
        centroids = [values[rng.integers(values.size)]]
        for _ in range(k - 1):
            d2 = np.min((values[:, None] - np.array(centroids)[None, :]) ** 2, axis=1)
            total = d2.sum()
            pick = rng.choice(values.size, p=d2 / total) if total > 0 else rng.integers(values.size)
            centroids.append(values[pick])
        return np.sort(np.array(centroids))
    raise ValueError(f"unknown k-means initialisation {init!r}; choose one of {', '.join(INITS)}")


def _assign(values: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest centroid (centroids sorted ascending): a binary search over the midpoints."""
    return np.searchsorted((centroids[1:] + centroids[:-1]) / 2, values).astype(np.int64)


def _means(values: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(labels, minlength=k)
    sums = np.bincount(labels, weights=values, minlength=k)
    return sums / np.maximum(counts, 1), counts


def kmeans_1d(values: np.ndarray, k: int, init: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(centroids ascending, label per value). There are exactly min(k, distinct values)
    clusters, none empty: a cluster that empties is re-seeded at the value farthest from its
    centroid, and if one is still empty at the cap the centroids restart at distinct values."""
    values = np.asarray(values, np.float64).reshape(-1)
    distinct = np.unique(values)
    if distinct.size <= k:  # every distinct value its own cluster
        return distinct, np.searchsorted(distinct, values)
    centroids = np.sort(init_centroids(values, k, init, seed).astype(np.float64))
    labels = _assign(values, centroids)
    for _ in range(ITERATIONS):
        means, counts = _means(values, labels, k)
        distance = np.abs(values - centroids[labels])
        for empty in np.flatnonzero(counts == 0):
            far = int(np.argmax(distance))
            means[empty] = values[far]
            distance[values == values[far]] = -1  # the next empty one takes another value
        centroids = np.sort(means)
        new = _assign(values, centroids)
        if np.array_equal(new, labels) and np.all(counts > 0):
            break
        labels = new
    if np.any(np.bincount(labels, minlength=k) == 0):
        # Each centroid at a distinct data value holds at least that value (distance 0).
        centroids = distinct[np.linspace(0, distinct.size - 1, k).round().astype(int)]
        labels = _assign(values, centroids)
    # Final centroids are the cluster means: the clusters are disjoint intervals of the sorted
    # values, so the means are distinct and ascending.
    centroids, _ = _means(values, labels, k)
    return centroids, labels


def cluster_tensor(w: np.ndarray, bits: int, init: str, seed: int, sparse: bool) -> CTensor:
    """`w` clustered into 2^bits shared values; with `sparse`, exact zeros are left out (and stay
    zero), so a pruned kernel keeps its sparsity."""
    w = np.asarray(w, np.float32)
    keep = (w != 0) if sparse and np.any(w == 0) else None
    members = w[keep] if keep is not None else w.reshape(-1)
    indices = np.zeros(w.shape, np.uint32)
    if members.size == 0:
        return CTensor(indices, np.zeros(1, np.float32), bits, keep)
    centroids, labels = kmeans_1d(members, 2**bits, init, seed)
    if keep is None:
        indices = labels.astype(np.uint32).reshape(w.shape)
    else:
        indices[keep] = labels
    return CTensor(indices, centroids.astype(np.float32), bits, keep)
