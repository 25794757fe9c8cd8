"""Every path the stages read and write, and every family's members, from `leanml/paths.yaml`."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from types import SimpleNamespace

import yaml

_PATHS_FILE = Path(__file__).with_name("paths.yaml")


def project_root() -> Path:
    """The project directory: `LEANML_ROOT`, else the current directory (where dvc runs stages)."""
    return Path(os.environ.get("LEANML_ROOT", os.getcwd())).resolve()


def _namespace(tree: dict, root: Path) -> SimpleNamespace:
    out = {}
    for key, value in tree.items():
        if key.endswith("files"):  # bare file names inside a per-item folder, see `item`
            out[key] = SimpleNamespace(**value)
        elif isinstance(value, dict):
            out[key] = _namespace(value, root)
        else:
            out[key] = root / value
    return SimpleNamespace(**out)


def item(group: SimpleNamespace, name: str) -> SimpleNamespace:
    """Paths of one item of a foreach stage, e.g. `item(load().search, "ga").trials`.

    `files` live in `<reports>/<name>/`, `model_files` in `<models>/<name>/`.
    """
    out = {k: group.reports / name / v for k, v in vars(group.files).items()}
    out.update({k: group.models / name / v for k, v in vars(group.model_files).items()})
    return SimpleNamespace(**out)


@functools.cache
def _document() -> dict:
    """paths.yaml, read once per process (the C YAML loader when built)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(_PATHS_FILE.read_text(), Loader=loader)


def _tree() -> dict:
    return _document()["paths"]


def members(family: str) -> list[str]:
    """The members of a family (`compress`, `search`, `nas`) in paths.yaml's order: the items
    dvc.yaml runs (`foreach`), known without importing any of them."""
    listed = _document()["members"][family]
    return list(listed)  # a list, or a mapping of member -> its stage wiring (nas)


def load(root: Path | None = None) -> SimpleNamespace:
    """All paths as attributes, e.g. `load().train.model`, absolute under `root`."""
    return _namespace(_tree(), root or project_root())
