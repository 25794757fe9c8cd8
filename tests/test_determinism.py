"""Two runs of the whole pipeline with the same params give byte-identical results.

The shared end-to-end project (tests/e2e.py, on test_pipeline.py's tiny params) runs the
pipeline twice: once with `dvc repro`, and once more in a second copy, alongside, with every
stage run in a forked child of one warmed-up process and another PYTHONHASHSEED. Nothing may
depend on the process, the hash seed, thread scheduling or the clock: every metrics file that
dvc.yaml declares must be byte-identical except the `timings.json` files (wall-clock values,
kept apart on purpose), and so must every other file DVC tracks under data/, models/ and
reports/, except figures, Markdown and LaTeX (drawn from latencies too) and, in the tables and
resume checkpoints, the timing columns. RELIABILITY.md (Determinism) says what is and is not
deterministic.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _declared_metrics(root: Path) -> list[str]:
    """Every metrics file dvc.yaml declares (foreach stages expanded), as DVC reads it."""
    from dvc.repo import Repo

    return sorted(
        str(out.def_path)
        for stage in Repo(str(root)).index.stages
        for out in stage.outs
        if out.metric
    )


# Timing columns of the tables (trials.csv, results.csv, leaderboard.csv); and, in the evaluate
# tables, whether a model is on the accuracy-vs-latency front (decided by measured latency).
TIMING_COLUMNS = {
    "seconds",
    "latency_ms_p50",
    "latency_ms_p95",
    "throughput_per_s",
    "keras_latency_ms_p50",
}
LATENCY_FRONT = {"pareto_latency", "front"}
# Figures, Markdown and LaTeX are drawn from numbers that include latencies: not compared.
NOT_COMPARED = (".png", ".md", ".tex")


def _table(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if path.parent.name == "evaluate" and path.name == "pareto.csv":
        rows = [r for r in rows if r["front"] != "latency"]
    drop = TIMING_COLUMNS | LATENCY_FRONT
    return [{k: v for k, v in row.items() if k not in drop} for row in rows]


def _checkpoint(path: Path) -> list[dict]:
    from leanml.io import is_timing

    def clean(tree):
        if isinstance(tree, dict):
            return {k: clean(v) for k, v in tree.items() if not is_timing(k)}
        return tree

    return [clean(json.loads(line)) for line in path.read_text().splitlines()]


def _same(a: Path, b: Path) -> bool:
    if a.suffix == ".csv":
        return _table(a) == _table(b)
    if a.suffix == ".jsonl":  # a search's resume checkpoint: trial seconds differ
        return _checkpoint(a) == _checkpoint(b)
    return a.read_bytes() == b.read_bytes()


def test_two_runs_are_identical(e2e_pipeline):
    e2e_pipeline.wait_twin()
    first, twin = e2e_pipeline.first_outputs, e2e_pipeline.twin

    declared = _declared_metrics(e2e_pipeline.root)
    timings = [f for f in declared if Path(f).name == "timings.json"]
    assert "reports/evaluate/metrics.json" in declared and "reports/train/timings.json" in timings

    def files(root: Path) -> set[str]:
        found = (p for part in ("data", "models", "reports") for p in (root / part).rglob("*"))
        return {str(p.relative_to(root)) for p in found if p.is_file() and p.name != ".gitignore"}

    assert files(first) == files(twin)
    assert set(declared) <= files(first)  # every declared metrics file was written
    compared = sorted(
        f for f in files(first) if not f.endswith(NOT_COMPARED) and Path(f).name != "timings.json"
    )
    assert set(declared) - set(timings) <= set(compared)
    assert {Path(f).suffix for f in compared} >= {".keras", ".tflite", ".packed", ".npz"}
    differ = [f for f in compared if not _same(first / f, twin / f)]
    assert not differ, f"differ between two runs with the same params: {differ}"
