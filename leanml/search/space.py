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

    def project(self, value: Any) -> Any:
        """The nearest value the dimension holds: clipped into [low, high] (ints rounded), the
        numerically nearest choice (ties: the earlier one), or, for a choice it does not hold
        and that is not a number, its first choice."""
        if self.type == "categorical":
            if value in self.choices:
                return value
            numbers = [c for c in self.choices if isinstance(c, int | float)]
            if isinstance(value, int | float) and not isinstance(value, bool) and numbers:
                return min(numbers, key=lambda c: abs(c - value))
            return self.choices[0]
        if self.type == "int":
            return int(min(max(round(value), int(self.low)), int(self.high)))
        return float(min(max(float(value), self.low), self.high))

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

    def project(self, values: dict[str, Any]) -> Config:
        """A configuration of this space nearest to `values` (see `Dim.project`); a dimension
        `values` does not name takes the value of its unit-cube centre."""
        return {
            d.name: d.project(values[d.name]) if d.name in values else d.from_unit(0.5)
            for d in self.dims
        }

    def contains(self, config: Config) -> bool:
        return set(config) == set(self.names) and all(d.contains(config[d.name]) for d in self.dims)


def baseline_values(train: Any) -> dict[str, Any]:
    """The train stage's configuration under the search's dimension names (`train` params).

    The dense layers (MLP hidden layers, or the CNN's dense head) give `hidden_units` (the
    first layer's width, as `search.objective.apply` reads it) and `n_layers` (their number).
    """
    kind = train.model.kind
    layer = getattr(train.model, kind)
    dense = list(layer.hidden_units if kind == "mlp" else layer.dense_units)
    values: dict[str, Any] = {
        "dropout": layer.dropout,
        "activation": layer.activation,
        "n_layers": len(dense),
        **{k: getattr(train, k) for k in ("learning_rate", "batch_size", "optimizer", "epochs")},
    }
    if dense:
        values["hidden_units"] = dense[0]
    return values


def baseline(train: Any, space: Space) -> Config:
    """The baseline projected into `space`: the search's first trial (`search.include_baseline`)."""
    return space.project(baseline_values(train))
