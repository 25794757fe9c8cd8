"""Search algorithms by name: one file each, one line here to register a new one."""

from __future__ import annotations

from typing import Any

from leanml.registry import Registry

# Reading the registry (names, `in`) imports no algorithm: a stage checks its argument first.
ALGORITHMS = Registry(
    "search: algorithm",
    {
        "ga": "leanml.search.ga:GASearch",
        "pso": "leanml.search.pso:PSOSearch",
        "bayes": "leanml.search.bayes:BayesSearch",
        "random": "leanml.search.random:RandomSearch",
        "tpe": "leanml.search.tpe:TPESearch",
    },
)


def create(name: str, space: Any, cfg: Any, seed: int, budget: int) -> Any:
    """Instantiate algorithm `name` with the `search` params section."""
    cls = ALGORITHMS.get(name)
    pareto = cfg.objective.kind == "pareto" and cls.multi_objective
    return cls(space, cfg, seed, budget, pareto=pareto)


def used_params(cfg: Any, name: str) -> dict[str, Any]:
    """The params `search@<name>` reads: logged with its run and fingerprinted for resume."""
    scfg = cfg.search
    return {
        "base": cfg.base.model_dump(),
        "search": {
            **scfg.model_dump(include={"budget", "objective", "fit", "space"}),
            name: getattr(scfg, name),
        },
        "train": {"model": cfg.train.model},
        # where trials run does not change results (not in the fingerprint); a time limit does
        "execution": {"trial_timeout": cfg.execution.trial_timeout},
    }
