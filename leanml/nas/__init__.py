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


def create(name: str, space: Any, cfg: Any, seed: int, **extra: Any) -> Any:
    """Instantiate strategy `name` with the `nas` params section (meta needs rows and target)."""
    return STRATEGIES.get(name)(space, cfg, seed, cfg.budget, **extra)


def used_params(cfg: Any, name: str) -> dict[str, Any]:
    """The params `nas@<name>` reads: logged with its run and fingerprinted for resume."""
    ncfg = cfg.nas
    return {
        "base": cfg.base.model_dump(),
        "nas": {
            **ncfg.model_dump(include={"budget", "fit", "space", "reward"}),
            name: getattr(ncfg, name, {}),
        },
        # where children run does not change results (not in the fingerprint); a time limit does
        "execution": {"trial_timeout": cfg.execution.trial_timeout},
    }
