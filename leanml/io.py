"""Atomic file output: write to a temp file in the same folder, then rename over the target.

A stage killed mid-write therefore never leaves a half-written file for a later stage to read.
Also the two helpers that keep outputs reproducible: `reproducible_zip` (zip archives without
clock-dependent bytes) and `write_metrics` (wall-clock values kept out of metrics.json).
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
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


# Keys (or key endings, e.g. `best_latency_ms_p50`, `search_seconds`) whose values depend on
# the wall clock: they go to a stage's timings.json, never to its metrics.json.
TIMING_SUFFIXES = (
    "latency_ms_p50",
    "latency_ms_p95",
    "throughput_per_s",
    "seconds",
    "latency_front",
    "started_ms",  # when a trial began training (its MLflow run's start time)
)


def is_timing(key: str) -> bool:
    return key.endswith(TIMING_SUFFIXES)


def split_timings(metrics: dict) -> tuple[dict, dict]:
    """(deterministic values, wall-clock values) of a flat metrics dict."""
    timings = {k: v for k, v in metrics.items() if is_timing(k)}
    return {k: v for k, v in metrics.items() if k not in timings}, timings


def write_metrics(target: str | Path, timings_target: str | Path, metrics: dict) -> None:
    """`metrics` split in two: `target` (identical for identical runs) and `timings_target`.
    Every key is a glossary name (`leanml/glossary.py`)."""
    from leanml import glossary

    glossary.check(metrics, str(target))
    kept, timings = split_timings(metrics)
    write_json(target, kept)
    write_json(timings_target, timings)


# The zip format's earliest date: what every entry of a reproducible archive is stamped with.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def reproducible_zip(data: bytes, rewrite: Callable[[str, bytes], bytes] | None = None) -> bytes:
    """`data` (a zip archive) rewritten with fixed entry timestamps and permissions.

    Entry order, names, contents and compression are kept; `rewrite(name, content)` may change
    an entry's content (e.g. drop a save date). Identical inputs give identical bytes.
    """
    import io

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            content = src.read(info)
            if rewrite is not None:
                content = rewrite(info.filename, content)
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH)
            fixed.compress_type = info.compress_type
            fixed.create_system = 3
            fixed.external_attr = 0o644 << 16
            dst.writestr(fixed, content)
    return out.getvalue()
