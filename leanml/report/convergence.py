"""Convergence curves: read each method's `convergence.csv`, overlay them on one figure."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from leanml.errors import LeanmlError
from leanml.io import read_json, write_json
from leanml.paths import item
from leanml.report.figures import plot_convergence


def convergence_curves(reports_root: Path, family: str) -> dict[str, list[dict]]:
    """`reports/<family>/<method>/convergence.csv` of every method: evaluation, best_score and,
    when the file has it, epochs (training epochs spent so far). Files without those columns
    by name, or with a value that is not a number, are skipped."""
    curves = {}
    for path in sorted((reports_root / family).glob("*/convergence.csv")):
        try:
            with open(path, newline="") as handle:
                raw = list(csv.DictReader(handle))
        except (OSError, csv.Error):
            continue
        if not raw or not {"evaluation", "best_score"} <= set(raw[0]):
            continue
        keys = ("evaluation", "epochs") if "epochs" in raw[0] else ("evaluation",)
        try:
            curves[path.parent.name] = [
                {**{k: int(float(r[k])) for k in keys}, "best_score": float(r["best_score"])}
                for r in raw
            ]
        except (TypeError, ValueError):
            continue
    return curves


def convergence_report(group, names: Iterable[str], title: str) -> list[str]:
    """Overlay the convergence curves of every item of a search-like family that has one.

    `group` is `paths.load().search` or `.nas`; writes its `figure` and `summary` (headline
    metrics per item) and returns the items found.
    """
    names = list(names)
    curves, summary = {}, {}
    for name in names:
        out = item(group, name)
        if not out.convergence.is_file():
            continue
        with open(out.convergence) as handle:
            curves[name] = list(csv.DictReader(handle))
        metrics = read_json(out.metrics)
        keys = (
            "best_trial.score",
            "best_trial.val_accuracy",  # the winner's trial
            "refit.val_accuracy",  # its refit at full fidelity
            "best.val_accuracy",  # the kept model (the refit, or the baseline when higher)
            "winner_is_baseline",
            "evaluations",
            "epochs_spent",
            "pruned_trials",
            "evaluations_to_best",
        )
        summary[name] = {k: metrics[k] for k in keys if k in metrics}
    if not curves:
        family = group.reports.name
        raise LeanmlError(
            f"no {family} results yet: none of {group.reports}/{{{','.join(names)}}}/"
            f"{group.files.convergence} exists; run `dvc repro {family}`"
        )
    plot_convergence(curves, group.figure, title)
    write_json(group.summary, summary)
    return sorted(curves)
