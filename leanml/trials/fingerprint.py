"""What a resume checkpoint is valid for: the params a stage used, its data and extra inputs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def fingerprint(used: dict[str, Any], data_sha256: str, *files: Path) -> str:
    """Hash of `used` (the params sections a stage read), the data's hash and `files`' bytes.

    `base.tracking` is left out: where runs are recorded never changes a trial, so pointing
    MLflow elsewhere must not restart a search.
    """
    kept = dict(used)
    if isinstance(kept.get("base"), dict):
        kept["base"] = {k: v for k, v in kept["base"].items() if k != "tracking"}
    payload = {
        **kept,
        "data": data_sha256,
        "files": [hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in files],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
