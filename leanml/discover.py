"""Find every candidate model the pipeline produced: runnable files, their artifacts, labels.

Candidates are discovered from the model folders, never listed: `models/<stage>/*` (e.g. the
baseline `models/train/model.keras`) and `models/<stage>/<method>/*` (e.g.
`models/compress/prune/magnitude_s50.keras`, `models/search/ga/best.keras`). A new method or a
new stage that writes models there is picked up without edits. What counts:

- `.keras` and `.tflite` files are runnable candidates (scored by `leanml.evaluate`);
- a compact encoding with the same stem as a runnable file (`.packed`, `.npz`, `.gz`, `.zip`,
  `.bin`) is that model's *artifact*: its bytes are the model's real compressed size;
- an encoding without a runnable twin is reported with its size only (it cannot be scored);
- anything else (checkpoints, hidden temp files) is ignored.

The labels (the setting of a compressed variant, the configuration of a search's best model)
come from `reports/<stage>/<method>/settings.json` (written by the compress stage: the method's
setting columns and each variant's values) and `best.json` when present.

Deeper folders hold a stage's work on another stage's model: `models/compress/nas/rl/prune/*`
is prune applied to NAS's rl winner (params compress.sources). Its candidates are named by the
chain, `nas/rl → prune/magnitude_s90`, with the source as `source.json` beside the results
describes it (e.g. `nas/rl (best nas)` when it was picked by val accuracy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leanml import measure

RUNNABLE = (".keras", ".tflite")
ENCODINGS = (".packed", ".npz", ".gz", ".zip", ".bin")
# Stem names that mean "the one model of this folder": the candidate is named after the folder.
SOLE_STEMS = ("best", "model")
BASELINE_FAMILY = "train"
# Beside a compress method's results.csv: {"columns": [...], "variants": {name: {column: value}}}
SETTINGS_FILE = "settings.json"
# Beside a compressed winner's results: {"label": "nas/rl", ...} (leanml.sources.describe)
SOURCE_FILE = "source.json"
ARROW = " → "


@dataclass
class Candidate:
    """One runnable model file and what is known about it before scoring."""

    name: str  # e.g. "train", "compress/prune/magnitude_s50", "search/ga"
    family: str  # the stage folder: train, compress, search, nas, ...
    method: str  # the method folder (prune, ga, rl), or the family for files at the top
    variant: str  # the file stem
    path: Path
    artifact: Path  # the most compact real file of this model (the model file itself if none)
    setting: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the model the method started from when not the baseline: "nas/rl"

    @property
    def format(self) -> str:
        return self.path.suffix.lstrip(".")


@dataclass
class Discovery:
    """What `discover` found: candidates, size-only files and why anything was skipped."""

    candidates: list[Candidate]
    size_only: list[dict[str, Any]]
    warnings: list[str]


def _stage_folders(models_root: Path, families: list[str] | None) -> list[Path]:
    if not models_root.is_dir():
        return []
    found = sorted(p for p in models_root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if families is None:
        return found
    by_name = {p.name: p for p in found}
    return [by_name[name] for name in families if name in by_name]


def _settings_from_reports(reports: Path) -> dict[str, dict[str, Any]]:
    """Variant name → setting, from settings.json (compress) and best.json (search, NAS)."""
    out: dict[str, dict[str, Any]] = {}
    sidecar = reports / SETTINGS_FILE
    if sidecar.is_file():
        try:
            saved = json.loads(sidecar.read_text())
            columns, variants = saved["columns"], saved["variants"]
            for variant, setting in variants.items():
                # in the method's column order (its knob first), empty settings left out
                out[variant] = {c: setting[c] for c in columns if setting.get(c) not in (None, "")}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # labels are optional; the scores do not depend on them
    best = reports / "best.json"
    if best.is_file():
        try:
            saved = json.loads(best.read_text())
            config = saved.get("config")
            if saved.get("source") == "baseline":
                # the stage kept the train stage's model (its refit winner scored lower on val):
                # the file is the baseline, not the winner's configuration
                config = {"kept": "baseline"}
        except (OSError, ValueError, AttributeError):
            config = None
        if isinstance(config, dict):
            for stem in SOLE_STEMS:
                out.setdefault(stem, dict(config))
    return out


def _source_label(source: str, reports: Path) -> str:
    """How a chain names its source: source.json's label, else the folder path (`nas/rl`)."""
    try:
        label = json.loads((reports / SOURCE_FILE).read_text())["label"]
        return label if isinstance(label, str) and label else source
    except (OSError, ValueError, KeyError, TypeError):
        return source


def _method_folder(
    folder: Path, family: str, method: str, reports: Path, discovery: Discovery, source: str = ""
) -> None:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    runnable = [p for p in files if p.suffix in RUNNABLE]
    encodings = [p for p in files if p.suffix in ENCODINGS or p.name.endswith(".tar.gz")]
    settings = _settings_from_reports(reports)
    stems = {p.stem for p in runnable}
    top = family == method
    chain = f"{_source_label(source, reports)}{ARROW}" if source else ""
    for path in runnable:
        twins = [e for e in encodings if e.name.split(".")[0] == path.stem]
        artifact = min([path, *twins], key=lambda p: p.stat().st_size)
        if source:  # the chain names it: source, then the method's step
            step = method if path.stem in SOLE_STEMS else f"{method}/{path.stem}"
            name = f"{chain}{step}"
        elif path.stem in SOLE_STEMS:
            name = family if top else f"{family}/{method}"
        else:
            name = f"{family}/{path.stem}" if top else f"{family}/{method}/{path.stem}"
        discovery.candidates.append(
            Candidate(
                name=name,
                family=family,
                method=method,
                variant=path.stem,
                path=path,
                artifact=artifact,
                setting=settings.get(path.stem, {}),
                source=source,
            )
        )
    for enc in encodings:
        if enc.name.split(".")[0] not in stems:
            discovery.size_only.append(
                {
                    "file": str(enc),
                    "family": family,
                    "method": method,
                    **measure.file_bytes(enc),
                    "why": "a compact encoding with no runnable .keras/.tflite twin",
                }
            )


def _subfolders(
    folder: Path, family: str, reports: Path, discovery: Discovery, parents: list[str]
) -> None:
    """Every folder below `folder`: the last part of its path is the method, the ones before
    it (if any) the source it started from (`models/compress/nas/rl/prune`: source nas/rl)."""
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if sub.name.startswith("."):
            continue
        parts = [*parents, sub.name]
        here = reports / sub.name
        _method_folder(sub, family, sub.name, here, discovery, source="/".join(parents))
        _subfolders(sub, family, here, discovery, parts)


def discover(models_root: Path, reports_root: Path, families: list[str] | None = None) -> Discovery:
    """Every candidate under `models_root`, restricted to `families` (stage folder names)."""
    discovery = Discovery([], [], [])
    folders = _stage_folders(models_root, families)  # a family without a folder is skipped
    for stage_folder in folders:
        family = stage_folder.name
        _method_folder(
            stage_folder, family, family, reports_root / family, discovery
        )  # files at the top, e.g. models/train/model.keras
        _subfolders(stage_folder, family, reports_root / family, discovery, [])
    names = [c.name for c in discovery.candidates]
    for c in discovery.candidates:  # e.g. best.keras and best.tflite side by side
        if names.count(c.name) > 1:
            c.name = f"{c.name}.{c.format}"
    return discovery
