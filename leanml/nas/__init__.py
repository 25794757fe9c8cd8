"""NAS strategies by name: one file each, one line here to register a new one.

The registry names classes by import path, so that reading it (e.g. to check a stage's
argument) does not import TensorFlow; `create` imports the one strategy asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

from leanml.errors import LeanmlError

STRATEGIES: dict[str, str] = {
    "rl": "leanml.nas.rl:RLNAS",
    "meta": "leanml.nas.meta:MetaNAS",
    "random": "leanml.nas.random:RandomNAS",
}


def create(name: str, space: Any, cfg: Any, seed: int, **extra: Any) -> Any:
    """Instantiate strategy `name` with the `nas` params section (meta needs rows and target)."""
    if name not in STRATEGIES:
        raise LeanmlError(f"nas: strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    module, cls = STRATEGIES[name].split(":")
    return getattr(importlib.import_module(module), cls)(space, cfg, seed, cfg.budget, **extra)
