"""The building blocks of every params section: typed fields with readable rules, `Section`."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "selu", "gelu", "swish")
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")


class KeyError_(ValueError):
    """A cross-field check that failed, pointing at the key (relative to its section) to blame."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key
        self.message = message


def _bounds(ge=None, gt=None, le=None, lt=None) -> str:
    parts = []
    if ge is not None:
        parts.append(f"≥ {ge}")
    if gt is not None:
        parts.append(f"> {gt}")
    if le is not None:
        parts.append(f"≤ {le}")
    if lt is not None:
        parts.append(f"< {lt}")
    return " and ".join(parts)


def Int(default: int, *, ge: int | None = 1, le: int | None = None) -> Any:
    """An integer field (no floats, strings or booleans)."""
    text = "an integer " + _bounds(ge=ge, le=le)
    return Field(default, strict=True, ge=ge, le=le, description=text.strip())


def Float(default: float, *, ge=None, gt=None, le=None, lt=None) -> Any:
    """A finite number field; integers are accepted."""
    text = "a number " + _bounds(ge=ge, gt=gt, le=le, lt=lt)
    return Field(
        default,
        strict=True,
        ge=ge,
        gt=gt,
        le=le,
        lt=lt,
        allow_inf_nan=False,
        description=text.strip(),
    )


def Choice(default: str, choices: tuple[str, ...]) -> Any:
    """One of a fixed set of names."""
    return Field(default, description="one of " + ", ".join(repr(c) for c in choices))


def IntList(default: list[int], *, ge: int = 1, min_length: int = 1) -> Any:
    """A list of integers, each ≥ ge."""
    text = f"a list of at least {min_length} integer(s) ≥ {ge}"
    return Field(default, min_length=min_length, description=text)


PosInt = Annotated[int, Field(strict=True, ge=1)]


def NumberList(default: list, text: str, *, min_length: int = 1) -> Any:
    """A list of numbers; `text` says what each must be."""
    return Field(default, min_length=min_length, description=f"a list of {text}")


def ChoiceList(default: list[str], choices: tuple[str, ...], *, min_length: int = 1) -> Any:
    """A list of names from a fixed set."""
    names = ", ".join(repr(c) for c in choices)
    least = f"at least {min_length} of " if min_length else "any of "
    return Field(default, min_length=min_length, description=f"a list of {least}{names}")


class Section(BaseModel):
    """Base of every params section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)
