"""NAS strategies by name: one file each, one line here to register a new one."""

from __future__ import annotations

from typing import Any

from leanml.registry import Registry

# Reading the registry (names, `in`) imports no strategy, hence no TensorFlow.
STRATEGIES = Registry(
    "nas: strategy",
    {
        "rl": "leanml.nas.rl:RLNAS",
        "meta": "leanml.nas.meta:MetaNAS",
        "random": "leanml.nas.random:RandomNAS",
    },
)


# The `nas` params every member reads (each member also reads its own section).
SHARED = frozenset(
    {
        "budget",
        "epoch_budget",
        "fidelity",
        "fit",
        "final_fit",
        "include_baseline",
        "space",
        "reward",
    }
)


def create(
    name: str, space: Any, cfg: Any, seed: int, initial: tuple | list = (), **extra: Any
) -> Any:
    """Instantiate strategy `name` with the `nas` params section (meta needs rows and target).

    `initial`: architectures proposed first (the baseline's, when `nas.include_baseline`).
    """
    return STRATEGIES.get(name)(space, cfg, seed, cfg.budget, initial=initial, **extra)


def used_params(cfg: Any, name: str) -> dict[str, Any]:
    """The params `nas@<name>` reads: logged with its run and fingerprinted for resume."""
    ncfg = cfg.nas
    used: dict[str, Any] = {}
    # the train stage's fit when the refit uses it; its model when the baseline child copies it
    if ncfg.final_fit is None:
        used.update(cfg.train.fit_settings().model_dump())
    if ncfg.include_baseline:
        used["model"] = cfg.train.model
    return {
        "base": cfg.base.model_dump(),
        "nas": {**ncfg.model_dump(include=SHARED), name: getattr(ncfg, name, {})},
        **({"train": used} if used else {}),
        # where children run does not change results (not in the fingerprint); a time limit does
        "execution": {"trial_timeout": cfg.execution.trial_timeout},
    }
