"""A per-trial time limit that training checks between batches (`execution.trial_timeout`).

The runner opens `limit(seconds)` around each trial; `leanml.train` stops fitting at the next
batch once `expired()` and reports the trial as timed out. Cooperative, so it works the same in
this process and on a Dask worker, and never leaves a half-updated model or a stuck thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("leanml_deadline", default=None)


@contextmanager
def limit(seconds: float | None) -> Iterator[None]:
    """Within the block, `expired()` turns true `seconds` after entry (None: never)."""
    token = _deadline.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def expired() -> bool:
    end = _deadline.get()
    return end is not None and time.monotonic() >= end
