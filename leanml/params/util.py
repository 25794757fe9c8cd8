"""Password masking and dotted-key flattening, shared by params, tracking and the study."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

# `scheme://user:password@host`: the password part of a URI's user info
_URI_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):[^/\s]*@")


def mask_password(text: str) -> str:
    """`https://user:secret@host` → `https://user:***@host` anywhere in `text`."""
    return _URI_PASSWORD.sub(r"\1:***@", text)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """`{'train': {'fit': {'epochs': 3}}}` → `{'train.fit.epochs': 3}` (lists kept as values)."""
    if isinstance(tree, BaseModel):
        tree = tree.model_dump()
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat
