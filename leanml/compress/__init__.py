"""Compression methods, chosen by name: adding one is one file plus one line in `METHODS`."""

from __future__ import annotations

from leanml.compress.base import Method, Variant
from leanml.compress.combined import Combined
from leanml.compress.lowrank import Lowrank
from leanml.compress.prune import Prune
from leanml.compress.quantize import Quantize
from leanml.errors import LeanmlError
from leanml.params import Params

METHODS: dict[str, type[Method]] = {
    Prune.name: Prune,
    Quantize.name: Quantize,
    Lowrank.name: Lowrank,
    Combined.name: Combined,
}


def get(name: str, cfg: Params) -> Method:
    """The method `name`, configured from its own `compress.<name>` section."""
    if name not in METHODS:
        raise LeanmlError(
            f"compress: unknown method {name!r}; registered methods are {', '.join(METHODS)}"
        )
    return METHODS[name](getattr(cfg.compress, name), cfg.compress.fine_tune, cfg.base.seed)


__all__ = ["METHODS", "Method", "Variant", "get"]
