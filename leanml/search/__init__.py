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


# The `search` params every member reads (each member also reads its own section).
SHARED = frozenset(
    {
        "budget",
        "epoch_budget",
        "fidelity",
        "objective",
        "fit",
        "final_fit",
        "include_baseline",
        "space",
    }
)


def create(
    name: str, space: Any, cfg: Any, seed: int, budget: int, initial: tuple | list = ()
) -> Any:
    """Instantiate algorithm `name` with the `search` params section.

    `initial`: configurations every algorithm proposes first (the baseline, when
    `search.include_baseline`), see `trials.base.Algorithm`.
    """
    cls = ALGORITHMS.get(name)
    pareto = cfg.objective.kind == "pareto" and cls.multi_objective
    return cls(space, cfg, seed, budget, pareto=pareto, initial=initial)


def used_params(cfg: Any, name: str) -> dict[str, Any]:
    """The params `search@<name>` reads: logged with its run and fingerprinted for resume."""
    scfg = cfg.search
    # the train stage's model always (trials apply configs to it); its fit settings when the
    # refit uses them (final_fit null) or the baseline trial reads them (include_baseline)
    train = {"model": cfg.train.model}
    if scfg.final_fit is None or scfg.include_baseline:
        train.update(cfg.train.fit_settings().model_dump())
    return {
        "base": cfg.base.model_dump(),
        "search": {**scfg.model_dump(include=SHARED), name: getattr(scfg, name)},
        "train": train,
        # where trials run does not change results (not in the fingerprint); a time limit does
        "execution": {"trial_timeout": cfg.execution.trial_timeout},
    }
