"""Find every candidate model the pipeline produced and score each one on the test split.

Candidates are discovered from the model folders, never listed: `models/<stage>/*` (e.g. the
baseline `models/train/model.keras`) and `models/<stage>/<method>/*` (e.g.
`models/compress/prune/magnitude_s50.keras`, `models/search/ga/best.keras`). A new method or a
new stage that writes models there is picked up without edits. What counts:

- `.keras` files (loaded with `safe_mode=True`) and `.tflite` files (run with
  `tf.lite.Interpreter`) are runnable candidates and are fully scored;
- a compact encoding with the same stem as a runnable file (`.packed`, `.npz`, `.gz`, `.zip`,
  `.bin`) is that model's *artifact*: its bytes are the model's real compressed size;
- an encoding without a runnable twin is reported with its size only (it cannot be scored);
- anything else (checkpoints, hidden temp files) is ignored.

The labels (the setting of a compressed variant, the configuration of a search's best model)
come from `reports/<stage>/<method>/results.csv` (column `variant`) and `best.json` when present.
A candidate that is missing, corrupt or cannot run on the test data is reported by name and
skipped with a warning. Only `splits.test` is read here; selection elsewhere uses val only.
"""

from __future__ import annotations

import csv
import importlib
import importlib.util
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from leanml import measure
from leanml.data import Split
from leanml.errors import LeanmlError

RUNNABLE = (".keras", ".tflite")
ENCODINGS = (".packed", ".npz", ".gz", ".zip", ".bin")
# Stem names that mean "the one model of this folder": the candidate is named after the folder.
SOLE_STEMS = ("best", "model")
BASELINE_FAMILY = "train"
# Packages that register custom Keras layers (e.g. quantization-aware layers); imported before
# loading so `safe_mode` deserialisation finds them. A package that is absent is skipped.
LAYER_PACKAGES = ("leanml.compress", "leanml.nas")


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
    """Variant name → setting, from results.csv (setting columns) and best.json (config)."""
    out: dict[str, dict[str, Any]] = {}
    results = reports / "results.csv"
    if results.is_file():
        try:
            with open(results, newline="") as handle:
                reader = csv.DictReader(handle)
                columns = reader.fieldnames or []
                # Setting columns sit between `variant` and the first measured accuracy column.
                start = columns.index("variant") + 1 if "variant" in columns else len(columns)
                stop = next(
                    (i for i, c in enumerate(columns) if c.endswith("accuracy")), len(columns)
                )
                for row in reader:
                    if row.get("variant"):
                        out[row["variant"]] = {
                            c: _number(row[c]) for c in columns[start:stop] if row[c] != ""
                        }
        except (OSError, csv.Error, ValueError):
            pass  # labels are optional; the scores do not depend on them
    best = reports / "best.json"
    if best.is_file():
        try:
            config = json.loads(best.read_text()).get("config")
        except (OSError, ValueError, AttributeError):
            config = None
        if isinstance(config, dict):
            for stem in SOLE_STEMS:
                out.setdefault(stem, dict(config))
    return out


