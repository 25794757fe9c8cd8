"""Run one method's sweep and measure every variant on the same footing as the baseline."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from leanml import glossary, measure
from leanml.compress.base import Method, Variant, recording
from leanml.compress.encode import encode
from leanml.data import Splits
from leanml.io import atomic_path
from leanml.tflite import convert
from leanml.train import seed_everything

METRICS = (
    "val_accuracy",
    "test_accuracy",
    "delta_pp",
    "params",
    "nonzero_params",
    "flops",
    "file_bytes",
    "gzip_bytes",
    "artifact_bytes",
    "artifact_gzip_bytes",
    "ratio_weights",
    "ratio_tflite",
    "gzip_ratio_tflite",
    "compression_ratio",
    "gzip_compression_ratio",
    "packed_ratio",
    "bits_per_nonzero",
    "seconds",
)
# What metrics.json carries per variant (the rest is in results.csv and MLflow).
HEADLINE = (
    "val_accuracy",
    "test_accuracy",
    "delta_pp",
    "nonzero_params",
    "flops",
    "artifact_bytes",
    "artifact_gzip_bytes",
    "ratio_weights",
    "ratio_tflite",
    "gzip_ratio_tflite",
    "compression_ratio",
    "seconds",  # wall clock: to timings.json
)


@dataclass(frozen=True)
class Context:
    """What a method that searches its settings (`Method.prepare`) gets from the stage."""

    run: Any  # the stage's MLflow run (`tracking.StageRun`): trials are its nested runs
    label: str  # e.g. compress@auto, in logs and errors
    checkpoint: Path  # the resume checkpoint (outside the stage's DVC outputs: it survives)
    fingerprint: str  # what the checkpoint is valid for (`trials.fingerprint`)
    trials: Path  # the trials table, inside the method's models folder


def checkpoint_path(models_dir: Path) -> Path:
    """Beside (not in) a method's models folder, which DVC empties before each run."""
    return models_dir.parent / f".{models_dir.name}.checkpoint.jsonl"


def _splits(data: Splits) -> dict:
    # val and test: the table reports both (selection elsewhere reads val only)
    return {"val": data.val, "test": data.test}


def reference(baseline: keras.Model, baseline_file: Path, data: Splits, work: Path) -> dict:
    """The baseline's numbers that every variant is compared with, and the three size bases of
    its ratios: float32 weight bytes (4 × parameters: Han et al.'s basis, the primary one), the
    float32 TFLite file (what a deployment would ship uncompressed) and the `.keras` file."""
    work.mkdir(parents=True, exist_ok=True)
    packed = work / ".baseline.packed"
    encode(baseline, packed, entropy_coded=True)
    runner = measure.KerasRunner(baseline)
    row = measure.score(runner, baseline_file, baseline_file, _splits(data), data.n_classes).row
    keys = ("val_accuracy", "test_accuracy", "params", "nonzero_params", "flops")
    out = {k: row[k] for k in (*keys, "file_bytes", "gzip_bytes")}
    out["packed_bytes"] = measure.file_bytes(packed)["file_bytes"]
    packed.unlink()
    out["weight_bytes"] = 4 * row["params"]
    content = convert(baseline)
    out["tflite_bytes"] = len(content)
    out["tflite_gzip_bytes"] = len(gzip.compress(content, 9, mtime=0))
    return out


def measure_variant(variant: Variant, ref: dict, data: Splits) -> dict[str, Any]:
    """`measure.score` of the variant's model file (val and test), and its ratios to `ref`."""
    row = measure.score(
        variant.runner,
        variant.model_file,
        variant.artifact,
        _splits(data),
        data.n_classes,
        counts=variant.counts,
    ).row
    return {
        **row,
        "delta_pp": 100 * (row["test_accuracy"] - ref["test_accuracy"]),
        "ratio_weights": ref["weight_bytes"] / row["artifact_bytes"],
        "ratio_tflite": ref["tflite_bytes"] / row["artifact_bytes"],
        "gzip_ratio_tflite": ref["tflite_gzip_bytes"] / row["artifact_gzip_bytes"],
        # secondary: against the baseline's .keras file (zip, config and metadata included)
        "compression_ratio": ref["file_bytes"] / row["artifact_bytes"],
        "gzip_compression_ratio": ref["gzip_bytes"] / row["artifact_gzip_bytes"],
        "packed_ratio": ref["packed_bytes"] / row["artifact_bytes"],
        # artifact bits per non-zero parameter (weights and biases): Deep Compression's measure
        "bits_per_nonzero": (
            8 * row["artifact_bytes"] / row["nonzero_params"] if row["nonzero_params"] else None
        ),
    }


