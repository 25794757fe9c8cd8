"""The model a compress stage starts from: the baseline, or a search/NAS winner (params
`compress.sources`).

A source is named as it is listed in params: `search/<algo>` or `nas/<strategy>` (that stage's
kept model, `models/<name>/best.keras`), or a bare family, `search` or `nas`: the member whose
kept model has the highest *val* accuracy (its best.json's `val_accuracy`; a tie goes to the
first name in alphabetical order). The test split is never read here. No Keras either: the
stage decides which file to load before it imports TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from leanml import paths
from leanml.errors import LeanmlError

BASELINE = "train"
# the family whose val-best a bare name picks, and the stages that write its members
FAMILIES = ("search", "nas")
ARROW = " → "


@dataclass(frozen=True)
class Source:
    """One source model and how it was chosen."""

    name: str  # as listed in compress.sources: "train", "nas/rl", or "nas" (the val-best)
    member: str  # the stage folder the model is in: "train", "nas/rl" (also for "nas")
    model: Path
    val_accuracy: float | None  # the kept model's, from best.json (None for the baseline)

    @property
    def label(self) -> str:
        """How a chain names it: `nas/rl`, or `nas/rl (best nas)` when picked by val accuracy."""
        return self.member if self.name == self.member else f"{self.member} (best {self.name})"

    def chain(self, step: str) -> str:
        """`nas/rl → prune/magnitude_s90` for step `prune/magnitude_s90`; the step alone for the
        baseline (its candidates keep their names, `compress/prune/magnitude_s90`)."""
        return step if self.name == BASELINE else f"{self.label}{ARROW}{step}"


def describe(src: Source) -> dict[str, Any]:
    """source.json beside a winner's results: which model was compressed and why that one."""
    try:  # relative to the project, as dvc.yaml writes paths
        shown = str(src.model.resolve().relative_to(paths.project_root()))
    except ValueError:
        shown = str(src.model)
    return {
        "source": src.name,
        "member": src.member,
        "label": src.label,
        "model": shown,
        "val_accuracy": src.val_accuracy,
        "selected_by": "val_accuracy" if src.name != src.member else "named",
    }


def producer(member: str) -> str:
    """The stage that writes a member's model: `nas/rl` -> `nas@rl`."""
    family, _, item = member.partition("/")
    return f"{family}@{item}" if item else family


def _member(member: str, root: SimpleNamespace) -> tuple[Path, float]:
    """A search/NAS member's kept model and its val accuracy; a missing one names its stage."""
    family, _, item = member.partition("/")
    out = paths.item(getattr(root, family), item)
    stage = producer(member)
    for path in (out.best, out.model):
        if not path.is_file():
            raise LeanmlError(
                f"compress: source {member!r} has no {path.name} ({path}); it is written by "
                f"the {stage} stage: run `dvc repro {stage}` first"
            )
    try:
        val = json.loads(out.best.read_text())["val_accuracy"]
        return out.model, float(val)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LeanmlError(
            f"compress: {out.best} has no readable val_accuracy ({type(exc).__name__}: {exc}); "
            f"rerun `dvc repro {stage}`"
        ) from exc


def resolve(name: str, root: SimpleNamespace | None = None) -> Source:
    """The source `name` (validated by params: train, <family>/<member> or a bare family)."""
    root = root or paths.load()
    if name == BASELINE:
        return Source(name, BASELINE, root.train.model, None)
    if "/" in name:
        model, val = _member(name, root)
        return Source(name, name, model, val)
    if name not in FAMILIES:
        raise LeanmlError(f"compress: unknown source {name!r}")
    found = {f"{name}/{m}": _member(f"{name}/{m}", root) for m in paths.members(name)}
    # highest val accuracy; among equals the first member name in alphabetical order
    member = min(found, key=lambda m: (-found[m][1], m))
    return Source(name, member, *found[member])
