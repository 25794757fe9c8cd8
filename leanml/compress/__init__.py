"""Compression methods, chosen by name: adding one is one file plus one line in `METHODS`.

Nothing here is imported to load a saved model: every saved candidate holds plain Keras layers
(QAT is stripped first), so the registry stays lazy.
"""

from __future__ import annotations

from leanml.compress.base import Method, Variant
from leanml.errors import LeanmlError
from leanml.params import Params
from leanml.registry import Registry

METHODS = Registry(
    "compress: method",
    {
        "prune": "leanml.compress.prune:Prune",
        "quantize": "leanml.compress.quantize:Quantize",
        "lowrank": "leanml.compress.lowrank:Lowrank",
        "combined": "leanml.compress.combined:Combined",
        "cluster": "leanml.compress.cluster:Cluster",
        "auto": "leanml.compress.auto:Auto",
    },
)


def get(name: str, cfg: Params) -> Method:
    """The method `name`, configured from its own `compress.<name>` section."""
    if name not in METHODS:
        raise LeanmlError(
            f"compress: unknown method {name!r}; registered methods are {', '.join(METHODS)}"
        )
    return METHODS.get(name)(getattr(cfg.compress, name), cfg.compress.fine_tune, cfg.base.seed)


__all__ = ["METHODS", "Method", "Variant", "get"]
