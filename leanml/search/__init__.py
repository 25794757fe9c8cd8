"""Search algorithms by name: one file each, one line here to register a new one."""

from __future__ import annotations

from typing import Any

from leanml.errors import LeanmlError
from leanml.search.base import Algorithm
from leanml.search.bayes import BayesSearch
from leanml.search.ga import GASearch
from leanml.search.pso import PSOSearch
from leanml.search.random import RandomSearch
from leanml.search.space import Space

ALGORITHMS: dict[str, type[Algorithm]] = {
    "ga": GASearch,
    "pso": PSOSearch,
    "bayes": BayesSearch,
    "random": RandomSearch,
}


def create(name: str, space: Space, cfg: Any, seed: int, budget: int) -> Algorithm:
    """Instantiate algorithm `name` with the `search` params section."""
    if name not in ALGORITHMS:
        raise LeanmlError(f"search: algorithm must be one of {', '.join(ALGORITHMS)}, got {name!r}")
    cls = ALGORITHMS[name]
    pareto = cfg.objective.kind == "pareto" and cls.multi_objective
    return cls(space, cfg, seed, budget, pareto=pareto)
