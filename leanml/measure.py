"""The one measurement path: parameters, bytes of the real file (and gzipped), FLOPs, and the
latency protocol (`time_calls`).

`score` measures one runnable model file (Keras through `KerasRunner`, TFLite through
`leanml.tflite.TFLiteRunner`) for the compress and the evaluate stages alike; only the evaluate
stage times models (`leanml.evaluate.timing`: every candidate in LiteRT).
FLOPs count 2 × multiply-accumulates of Dense and Conv layers plus their bias additions;
pooling, activations and normalisation are not counted (they are small next to the MACs).
Latency is measured on the CPU after warm-up, one call at a time, and reported as percentiles.
"""

from __future__ import annotations

import gzip
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import keras
import numpy as np

from leanml.errors import LeanmlError

# What a reproducible .keras file says in metadata.json instead of the moment it was saved.
FIXED_DATE_SAVED = "1980-01-01@00:00:00"


def _fixed_date(name: str, content: bytes) -> bytes:
    if name != "metadata.json":
        return content
    metadata = json.loads(content)
    metadata["date_saved"] = FIXED_DATE_SAVED  # kept: KerasFileEditor reads the key
    return json.dumps(metadata).encode()


def save_model(model: keras.Model, target: str | Path) -> Path:
    """Save an inference copy of `model` (weights + architecture, no optimizer state) atomically.

    Keras 3 stores a compiled model's optimizer slots too, which would inflate the size we report.
    The file is byte-for-byte the same for the same weights: Keras's save date and the zip
    entries' timestamps are replaced by fixed ones (`io.reproducible_zip`).
    """
    from leanml.io import atomic_path, reproducible_zip

    # Rebuilt from config, not clone_model: Keras 3.15 clones carry the compile state along.
    clone = model.__class__.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    with atomic_path(target, suffix=".keras") as tmp:
        clone.save(tmp)
        tmp.write_bytes(reproducible_zip(tmp.read_bytes(), _fixed_date))
    return Path(target)


def count_params(model: keras.Model) -> dict[str, int]:
    """All parameters and the non-zero ones (what pruning removes)."""
    weights = model.get_weights()
    return {
        "params": int(sum(w.size for w in weights)),
        "nonzero_params": int(sum(np.count_nonzero(w) for w in weights)),
    }


def file_bytes(path: str | Path) -> dict[str, int]:
    """Size of a file on disk and of its gzip (level 9, fixed mtime so it is reproducible)."""
    data = Path(path).read_bytes()
    return {"file_bytes": len(data), "gzip_bytes": len(gzip.compress(data, 9, mtime=0))}


