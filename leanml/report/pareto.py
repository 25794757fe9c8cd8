"""The one Pareto function: which (value ↑, cost ↓) points no other point dominates."""

from __future__ import annotations

from collections.abc import Sequence


def non_dominated(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For (value ↑, cost ↓) points: True where no other point is at least as good on both
    and strictly better on one. Identical points do not dominate each other."""
    flags = []
    for i, (value, cost) in enumerate(points):
        dominated = any(
            v >= value and c <= cost and (v > value or c < cost)
            for j, (v, c) in enumerate(points)
            if j != i
        )
        flags.append(not dominated)
    return flags
