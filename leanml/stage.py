"""Run a stage's main(): bad input ends with one clear message and a non-zero exit, no traceback."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

from leanml.errors import LeanmlError

# The interrupt a signal asked for. Python drops an exception raised while it runs a finaliser
# (`__del__`, a weakref callback: frequent under TensorFlow), so a KeyboardInterrupt can be lost;
# the flag is not, and long loops check it at safe points (`raise_if_interrupted`).
_interrupted: str | None = None


def _interrupt(signum, frame) -> None:
    global _interrupted
    _interrupted = f"signal {signum}"
    raise KeyboardInterrupt(_interrupted)


def raise_if_interrupted() -> None:
    """Raise KeyboardInterrupt if Ctrl-C or SIGTERM arrived, even if its first raise was lost."""
    if _interrupted is not None:
        raise KeyboardInterrupt(_interrupted)


def run(main: Callable[[], None], name: str) -> None:
    """Call `main`; map user errors to exit 2 and interrupts (Ctrl-C, SIGTERM) to exit 130.

    The interrupt flag and the signal handlers live for this call only, so a process that runs
    several stages (tests, a warmed driver) never carries one stage's interrupt into the next.
    """
    global _interrupted
    _interrupted = None
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in saved:
        signal.signal(sig, _interrupt)
    try:
        main()
        raise_if_interrupted()  # a lost interrupt still ends the stage 130, not 0
    except LeanmlError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception:
        # A library that catches the KeyboardInterrupt and raises its own error (a database
        # driver, a thread pool) turns Ctrl-C into a crash with a traceback and exit 1: once a
        # signal arrived, any error is the interrupt's.
        if _interrupted is None:
            raise
        print(f"{name}: interrupted", file=sys.stderr)
        sys.exit(130)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        _interrupted = None


def item_arg(registry, family: str, usage: str) -> str:
    """The item a foreach stage runs (argv[1]), checked against its registry."""
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in registry:
        raise LeanmlError(
            f"{family}: must be one of {', '.join(registry)}, got {name!r} (usage: {usage})"
        )
    return name
