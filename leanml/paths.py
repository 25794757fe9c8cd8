"""Every path the stages read and write, resolved once from `leanml/paths.yaml`."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import yaml

_PATHS_FILE = Path(__file__).with_name("paths.yaml")


def project_root() -> Path:
    """The project directory: `LEANML_ROOT`, else the current directory (where dvc runs stages)."""
    return Path(os.environ.get("LEANML_ROOT", os.getcwd())).resolve()


def _namespace(tree: dict, root: Path) -> SimpleNamespace:
    return SimpleNamespace(
        **{
            key: _namespace(value, root) if isinstance(value, dict) else root / value
            for key, value in tree.items()
        }
    )


def load(root: Path | None = None) -> SimpleNamespace:
    """All paths as attributes, e.g. `load().train.model`, absolute under `root`."""
    tree = yaml.safe_load(_PATHS_FILE.read_text())["paths"]
    return _namespace(tree, root or project_root())
