"""NAS strategies by name: one file each, one line here to register a new one."""

from __future__ import annotations

from typing import Any

from leanml.errors import LeanmlError
from leanml.registry import Registry

# Reading the registry (names, `in`) imports no strategy, hence no TensorFlow.
STRATEGIES = Registry(
    "nas: strategy",
    {
        "rl": "leanml.nas.rl:RLNAS",
        "meta": "leanml.nas.meta:MetaNAS",
        "random": "leanml.nas.random:RandomNAS",
        "enas": "leanml.nas.enas:ENAS",
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


def space_kinds(kinds: list[str] | tuple[str, ...], input_shape: tuple[int, ...]) -> list[str]:
    """The layer kinds the space uses on data of `input_shape` (one sample's shape).

    Conv layers need images (H, W, C): on other data they are left out of the space, unless
    they are the only kind asked for, which is an error (there would be nothing to search).
    """
    if len(input_shape) == 3 or "conv" not in kinds:
        return list(kinds)
    kept = [k for k in kinds if k != "conv"]
    if not kept:
        raise LeanmlError(
            "nas.space.kinds: 'conv' needs image data (samples of shape (H, W, C)); this "
            f"dataset's samples have shape {tuple(input_shape)}: use kinds: [dense]"
        )
    return kept


def kinds_notice(kinds: list[str] | tuple[str, ...], input_shape: tuple[int, ...]) -> str | None:
    """The one line a stage prints when conv layers are left out of the space, else None."""
    kept = space_kinds(kinds, input_shape)
    if kept == list(kinds):
        return None
    return (
        f"nas: the data is not images (samples of shape {tuple(input_shape)}): conv layers "
        f"left out of the space; kinds: [{', '.join(kept)}]"
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