def _layers(model: keras.Model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def flops(model: keras.Model) -> int:
    """FLOPs of one forward pass of one sample, from layer shapes."""
    total = 0
    for layer in _layers(model):
        out_shape = tuple(layer.output.shape[1:])
        if isinstance(layer, keras.layers.Dense):
            fan_in, units = layer.kernel.shape
            positions = math.prod(out_shape[:-1])
            total += positions * (2 * fan_in * units + (units if layer.use_bias else 0))
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw, _, _ = layer.kernel.shape
            positions = math.prod(out_shape[:-1])
            total += positions * out_shape[-1] * (2 * kh * kw + (1 if layer.use_bias else 0))
        elif isinstance(layer, keras.layers.Conv2D | keras.layers.Conv1D):
            kernel = layer.kernel.shape  # (*window, in_per_group, out)
            window_in = math.prod(kernel[:-1])
            positions = math.prod(out_shape[:-1])
            total += positions * out_shape[-1] * (2 * window_in + (1 if layer.use_bias else 0))
    return int(total)


def time_calls(
    call, sample: np.ndarray, *, warmup: int = 10, runs: int = 100, batch_size: int = 256
) -> dict[str, float]:
    """The latency protocol for any callable: batch-1 p50/p95 (ms) after warm-up, and batch
    throughput (samples/s). `call` must return only when its result is ready."""
    one = sample[:1]
    for _ in range(warmup):
        call(one)
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        call(one)
        timings.append(time.perf_counter() - start)
    batch = np.concatenate([sample] * math.ceil(batch_size / len(sample)))[:batch_size]
    for _ in range(max(1, warmup // 5)):
        call(batch)
    batch_runs = max(3, runs // 20)
    start = time.perf_counter()
    for _ in range(batch_runs):
        call(batch)
    elapsed = time.perf_counter() - start
    ms = np.asarray(timings) * 1000
    return {
        "latency_ms_p50": float(np.percentile(ms, 50)),
        "latency_ms_p95": float(np.percentile(ms, 95)),
        "throughput_per_s": float(batch_size * batch_runs / elapsed),
    }


def latency(
    model: keras.Model,
    sample: np.ndarray,
    *,
    warmup: int = 10,
    runs: int = 100,
    batch_size: int = 256,
) -> dict[str, float]:
    """`time_calls` on a Keras model through a compiled `tf.function` (eager overhead excluded)."""
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return time_calls(
        lambda x: fn(tf.constant(x)).numpy(),
        sample,
        warmup=warmup,
        runs=runs,
        batch_size=batch_size,
    )


def measure(model: keras.Model, path: str | Path) -> dict:
    """Parameters, bytes of the file at `path` (and gzipped) and FLOPs of a saved model. Latency
    is not here: the evaluate stage times every candidate in one runtime (`leanml.tflite`)."""
    return {**count_params(model), **file_bytes(path), "flops": flops(model)}


# --- one candidate, whatever its format --------------------------------------------------------


class Runner(Protocol):
    """What `score` needs of a runnable model: `KerasRunner` or `leanml.tflite.TFLiteRunner`."""

    def predict(self, x: np.ndarray) -> np.ndarray: ...

    def counts(self) -> dict[str, int | None]: ...

    def latency(self, sample: np.ndarray, cfg) -> dict[str, float]: ...


class KerasRunner:
    """A Keras model behind the runner interface."""

    batch = 512  # rows per forward pass when predicting a whole split

    def __init__(self, model: keras.Model):
        self.model = model

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probabilities, from the model called in inference mode (no `fit`/`predict` machinery)."""
        return np.concatenate(
            [
                keras.ops.convert_to_numpy(self.model(x[i : i + self.batch], training=False))
                for i in range(0, len(x), self.batch)
            ]
        )

    def counts(self) -> dict[str, int]:
        return {**count_params(self.model), "flops": flops(self.model)}

    def latency(self, sample: np.ndarray, cfg) -> dict[str, float]:
        return latency(
            self.model, sample, warmup=cfg.warmup, runs=cfg.runs, batch_size=cfg.batch_size
        )


def load_runner(path: Path, producer: str) -> Runner:
    """The runner of a `.keras` or `.tflite` file; `producer` is the stage that writes it (named
    in the error when the file is missing or corrupt)."""
    if path.suffix == ".keras":
        from leanml.models import load

        return KerasRunner(load(path, producer))
    from leanml.tflite import TFLiteRunner

    try:
        return TFLiteRunner(path.read_bytes())
    except Exception as exc:
        raise LeanmlError(f"{path}: not a loadable TFLite model ({type(exc).__name__})") from None


@dataclass
class Scored:
    """`score`'s answer: one flat row of numbers, and the predicted class of every example."""

    row: dict[str, Any]
    labels: dict[str, np.ndarray]  # split name -> predicted classes


def score(
    runner: Runner,
    model_file: Path,
    artifact: Path,
    splits: Mapping[str, Any],
    n_classes: int,
    *,
    counts: dict[str, Any] | None = None,
) -> Scored:
    """Accuracy on each of `splits` (name -> `Split`, giving `<name>_accuracy`), parameters and
    FLOPs (`counts` when given, else the runner's), bytes of `model_file` and of `artifact` (its
    most compact real encoding). Latency: `leanml.evaluate.timing`.

    Raises `LeanmlError` naming `model_file` when the model cannot run on a split or its outputs
    do not have one column per class.
    """
    row: dict[str, Any] = {}
    labels = {}
    for name, split in splits.items():
        try:
            probs = runner.predict(split.x)
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise LeanmlError(
                f"{model_file}: could not run on the {name} split ({type(exc).__name__}: {first})"
            ) from None
        if probs.ndim != 2 or probs.shape[1] != n_classes:
            raise LeanmlError(
                f"{model_file}: outputs shape {probs.shape[1:]}, but the data has {n_classes} "
                "classes (was it trained on another dataset?)"
            )
        labels[name] = np.argmax(probs, axis=1)
        row[f"{name}_accuracy"] = float(np.mean(labels[name] == split.y))
    row.update(counts if counts is not None else runner.counts())
    row.update(file_bytes(model_file))
    art = file_bytes(artifact)
    row.update({"artifact_bytes": art["file_bytes"], "artifact_gzip_bytes": art["gzip_bytes"]})
    return Scored(row, labels)
