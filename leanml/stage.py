"""Run a stage's main(): bad input ends with one clear message and a non-zero exit, no traceback."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

from leanml.errors import LeanmlError


def _sigterm_as_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(main: Callable[[], None], name: str) -> None:
    """Call `main`; map user errors to exit 2 and interrupts (Ctrl-C, SIGTERM) to exit 130."""
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        main()
    except LeanmlError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        sys.exit(130)


def item_arg(registry, family: str, usage: str) -> str:
    """The item a foreach stage runs (argv[1]), checked against its registry."""
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in registry:
        raise LeanmlError(
            f"{family}: must be one of {', '.join(registry)}, got {name!r} (usage: {usage})"
        )
    return name