def _number(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _method_folder(
    folder: Path, family: str, method: str, reports: Path, discovery: Discovery
) -> None:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    runnable = [p for p in files if p.suffix in RUNNABLE]
    encodings = [p for p in files if p.suffix in ENCODINGS or p.name.endswith(".tar.gz")]
    settings = _settings_from_reports(reports)
    stems = {p.stem for p in runnable}
    top = family == method
    for path in runnable:
        twins = [e for e in encodings if e.name.split(".")[0] == path.stem]
        artifact = min([path, *twins], key=lambda p: p.stat().st_size)
        if path.stem in SOLE_STEMS:
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


def discover(models_root: Path, reports_root: Path, families: list[str] | None = None) -> Discovery:
    """Every candidate under `models_root`, restricted to `families` (stage folder names)."""
    discovery = Discovery([], [], [])
    folders = _stage_folders(models_root, families)  # a family without a folder is skipped
    for stage_folder in folders:
        family = stage_folder.name
        _method_folder(
            stage_folder, family, family, reports_root / family, discovery
        )  # files at the top, e.g. models/train/model.keras
        for method_folder in sorted(p for p in stage_folder.iterdir() if p.is_dir()):
            if method_folder.name.startswith("."):
                continue
            _method_folder(
                method_folder,
                family,
                method_folder.name,
                reports_root / family / method_folder.name,
                discovery,
            )
    names = [c.name for c in discovery.candidates]
    for c in discovery.candidates:  # e.g. best.keras and best.tflite side by side
        if names.count(c.name) > 1:
            c.name = f"{c.name}.{c.format}"
    return discovery


# --- running a candidate -------------------------------------------------------------------


def import_layer_packages() -> list[str]:
    """Import the packages that register custom layers; return warnings for broken ones."""
    problems = []
    for name in LAYER_PACKAGES:
        try:
            if importlib.util.find_spec(name) is None:
                continue
            importlib.import_module(name)
        except Exception as exc:  # a broken optional package must not stop the evaluation
            problems.append(
                f"evaluate: could not import {name} ({type(exc).__name__}: {exc}); models "
                "using its custom layers will fail to load"
            )
    return problems


class TFLiteModel:
    """A `.tflite` file run through `tf.lite.Interpreter`, int8 inputs/outputs (de)quantized."""

    def __init__(self, content: bytes):
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the interpreter's deprecation notice
            self.interpreter = tf.lite.Interpreter(model_content=content)
        self.content = content
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch: int | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.batch != len(x):
            shape = [len(x), *self.input["shape"][1:]]
            self.interpreter.resize_tensor_input(self.input["index"], shape)
            self.interpreter.allocate_tensors()
            self.batch = len(x)
        if self.input["dtype"] in (np.int8, np.uint8):
            scale, zero = self.input["quantization"]
            info = np.iinfo(self.input["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        self.interpreter.set_tensor(self.input["index"], x.astype(self.input["dtype"]))
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output["index"])
        if self.output["dtype"] in (np.int8, np.uint8):
            scale, zero = self.output["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return np.asarray(y, np.float32)


def tflite_stats(content: bytes) -> dict[str, int]:
    """Parameters, non-zero parameters and FLOPs of a TFLite flatbuffer, read from its ops.

    Counts the weight and bias tensors of FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D (through
    a DEQUANTIZE when weights are stored as float16 or int8), with the same FLOP convention as
    `measure.flops`: 2 × MACs plus the bias additions, for one sample.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    ops = schema.BuiltinOperator
    dtypes = {
        schema.TensorType.FLOAT32: np.float32,
        schema.TensorType.FLOAT16: np.float16,
        schema.TensorType.INT32: np.int32,
        schema.TensorType.INT8: np.int8,
        schema.TensorType.UINT8: np.uint8,
        schema.TensorType.INT16: np.int16,
        schema.TensorType.INT64: np.int64,
    }
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    graph = model.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    producer = {out: op for op in graph.operators for out in (op.outputs or [])}

    def constant(index: int):
        tensor = graph.tensors[index]
        data = model.buffers[tensor.buffer].data if tensor.buffer < len(model.buffers) else None
        if data is not None and len(data):
            return np.frombuffer(bytes(bytearray(data)), dtypes.get(tensor.type, np.uint8))
        op = producer.get(index)
        if op is not None and codes[op.opcodeIndex] == ops.DEQUANTIZE:
            return constant(op.inputs[0])
        return None

    params = nonzero = flops = 0
    kinds = (ops.FULLY_CONNECTED, ops.CONV_2D, ops.DEPTHWISE_CONV_2D)
    for op in graph.operators:
        code = codes[op.opcodeIndex]
        if code not in kinds:
            continue
        inputs = list(op.inputs)
        weights = [constant(i) for i in inputs[1:3] if i >= 0]
        for w in weights:
            if w is not None:
                params += int(w.size)
                nonzero += int(np.count_nonzero(w))
        has_bias = len(inputs) > 2 and inputs[2] >= 0
        w_shape = list(graph.tensors[inputs[1]].shape)
        out_shape = list(graph.tensors[op.outputs[0]].shape)
        if code == ops.FULLY_CONNECTED:
            units, fan_in = w_shape
            positions = math.prod(out_shape[1:-1]) if len(out_shape) > 2 else 1
            flops += positions * (2 * fan_in * units + (units if has_bias else 0))
        elif code == ops.CONV_2D:
            out_c, kh, kw, in_c = w_shape
            positions = math.prod(out_shape[1:-1])
            flops += positions * out_c * (2 * kh * kw * in_c + (1 if has_bias else 0))
        else:
            _, kh, kw, channels = w_shape
            positions = math.prod(out_shape[1:-1])
            flops += positions * channels * (2 * kh * kw + (1 if has_bias else 0))
    return {"params": params, "nonzero_params": nonzero, "flops": int(flops)}


time_calls = measure.time_calls  # one latency protocol for Keras, TFLite and anything else


# --- scores --------------------------------------------------------------------------------


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


def _predict(call, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    return np.concatenate(
        [np.asarray(call(x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
    )


def score(candidate: Candidate, test: Split, n_classes: int, measure_cfg) -> dict[str, Any]:
    """Every number of one candidate on the test split; raises LeanmlError if it cannot run."""
    from leanml.models import load

    sample = test.x[:64]
    if candidate.format == "keras":
        # the stage that writes it: `train`, or one of a foreach family (`compress@prune`)
        producer = candidate.family
        if candidate.method != candidate.family:
            producer = f"{candidate.family}@{candidate.method}"
        model = load(candidate.path, producer)
        import keras

        def call(x):
            return keras.ops.convert_to_numpy(model(x, training=False))

        counts = {**measure.count_params(model), "flops": measure.flops(model)}
    else:
        try:
            runner = TFLiteModel(candidate.path.read_bytes())
        except Exception as exc:
            raise LeanmlError(
                f"{candidate.path}: not a loadable TFLite model ({type(exc).__name__})"
            ) from None
        call = runner
        try:
            counts = tflite_stats(runner.content)
        except Exception:  # an op layout we do not parse: sizes and scores still stand
            counts = {"params": None, "nonzero_params": None, "flops": None}
    try:
        probs = _predict(call, test.x)
    except Exception as exc:
        raise LeanmlError(
            f"{candidate.path}: could not run on the test split "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    if probs.ndim != 2 or probs.shape[1] != n_classes:
        raise LeanmlError(
            f"{candidate.path}: outputs shape {probs.shape[1:]}, but the data has {n_classes} "
            "classes (was it trained on another dataset?)"
        )
    matrix = confusion(test.y, np.argmax(probs, axis=1), n_classes)
    if candidate.format == "keras":
        timing = measure.latency(
            model,
            sample,
            warmup=measure_cfg.warmup,
            runs=measure_cfg.runs,
            batch_size=measure_cfg.batch_size,
        )
    else:
        timing = time_calls(
            call,
            sample,
            warmup=measure_cfg.warmup,
            runs=measure_cfg.runs,
            batch_size=measure_cfg.batch_size,
        )
    files = measure.file_bytes(candidate.path)
    art = measure.file_bytes(candidate.artifact)
    return {
        **classification_scores(matrix),
        "confusion": matrix.tolist(),
        **counts,
        **files,
        "artifact_bytes": art["file_bytes"],
        "artifact_gzip_bytes": art["gzip_bytes"],
        **timing,
    }


def score_all(
    candidates: list[Candidate], test: Split, n_classes: int, measure_cfg, on_warning=print
) -> list[tuple[Candidate, dict[str, Any]]]:
    """Score each candidate; one that fails is reported by name through `on_warning` and skipped."""
    scored = []
    for candidate in candidates:
        try:
            scored.append((candidate, score(candidate, test, n_classes, measure_cfg)))
        except LeanmlError as exc:
            on_warning(f"evaluate: skipped {candidate.name}: {exc}")
        except Exception as exc:  # e.g. a layer type measure.flops cannot handle
            on_warning(f"evaluate: skipped {candidate.name}: {type(exc).__name__}: {exc}")
    return scored
