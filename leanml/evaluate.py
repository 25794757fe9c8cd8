"""Score candidate models on the test split: the measurements of `measure.score`, the
classification metrics (confusion matrix, macro-F1, per-class accuracy), each sample's
correctness (for the McNemar tests) and the latency, in one runtime for every candidate.

Only `splits.test` is read here; selection elsewhere uses val only. A candidate that is missing,
corrupt or cannot run on the test data is reported by name and skipped with a warning.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from leanml import measure
from leanml.data import Split
from leanml.discover import Candidate
from leanml.errors import LeanmlError


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    matrix = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def classification_scores(matrix: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class accuracy (recall) from a confusion matrix.

    A class with no true and no predicted samples has F1 0 (as scikit-learn's zero_division=0).
    """
    tp = np.diag(matrix).astype(np.float64)
    true = matrix.sum(axis=1).astype(np.float64)
    pred = matrix.sum(axis=0).astype(np.float64)
    recall = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {
        "accuracy": float(tp.sum() / max(matrix.sum(), 1)),
        "macro_f1": float(f1.mean()),
        "per_class_accuracy": recall.tolist(),
    }


def producer(candidate: Candidate) -> str:
    """The stage that writes it: `train`, or one of a foreach family (`compress@prune`), or of
    a matrix over sources (`compress_winner@nas/rl-prune`)."""
    if candidate.source:
        return f"{candidate.family}_winner@{candidate.source}-{candidate.method}"
    if candidate.method != candidate.family:
        return f"{candidate.family}@{candidate.method}"
    return candidate.family


def score(candidate: Candidate, test: Split, n_classes: int, measure_cfg) -> dict[str, Any]:
    """Every number of one candidate on the test split; raises LeanmlError if it cannot run."""
    runner = measure.load_runner(candidate.path, producer(candidate))
    scored = measure.score(runner, candidate.path, candidate.artifact, {"test": test}, n_classes)
    row = dict(scored.row)
    del row["test_accuracy"]  # the same number is `accuracy`, from the confusion matrix
    matrix = confusion(test.y, scored.labels["test"], n_classes)
    return {
        **classification_scores(matrix),
        "confusion": matrix.tolist(),
        "correct": scored.labels["test"] == test.y,
        **row,
        **timing(candidate, runner, test.x[:64], measure_cfg),
    }


# How each candidate reached the latency runtime (the leaderboard's `latency_model`).
OWN_TFLITE = "own .tflite"
FLOAT_EXPORT = "float32 TFLite export"
DECODED_EXPORT = "float32 TFLite export of the decoded k-bit model"


def timing(candidate: Candidate, runner, sample: np.ndarray, cfg) -> dict[str, Any]:
    """Latency in the one runtime (`tflite.runtime()`): a `.tflite` candidate as it is, a Keras
    candidate as its float32 TFLite export (a k-bit `.packed` variant is the float model it
    decodes to: no runtime executes k-bit codes); and, for Keras candidates, the Keras-call p50
    as a secondary column. A model the converter refuses keeps its accuracy, with no latency."""
    from leanml import tflite

    out: dict[str, Any] = {"latency_runtime": tflite.runtime()}
    if isinstance(runner, tflite.TFLiteRunner):
        timed, out["latency_model"] = runner, OWN_TFLITE
    else:
        packed = candidate.artifact.suffix == ".packed" and candidate.artifact != candidate.path
        out["latency_model"] = DECODED_EXPORT if packed else FLOAT_EXPORT
        out["keras_latency_ms_p50"] = runner.latency(sample, cfg)["latency_ms_p50"]
        try:
            content = tflite.convert(runner.model)
            timed = tflite.TFLiteRunner(content)
            out["float_tflite_bytes"] = len(content)  # the baseline's: a ratio basis
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            out["warning"] = (
                f"evaluate: {candidate.name}: no {out['latency_runtime']} latency, the TFLite "
                f"converter refused the model ({type(exc).__name__}: {first})"
            )
            return {**out, **dict.fromkeys(LATENCY_KEYS)}
    return {**out, **timed.latency(sample, cfg)}


LATENCY_KEYS = ("latency_ms_p50", "latency_ms_p95", "throughput_per_s")


def score_all(
    candidates: list[Candidate], test: Split, n_classes: int, measure_cfg, on_warning=print
) -> list[tuple[Candidate, dict[str, Any]]]:
    """Score each candidate; one that fails is reported by name through `on_warning` and skipped."""
    scored = []
    for candidate in candidates:
        try:
            scores = score(candidate, test, n_classes, measure_cfg)
            if "warning" in scores:
                on_warning(scores.pop("warning"))
            scored.append((candidate, scores))
        except LeanmlError as exc:
            on_warning(f"evaluate: skipped {candidate.name}: {exc}")
        except Exception as exc:  # e.g. a layer type measure.flops cannot handle
            on_warning(f"evaluate: skipped {candidate.name}: {type(exc).__name__}: {exc}")
    return scored
