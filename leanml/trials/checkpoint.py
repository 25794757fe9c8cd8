"""The resume checkpoint: append-only JSONL, a fingerprint header, then one finished trial a line.

No algorithm serialises its state: after an interruption the runner restarts from the same seed
and replays these rows instead of training, which rebuilds the algorithm's exact state.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from leanml.trials.base import Trial


class Checkpoint:
    """Append-only JSONL: a header line with the fingerprint, then one finished trial per line."""

    def __init__(self, path: Path | None, fingerprint: str):
        self.path, self.fingerprint = path, fingerprint

    def load(self) -> list[Trial]:
        if self.path is None or not self.path.is_file():
            return []
        lines = self.path.read_text().splitlines()
        try:
            header = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            return []
        if header.get("fingerprint") != self.fingerprint:
            return []  # params or data changed: start over
        trials = []
        for line in lines[1:]:
            try:
                trials.append(Trial(**json.loads(line)))
            except (json.JSONDecodeError, TypeError):
                break  # a line cut short by a kill: everything before it is good
        return trials

    def start(self, kept: list[Trial]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as handle:
            handle.write(json.dumps({"fingerprint": self.fingerprint}) + "\n")
            for trial in kept:
                handle.write(json.dumps(asdict(trial)) + "\n")
        os.replace(tmp, self.path)

    def append(self, trial: Trial) -> None:
        if self.path is None:
            return
        with open(self.path, "a") as handle:
            handle.write(json.dumps(asdict(trial)) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
