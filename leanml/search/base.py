"""The one small interface every search algorithm implements: propose configs, observe scores.

Algorithms never touch Keras; the runner evaluates what they propose. Scores are maximised.
In multi-objective mode each score is a tuple (accuracy, size) with accuracy maximised and
size minimised.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from leanml.search.space import Config, Space

Score = float | tuple[float, float]


class Algorithm(ABC):
    """Ask/tell optimiser over a `Space`, seeded, with its section of `search` params."""

    #: True if the algorithm can optimise (accuracy, size) as two objectives.
    multi_objective = False

    def __init__(self, space: Space, cfg: Any, seed: int, budget: int, pareto: bool = False):
        self.space, self.cfg, self.seed, self.budget, self.pareto = space, cfg, seed, budget, pareto

    @abstractmethod
    def ask(self) -> list[Config]:
        """The next batch of configurations to evaluate; an empty list means 'done'."""

    @abstractmethod
    def tell(self, configs: list[Config], scores: list[Score]) -> None:
        """Scores for the configurations of the last `ask`, in the same order."""
