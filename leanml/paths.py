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


def load(root: Path | None = None) -> SimpleNamespace:
    """All paths as attributes, e.g. `load().train.model`, absolute under `root`."""
    tree = yaml.safe_load(_PATHS_FILE.read_text())["paths"]
    return _namespace(tree, root or project_root())
