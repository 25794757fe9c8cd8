"""The whole params.yaml: the `Params` model, `parse`, `load` and its duplicate-key YAML loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from leanml.errors import LeanmlError
from leanml.params.base import Base
from leanml.params.compress import Compress
from leanml.params.evaluate import Evaluate
from leanml.params.execution import Execution
from leanml.params.messages import message
from leanml.params.nas import Nas
from leanml.params.prepare import Prepare
from leanml.params.schema import Section
from leanml.params.search import Search
from leanml.params.train import Train


class Params(Section):
    """The whole params.yaml."""

    base: Base = Base()
    prepare: Prepare = Prepare()
    train: Train = Train()
    search: Search = Search()
    nas: Nas = Nas()
    compress: Compress = Compress()
    evaluate: Evaluate = Evaluate()
    execution: Execution = Execution()


def parse(raw: Any, source: str = "params.yaml") -> Params:
    """Validate a params mapping; raise `LeanmlError` listing every bad key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise LeanmlError(f"{source}: must be a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        # dict.fromkeys: one line per problem even when a union reports it per member
        lines = list(dict.fromkeys(message(err, Params) for err in exc.errors()))
        raise LeanmlError("\n".join(f"{source}: {line}" for line in lines)) from None


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """yaml.safe_load's loader (the fast C one when built) that refuses duplicate keys."""


def _mapping_without_duplicates(loader: _Loader, node: yaml.MappingNode) -> dict:
    seen = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key_node.value!r} (the last one would silently win)",
                    key_node.start_mark,
                )
            seen.add(key)
    return loader.construct_mapping(node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def load(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as handle:
            raw = yaml.load(handle, Loader=_Loader)
    except FileNotFoundError:
        raise LeanmlError(f"{path}: file not found (run stages from the project root)") from None
    except yaml.YAMLError as exc:
        raise LeanmlError(f"{path}: not valid YAML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise LeanmlError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise LeanmlError(
            f"{path}: cannot be read ({exc.strerror or type(exc).__name__})"
        ) from None
    return parse(raw, source=path.name)
