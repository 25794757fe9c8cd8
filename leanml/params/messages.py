"""One line per bad value: the full key path, what is allowed and what was given."""

from __future__ import annotations

from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from leanml.params.schema import KeyError_


def _field_at(model: type[BaseModel], loc: tuple) -> tuple[str, FieldInfo | None, Any]:
    """Walk `loc` through nested models and mappings.

    Returns the dotted key path, the last field passed, and the model class reached at the end
    (None when the walk ended inside a plain value). Union-member tags that pydantic adds to
    `loc` (e.g. 'int' for `int | None`) are skipped.
    """
    path, field, current = "", None, model
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        if get_origin(current) is dict:
            path += f".{part}"
            current = get_args(current)[1]
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue  # a union tag inside a plain value
        path = f"{path}.{part}" if path else str(part)
        field = current.model_fields.get(str(part))
        current = field.annotation if field is not None else None
    return path, field, current


def message(err: dict, model: type[BaseModel]) -> str:
    """One pydantic error of validating `model` as `key.path: must be <allowed>, got <value>`."""
    loc = tuple(p for p in err["loc"] if p != "function-after")
    path, field, _ = _field_at(model, loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        parent_path, _, owner = _field_at(model, loc[:-1])
        allowed = ", ".join(owner.model_fields) if issubclass_safe(owner) else "none"
        where = f" in {parent_path}" if parent_path else ""
        return f"{path}: unknown key{where}; allowed keys are {allowed}"
    ctx_error = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_error, KeyError_):
        return f"{path}.{ctx_error.key}: {ctx_error.message}" if path else ctx_error.message
    allowed = field.description if field is not None and field.description else err["msg"]
    if kind == "missing":
        return f"{path}: missing; must be {allowed}"
    if field is not None and issubclass_safe(field.annotation) and kind.endswith("_type"):
        return f"{path}: must be a mapping of keys, got {err['input']!r}"
    return f"{path}: must be {allowed}, got {err['input']!r}"


def issubclass_safe(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)
