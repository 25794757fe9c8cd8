"""What every algorithm and trial shares: configs, their key, the trial row, the ask/tell base.

Algorithms never touch Keras; the runner evaluates what they propose. Scores are maximised.
In multi-objective mode each score is a tuple (accuracy, size) with accuracy maximised and
size minimised.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# A configuration (hyper-parameters or an architecture): plain `{name: value}`, native types.
Config = dict[str, Any]
Score = float | tuple[float, float]


def key(config: Config) -> str:
    """Canonical text of a configuration: equal configs give equal keys (the cache key)."""

    def norm(value: Any) -> Any:
        if isinstance(value, float):
            return float(f"{value:.10g}")  # 1e-10 relative: same config, same key
        if isinstance(value, np.generic):
            return norm(value.item())
        return value

    return json.dumps({k: norm(v) for k, v in sorted(config.items())}, sort_keys=True)


@dataclass
class Trial:
    """One row of the trials table."""

    proposal: int  # row number, from 0
    evaluation: int  # trained evaluations used so far, including this row
    config: Config
    val_accuracy: float
    params: int
    file_bytes: int
    seconds: float
    status: str  # ok | pruned (stopped at a rung, scored there) | failed | diverged
    from_cache: bool
    seed: int
    score: float = 0.0
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. val_curve: val accuracy per epoch
    epochs: int = 0  # training epochs this trial ran (0 for a cache hit)

    @property
    def ok(self) -> bool:
        """Finished with a score: fully trained, or pruned at a rung (scored at that fidelity)."""
        return self.status in ("ok", "pruned")

    @property
    def pruned(self) -> bool:
        return self.status == "pruned"

    @property
    def span(self) -> tuple[int, int] | None:
        """When it trained (ms since the epoch: start, end), for its MLflow run; None for a
        cache hit or a row without the start time."""
        started = self.extra.get("started_ms")
        if started is None or self.from_cache:
            return None
        return int(started), int(started + 1000 * self.seconds)


@dataclass
class Report:
    """What an algorithm tells about its own run, in a schema only it knows."""

    log: list[dict] = field(default_factory=list)  # JSON-ready, written beside the trials
    steps: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # tracked per step
    # run totals joining the stage's metrics (a `*_seconds` key goes to its timings)
    metrics: dict[str, float] = field(default_factory=dict)


class Algorithm(ABC):
    """Ask/tell optimiser over a space, seeded, with its params section."""

    #: True if the algorithm can optimise (accuracy, size) as two objectives.
    multi_objective = False

    def __init__(
        self,
        space: Any,
        cfg: Any,
        seed: int,
        budget: int,
        pareto: bool = False,
        initial: tuple[Config, ...] | list[Config] = (),
    ):
        self.space, self.cfg, self.seed, self.budget, self.pareto = space, cfg, seed, budget, pareto
        # known-good configurations (e.g. the baseline's) to propose first, in this order
        self._initial_left = [dict(c) for c in initial]

    def take_initial(self, n: int | None = None) -> list[Config]:
        """The next `n` (default: all) of `initial` not proposed yet; each is handed out once.

        Every algorithm puts these at the head of its first proposals (GA's first population,
        PSO's first particles, BO's first points, random's first samples), so a run with
        `initial` differs from one without only from its first proposal on, deterministically.
        """
        n = len(self._initial_left) if n is None else n
        taken, self._initial_left = self._initial_left[:n], self._initial_left[n:]
        return taken

    @abstractmethod
    def ask(self) -> list[Config]:
        """The next batch of configurations to evaluate; an empty list means 'done'."""

    @abstractmethod
    def tell(self, configs: list[Config], scores: list[Score]) -> None:
        """Scores for the configurations of the last `ask`, in the same order."""

    def report(self) -> Report:
        """Its log (e.g. a controller's updates) and any metrics to track per step."""
        return Report(log=list(getattr(self, "log", [])))
