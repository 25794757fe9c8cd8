"""Atomic file output: write to a temp file in the same folder, then rename over the target.

A stage killed mid-write therefore never leaves a half-written file for a later stage to read.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path next to `target`; on success rename it onto `target`, else delete it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def _clean(value: Any) -> Any:
    # JSON has no NaN/inf; null is what DVC and MLflow readers cope with.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _clean(value.item())
    return value


def write_json(target: str | Path, data: dict) -> None:
    atomic_write_bytes(target, (json.dumps(_clean(data), indent=2, sort_keys=True) + "\n").encode())


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def write_csv(target: str | Path, rows: Iterable[dict], fieldnames: list[str]) -> None:
    with atomic_path(target, suffix=".csv") as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        for row in rows:
            writer.writerow(_clean(row))
