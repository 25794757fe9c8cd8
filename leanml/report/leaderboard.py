"""The leaderboard: scored candidates ranked, Pareto fronts flagged, headline numbers for DVC."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leanml import glossary
from leanml.discover import BASELINE_FAMILY, Candidate
from leanml.errors import LeanmlError
from leanml.report import uncertainty
from leanml.report.pareto import non_dominated

COLUMNS = [
    "rank",
    "name",
    "family",
    "method",
    "variant",
    "format",
    "accuracy",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "macro_f1",
    "delta_pp",
    "mcnemar_p",
    "mcnemar_p_holm",
    "significant",
    "params",
    "nonzero_params",
    "flops",
    "file_bytes",
    "gzip_bytes",
    "artifact_bytes",
    "artifact_gzip_bytes",
    "size_bytes",
    "ratio_weights",
    "ratio_tflite",
    "compression_ratio",
    "latency_ms_p50",
    "latency_ms_p95",
    "throughput_per_s",
    "latency_runtime",
    "latency_model",
    "keras_latency_ms_p50",
    "float_tflite_bytes",
    "pareto_size",
    "pareto_latency",
    "front",
    "setting",
    "path",
]
PARETO_COLUMNS = ["front", "order", "name", "family", "method", "accuracy", "cost_metric", "cost"]
# The two trade-offs: accuracy (higher is better) against each cost (lower is better).
FRONTS = {"size": "size_bytes", "latency": "latency_ms_p50"}


def _sort_key(row: dict) -> tuple:
    # Ties are broken by FLOPs, not latency: a wall-clock tie-break would let the ranking (and
    # the best-of names in metrics.json) change between two identical runs.
    flops = row.get("flops")
    return (-row["accuracy"], row["size_bytes"], math.inf if flops is None else flops, row["name"])


def baseline_row(rows: Sequence[dict]) -> dict | None:
    """The baseline: the `train` family's candidate (the one named `train` if several)."""
    found = [r for r in rows if r["family"] == BASELINE_FAMILY]
    if not found:
        return None
    return next((r for r in found if r["name"] == BASELINE_FAMILY), found[0])


def build(scored: Sequence[tuple[Candidate, dict[str, Any]]], size: str) -> list[dict[str, Any]]:
    """One row per scored candidate, ranked by test accuracy (then smaller, then fewer FLOPs)."""
    if not scored:
        raise LeanmlError(
            "evaluate: no candidate model could be scored; run the stages that write models/ "
            "first (`dvc repro`), or check evaluate.families"
        )
    rows = []
    for candidate, scores in scored:
        rows.append(
            {
                "name": candidate.name,
                "family": candidate.family,
                "method": candidate.method,
                "variant": candidate.variant,
                "format": candidate.format,
                **{k: v for k, v in scores.items() if k in COLUMNS},
                "size_bytes": scores[size],
                # in the order of the results table: its first setting is the method's knob
                "setting": json.dumps(candidate.setting) if candidate.setting else "",
                "path": str(candidate.path),
            }
        )
    _compare(rows, [scores["correct"] for _, scores in scored])
    for front, cost in FRONTS.items():
        timed = [r for r in rows if r[cost] is not None]  # a model the converter refused
        flags = non_dominated([(r["accuracy"], r[cost]) for r in timed])
        for row in rows:
            row[f"pareto_{front}"] = False
        for row, flag in zip(timed, flags, strict=True):
            row[f"pareto_{front}"] = flag
    rows.sort(key=_sort_key)
    for i, row in enumerate(rows, 1):
        row["rank"] = i
    return rows


def _compare(rows: list[dict], correct: Sequence) -> None:
    """Deltas, the three compression ratios and the uncertainty columns of every row against the
    baseline: the 95% Wilson interval of its accuracy, the exact McNemar p-value of its
    per-sample correctness against the baseline's, that p Holm-adjusted over all candidates, and
    `significant` (adjusted p < 0.05). Without a baseline these are left empty (the interval
    is not)."""
    base = baseline_row(rows)
    base_correct = correct[rows.index(base)] if base is not None else None
    for row, right in zip(rows, correct, strict=True):
        row["accuracy_ci_low"], row["accuracy_ci_high"] = uncertainty.wilson(
            int(right.sum()), len(right)
        )
        row["mcnemar_p"] = row["delta_pp"] = None
        row["ratio_weights"] = row["ratio_tflite"] = row["compression_ratio"] = None
        if base is None:
            continue
        row["delta_pp"] = 100 * (row["accuracy"] - base["accuracy"])
        # ratios of the baseline's bytes on three bases to this row's size: its float32
        # weights (4 × parameters, Han et al.'s basis: the primary one), its float32 TFLite
        # export, and (secondary) its own file as the train stage wrote it
        row["ratio_weights"] = 4 * base["params"] / row["size_bytes"]
        if base.get("float_tflite_bytes"):
            row["ratio_tflite"] = base["float_tflite_bytes"] / row["size_bytes"]
        row["compression_ratio"] = base["size_bytes"] / row["size_bytes"]
        if row is not base:
            row["mcnemar_p"] = uncertainty.mcnemar(right, base_correct)
    adjusted = uncertainty.holm([r["mcnemar_p"] for r in rows])
    for row, p in zip(rows, adjusted, strict=True):
        row["mcnemar_p_holm"] = p
        row["significant"] = None if p is None else bool(p < uncertainty.ALPHA)


