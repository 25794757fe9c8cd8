"""NAS strategies by name: one file each, one line here to register a new one."""

from __future__ import annotations

from typing import Any

from leanml.errors import LeanmlError
from leanml.nas.meta import MetaNAS
from leanml.nas.random import RandomNAS
from leanml.nas.rl import RLNAS
from leanml.nas.space import ArchSpace
from leanml.search.base import Algorithm

STRATEGIES: dict[str, type[Algorithm]] = {
    "rl": RLNAS,
    "meta": MetaNAS,
    "random": RandomNAS,
}


def create(name: str, space: ArchSpace, cfg: Any, seed: int, **extra: Any) -> Algorithm:
    """Instantiate strategy `name` with the `nas` params section (meta needs rows and target)."""
    if name not in STRATEGIES:
        raise LeanmlError(f"nas: strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    return STRATEGIES[name](space, cfg, seed, cfg.budget, **extra)
