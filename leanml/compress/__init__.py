"""Compression methods, chosen by name: adding one is one file plus one line in `METHODS`."""

from __future__ import annotations

# Importing the package registers quantization-aware training's custom Keras layers, so a saved
# model that still holds them loads in safe mode (leanml.evaluate imports the package for that).
from leanml.compress import quantize as _custom_layers  # noqa: F401
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
