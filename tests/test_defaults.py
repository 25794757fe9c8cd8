"""One source of defaults: params.yaml holds every key, each at the schema's default.

params.yaml carries the sized defaults the README documents (`make run` within 10 minutes); the
typed schema (leanml/params/) gives the same value to a key a user deletes, to `params.parse({})`
and to `Params()` in tests and benchmarks. So a run never depends on which of the two a value
came from, and deleting a line from params.yaml changes nothing silently.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from leanml import params
from tests.conftest import ROOT

# Keys whose params.yaml value may differ from the schema's default, each with the reason: the
# one place to list them. None today.
ALLOWED: dict[str, str] = {}


def _differ(a: Any, b: Any) -> bool:
    """Values that are not the same setting (1 == True in Python, not in params.yaml)."""
    return a != b or isinstance(a, bool) != isinstance(b, bool)


def _values(given: Any, default: Any, path: str) -> list[str]:
    if isinstance(given, dict) and isinstance(default, dict):
        out = []
        for key in list(given) + [k for k in default if k not in given]:
            where = f"{path}.{key}" if path else str(key)
            out += _values(given.get(key, "<absent>"), default.get(key, "<absent>"), where)
        return out
    if _differ(given, default):
        return [f"{path}: params.yaml {given!r}, schema {default!r}"]
    return []


def _missing(model: type[BaseModel], raw: Any, path: str) -> list[str]:
    """Schema keys that params.yaml does not write out (a section's fields, recursively)."""
    out = []
    for name, field in model.model_fields.items():
        where = f"{path}.{name}" if path else name
        if not isinstance(raw, dict) or name not in raw:
            out.append(f"{where}: missing from params.yaml (schema default {field.default!r})")
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            out += _missing(field.annotation, raw[name], where)
    return out


def differences(raw: dict) -> list[str]:
    """Every way a params.yaml mapping departs from the schema's defaults, one line per key:
    a value that differs (key, params.yaml value, schema value) or a key it leaves out."""
    given = params.parse(raw).model_dump()
    found = _values(given, params.Params().model_dump(), "") + _missing(params.Params, raw, "")
    return [line for line in found if line.split(":")[0] not in ALLOWED]


def _params_yaml() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_params_yaml_and_the_schema_defaults_agree():
    found = differences(_params_yaml())
    assert not found, "params.yaml and leanml/params disagree:\n" + "\n".join(found)


def test_a_changed_value_and_a_deleted_key_are_named():
    raw = _params_yaml()
    raw["train"]["epochs"] += 1
    raw["search"]["fidelity"]["kind"] = "none"
    del raw["nas"]["meta"]["synthetic_tasks"]
    epochs = params.Params().train.epochs
    assert differences(raw) == [
        f"train.epochs: params.yaml {epochs + 1}, schema {epochs}",
        "search.fidelity.kind: params.yaml 'none', schema 'asha'",
        "nas.meta.synthetic_tasks: missing from params.yaml (schema default 1)",
    ]