def run(
    method: Method,
    baseline: keras.Model,
    ref: dict,
    data: Splits,
    out_dir: Path,
) -> Iterator[tuple[Variant, dict[str, Any]]]:
    """Yield (variant, results row) for every setting of `method`, each from a fresh seed so a
    variant's numbers do not depend on which variants ran before it. `ref` is `reference(...)`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for setting in method.settings():
        seed_everything(method.seed)
        start = time.perf_counter()
        with recording() as curve:  # val accuracy per fine-tune epoch, for its MLflow run
            variant = method.apply(baseline, data, setting, out_dir)
        seconds = time.perf_counter() - start
        if curve:
            variant.extra.setdefault("val_curve", curve)
        row = {
            "method": method.name,
            "variant": variant.name,
            **{c: variant.setting.get(c) for c in method.columns},
            **measure_variant(variant, ref, data),
            "seconds": seconds,
        }
        yield variant, row


def columns(method: Method) -> list[str]:
    return ["method", "variant", *method.columns, *METRICS]


def settings(method: Method, rows: list[dict]) -> dict[str, Any]:
    """settings.json beside results.csv: the method's setting columns (its knob first) and each
    variant's values, empty ones left out; what the evaluate stage labels candidates with."""
    return {
        "columns": list(method.columns),
        "variants": {
            row["variant"]: {c: row[c] for c in method.columns if row.get(c) not in (None, "")}
            for row in rows
        },
    }


def flat_metrics(ref: dict, rows: list[dict]) -> dict[str, float]:
    """Flat JSON for `dvc exp show`: the baseline's reference numbers, then each variant's."""
    out = {f"baseline.{k}": v for k, v in glossary.as_metrics(ref).items()}
    for row in rows:
        shown = glossary.as_metrics(row, HEADLINE)
        out.update({f"{row['variant']}.{k}": v for k, v in shown.items()})
    return out


def plot(method: Method, rows: list[dict], ref: dict, target: Path) -> None:
    """Accuracy vs the method's knob (one line per series) and accuracy vs artifact bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    knob = method.columns[0]
    labels = [c for c in method.columns[1:] if c not in ("ranks", "sparsity_achieved")]
    series: dict[str, list[dict]] = {}
    for row in rows:
        key = " ".join(str(row[c]) for c in labels if isinstance(row.get(c), str)) or method.name
        series.setdefault(key, []).append(row)
    fig, (ax_knob, ax_bytes) = plt.subplots(1, 2, figsize=(10, 4))
    for key, items in series.items():
        items = sorted(items, key=lambda r: float(r[knob] or 0))
        xs = [float(r[knob] or 0) for r in items]
        ax_knob.plot(xs, [r["test_accuracy"] for r in items], "o-", label=key)
        ax_bytes.plot(
            [r["artifact_bytes"] for r in items],
            [r["test_accuracy"] for r in items],
            "o",
            label=key,
        )
    for ax in (ax_knob, ax_bytes):
        ax.axhline(ref["test_accuracy"], color="grey", ls="--", lw=1, label="baseline")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
    ax_bytes.plot([ref["file_bytes"]], [ref["test_accuracy"]], "k*", ms=10, label="baseline .keras")
    ax_knob.set(xlabel=knob, title=f"{method.name}: accuracy vs {knob}")
    ax_bytes.set(xlabel="bytes on disk (compact artifact)", xscale="log", title="accuracy vs bytes")
    ax_knob.legend(fontsize=7)
    ax_bytes.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(target, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
