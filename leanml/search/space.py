"""The search space: typed dimensions from `search.space`, sampling and unit-cube encoding.

Every algorithm sees configurations as plain dicts `{name: value}` with native types (int,
float, or the categorical choice itself). Continuous optimisers (PSO) work in the unit cube
[0, 1]^d and decode with `from_unit`, which always lands inside the bounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from leanml.params import Dimension
from leanml.trials.base import Config


@dataclass(frozen=True)
class Dim:
    name: str
    type: str
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    choices: tuple = ()

    @classmethod
    def from_params(cls, name: str, dim: Dimension) -> Dim:
        if dim.type == "categorical":
            return cls(name, "categorical", choices=tuple(dim.choices or ()))
        return cls(name, dim.type, float(dim.low), float(dim.high), dim.log)

    def from_unit(self, u: float) -> Any:
        u = min(max(float(u), 0.0), 1.0)
        if self.type == "categorical":
            return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]
        if self.type == "int":
            # equal-width bins over low..high inclusive
            span = int(self.high) - int(self.low) + 1
            return int(self.low) + min(int(u * span), span - 1)
        if self.log:
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
            # exp(log(b)) can round past b (1e-1 -> 0.10000000000000006): clamp to the bounds
            return float(min(max(value, self.low), self.high))
        return float(min(max(self.low + u * (self.high - self.low), self.low), self.high))

    def to_unit(self, value: Any) -> float:
        """Centre of the value's bin (ints, categoricals) or its exact position (reals)."""
        if self.type == "categorical":
            return (self.choices.index(value) + 0.5) / len(self.choices)
        if self.type == "int":
            span = int(self.high) - int(self.low) + 1
            return (int(value) - int(self.low) + 0.5) / span
        if self.log:
            return (math.log(value) - math.log(self.low)) / (
                math.log(self.high) - math.log(self.low)
            )
        return (value - self.low) / (self.high - self.low)

    def contains(self, value: Any) -> bool:
        if self.type == "categorical":
            return value in self.choices
        if self.type == "int":
            return isinstance(value, int) and self.low <= value <= self.high
        return isinstance(value, float) and self.low <= value <= self.high


class Space:
    """An ordered set of dimensions."""

    def __init__(self, dims: list[Dim]):
        self.dims = dims
        self.names = [d.name for d in dims]

    @classmethod
    def from_params(cls, space: dict[str, Dimension]) -> Space:
        return cls([Dim.from_params(name, dim) for name, dim in space.items()])

    def __len__(self) -> int:
        return len(self.dims)

    def sample(self, rng: np.random.Generator, log_uniform: bool = True) -> Config:
        config = {}
        for d in self.dims:
            u = rng.random()
            if d.log and not log_uniform:
                value = d.low + u * (d.high - d.low)
                config[d.name] = float(min(max(value, d.low), d.high))
            else:
                config[d.name] = d.from_unit(u)
        return config

    def from_unit(self, vector) -> Config:
        return {d.name: d.from_unit(u) for d, u in zip(self.dims, vector, strict=True)}

    def to_unit(self, config: Config) -> np.ndarray:
        return np.array([d.to_unit(config[d.name]) for d in self.dims])

    def contains(self, config: Config) -> bool:
        return set(config) == set(self.names) and all(d.contains(config[d.name]) for d in self.dims)
