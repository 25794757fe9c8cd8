"""Run a compress method as its stage does: a method whose settings are searched
(`compress@auto`) searches them first, inside a real MLflow stage run of a temporary store."""

from __future__ import annotations

from pathlib import Path

from leanml import tracking
from leanml.compress import run as sweep


def prepare(
    method, baseline, data, ref: dict, out: Path, tracking_cfg, label: str = "compress@test"
) -> None:
    """`Method.prepare` with the stage's context (a no-op for a method with fixed settings) in
    a stage run named after `label`; its checkpoint (`out/.checkpoint.jsonl`) and trials table
    go under `out`, so two calls with two folders are two runs, and two with one resume."""
    out.mkdir(parents=True, exist_ok=True)
    with tracking.stage_run(label, tracking_cfg) as run:
        ctx = sweep.Context(
            run=run,
            label=label,
            checkpoint=out / ".checkpoint.jsonl",
            fingerprint="test",
            trials=out / "trials.csv",
        )
        method.prepare(baseline, data, ref, ctx)