def pareto_rows(rows: Sequence[dict]) -> list[dict[str, Any]]:
    """The non-dominated candidates of each front, from the cheapest to the most accurate."""
    out = []
    for front, cost in FRONTS.items():
        members = sorted(
            (r for r in rows if r[f"pareto_{front}"]), key=lambda r: (r[cost], -r["accuracy"])
        )  # (flagged rows all have a cost)
        for order, row in enumerate(members, 1):
            out.append(
                {
                    "front": front,
                    "order": order,
                    "name": row["name"],
                    "family": row["family"],
                    "method": row["method"],
                    "accuracy": row["accuracy"],
                    "cost_metric": cost,
                    "cost": row[cost],
                }
            )
    return out


def smallest_within(rows: Sequence[dict], within_pp: float) -> dict | None:
    """The smallest candidate whose accuracy is at most `within_pp` points below the baseline."""
    base = baseline_row(rows)
    if base is None:
        return None
    floor = base["accuracy"] - within_pp / 100 - 1e-12
    eligible = [r for r in rows if r["accuracy"] >= floor]
    return min(eligible, key=lambda r: (r["size_bytes"], -r["accuracy"], r["name"]))


SUMMARY = (
    "name",
    "accuracy",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "macro_f1",
    "delta_pp",
    "mcnemar_p",
    "size_bytes",
    "ratio_weights",
    "ratio_tflite",
    "compression_ratio",
    "latency_ms_p50",
)


def _summary(row: dict) -> dict[str, Any]:
    """A pick's leaderboard row under glossary names (`accuracy` -> `test_accuracy`)."""
    return glossary.as_metrics(row, SUMMARY)


def headline(rows: Sequence[dict], within_pp: float, n_test: int | None = None) -> dict[str, Any]:
    """Flat numbers for `dvc metrics show` / `dvc exp show` (and MLflow): the baseline, the best
    candidate, the smallest within `within_pp` of the baseline, and the best of each family and
    of each method (`by_method.<family>/<method>.*`, what multi-seed studies compare); the test
    split's size, what one sample is worth, and whether the best differs significantly from the
    baseline (McNemar, Holm-adjusted)."""
    out: dict[str, Any] = {"candidates": len(rows), "within_pp": within_pp}
    if n_test:
        out["n_test"] = n_test
        out["one_sample_pp"] = uncertainty.one_sample_pp(n_test)
    significant = rows[0].get("significant")
    out["best.significant"] = None if significant is None else int(significant)
    for front in FRONTS:
        out[f"pareto.{front}_front"] = sum(bool(r[f"pareto_{front}"]) for r in rows)
    parts: list[tuple[str, dict | None]] = [
        ("baseline", baseline_row(rows)),
        ("best", rows[0]),
        ("smallest_within_pp", smallest_within(rows, within_pp)),
    ]
    for family in sorted({r["family"] for r in rows}):
        parts.append((f"by_family.{family}", next(r for r in rows if r["family"] == family)))
    for family, method in sorted({(r["family"], r["method"]) for r in rows}):
        if method != family:
            best = next(r for r in rows if r["family"] == family and r["method"] == method)
            parts.append((f"by_method.{family}/{method}", best))
    for prefix, row in parts:
        if row is not None:
            out.update({f"{prefix}.{k}": v for k, v in _summary(row).items()})
    # no nulls: `dvc exp show` drops them, and a key that is absent says the same (the
    # baseline has no McNemar p against itself, a non-finite ratio has no value)
    return {
        k: v
        for k, v in out.items()
        if v is not None and not (isinstance(v, float) and not math.isfinite(v))
    }


def per_class_rows(
    scored: Sequence[tuple[Candidate, dict[str, Any]]], order: Sequence[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Per-class test accuracy of every candidate, in leaderboard order, and the columns."""
    by_name = {c.name: s for c, s in scored}
    n = len(next(iter(by_name.values()))["per_class_accuracy"])
    columns = ["name", *(f"class_{k}" for k in range(n))]
    rows = [
        {
            "name": name,
            **{f"class_{k}": v for k, v in enumerate(by_name[name]["per_class_accuracy"])},
        }
        for name in order
    ]
    return rows, columns


def relative(path: str | Path, root: Path) -> str:
    """A path as shown in reports: relative to the project root when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
