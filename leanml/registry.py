"""One registry style for every family: names mapped to lazy "module:attribute" entries.

Reading a registry (its names, `in`) imports nothing, so a stage can check its argument before
TensorFlow is imported; `get` imports the one entry asked for. Adding a member is one file plus
one line in its family's registry (and its name in `leanml/paths.yaml`'s `members`).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

from leanml.errors import LeanmlError


class Registry:
    """Named entries of one family (e.g. search algorithms), each a "module:attribute" string."""

    def __init__(self, family: str, entries: dict[str, str]):
        for name, target in entries.items():
            if target.count(":") != 1:
                raise ValueError(f"{family} registry: {name!r} -> {target!r} is not 'module:attr'")
        self.family, self.entries = family, dict(entries)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def names(self) -> list[str]:
        return list(self.entries)

    def check(self, name: str) -> str:
        """`name` if registered, else a clear error listing what is allowed."""
        if name not in self.entries:
            raise LeanmlError(
                f"{self.family}: must be one of {', '.join(self.entries)}, got {name!r}"
            )
        return name

    def get(self, name: str) -> Any:
        """The registered object (class or function), imported on first use."""
        module, attr = self.entries[self.check(name)].split(":")
        return getattr(importlib.import_module(module), attr)
