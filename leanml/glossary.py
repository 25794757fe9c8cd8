"""The one vocabulary of metric names, used by every stage for its metrics JSON files (what
`dvc exp show` compares) and for MLflow.

A metric key is `<name>` or `<subject>.<name>`: `<name>` comes from `NAMES` below (one meaning
each, split and unit in the name); the subject says whose number it is: a candidate or variant
(`s70_c2.test_accuracy`), a pick (`baseline.`, `best.`, `smallest_within_pp.`), a group
(`by_method.compress/prune.`, `search.`, `refit.`, `best_trial.`, `pareto.`), or a
source task (`iris.best_score`). Winners always take the `best.` prefix. Tables (CSV) keep
their short column names; a column that becomes a metric goes through `metric_name`.

`check` refuses a name outside the vocabulary: the tests run every stage with
`LEANML_STRICT_GLOSSARY=1`, so a stage that logs a new name fails until it is added here (and,
with it, to the README's table, which `tests/test_glossary.py` keeps in step).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

# name -> what it is. Grouped as the README's table shows them.
GROUPS: dict[str, dict[str, str]] = {
    "accuracy and loss (a split in every name)": {
        "val_accuracy": "accuracy on the validation split: what every selection reads",
        "val_loss": "cross-entropy on the validation split",
        "test_accuracy": "accuracy on the test split: reported, never selected on",
        "test_loss": "cross-entropy on the test split",
        "test_accuracy_ci_low": "95 % Wilson interval of test_accuracy, lower end",
        "test_accuracy_ci_high": "95 % Wilson interval of test_accuracy, upper end",
        "test_macro_f1": "macro-averaged F1 on the test split",
        "epoch_train_accuracy": "train accuracy after each epoch (steps 1, 2, …; train stage)",
        "epoch_train_loss": "train loss after each epoch (steps; train stage)",
        "epoch_val_accuracy": "val accuracy after each epoch (steps): train, every trial, "
        "every fine-tuned variant",
        "epoch_val_loss": "val loss after each epoch (steps; train stage)",
        "final_val_accuracy": "val accuracy after the full fine-tune (compress@auto's winner)",
        "delta_pp": "test_accuracy minus the baseline's, in percentage points",
        "mcnemar_p": "exact McNemar p against the baseline, Holm-adjusted over the candidates",
        "significant": "1 if the difference to the baseline is significant, else 0",
        "one_sample_pp": "what one test sample is worth, in percentage points",
        "within_pp": "the accuracy band of the smallest_within_pp pick (evaluate.within_pp)",
        "score": "the number a search maximises (val accuracy, or its size trade-off)",
        "best_score": "a source task's best architecture score (nas_metadata)",
    },
    "sizes (bytes of real files)": {
        "file_bytes": "the runnable model file (.keras or .tflite)",
        "file_gzip_bytes": "the model file, gzipped",
        "artifact_bytes": "the most compact real file that decodes to the model (.packed, "
        ".tflite or the model file): the size every table and front ranks on",
        "artifact_gzip_bytes": "the artifact, gzipped",
        "size_bytes": "the size the evaluate stage ranks on (evaluate.size: artifact_bytes "
        "unless set otherwise)",
        "packed_bytes": "the baseline in leanml's .packed encoding",
        "tflite_bytes": "the baseline's float TFLite file",
        "tflite_gzip_bytes": "the baseline's float TFLite file, gzipped",
        "weight_bytes": "4 × the baseline's parameters (float32 weights: Han et al.'s basis)",
        "target_bytes": "compress@auto's size target",
    },
    "ratios": {
        "ratio_weights": "weight_bytes / artifact_bytes (the literature's basis)",
        "ratio_tflite": "the baseline's float TFLite bytes / artifact_bytes",
        "gzip_ratio_tflite": "the same, both gzipped",
        "compression_ratio": "the baseline's .keras file bytes / artifact_bytes (secondary)",
        "gzip_compression_ratio": "the same, both gzipped",
        "packed_ratio": "the baseline's .keras bytes / its .packed bytes",
        "bits_per_nonzero": "8 × artifact_bytes / n_nonzero_params",
    },
    "model and data counts": {
        "n_params": "parameters of the model",
        "n_nonzero_params": "parameters that are not zero",
        "flops": "floating-point operations of one forward pass",
        "n_train": "samples in the train split",
        "n_val": "samples in the validation split",
        "n_test": "samples in the test split",
        "n_features": "inputs per sample",
        "n_classes": "classes",
    },
    "search, NAS and compress@auto": {
        "proposals": "configurations proposed (cache hits included)",
        "evaluations": "configurations trained (the budget)",
        "evaluation": "a trial's place in the training order",
        "proposal": "a trial's place in the proposal order",
        "cache_hits": "proposals answered from the cache of identical configurations",
        "failed_trials": "trials that failed, diverged or timed out",
        "pruned_trials": "trials stopped at a rung (multi-fidelity)",
        "epochs": "epochs a trial trained",
        "epochs_run": "epochs a fit ran (early stopping may end it sooner)",
        "epochs_spent": "epochs over all trials of a search",
        "evaluations_to_best": "evaluations until the best trial",
        "pareto_size": "trials on the accuracy-vs-size front of a search",
        "winner_is_baseline": "1 if the train model beat the search's refit on val",
        "finalists": "compress@auto policies fine-tuned fully",
        "within_target": "compress@auto trials within the size target",
        "controller_updates": "REINFORCE updates of the NAS controller",
        "controller_entropy": "the controller's policy entropy (steps: updates)",
        "controller_mean_reward": "mean reward of an update (steps: updates)",
        "supernet_steps": "weight-sharing supernet training steps (nas@enas)",
        "supernet_train_samples": "samples the supernet trained on",
        "supernet_scored_children": "children scored on shared weights",
    },
    "counts of a stage's outputs": {
        "candidates": "models the evaluate stage compared",
        "variants": "variants a compress stage made",
        "size_front": "candidates on the accuracy-vs-size front",
        "latency_front": "candidates on the accuracy-vs-latency front",
        "tasks": "source tasks of the NAS meta-dataset",
        "rows": "(architecture, task) rows of the meta-dataset",
        "excluded_tasks": "source tasks left out (same data as the target)",
        "same_data_tasks": "source tasks drawn from the target's own train split",
    },
    "time (wall clock: timings.json, never metrics.json)": {
        "seconds": "a trial's or a variant's wall-clock time",
        "fit_seconds": "the train stage's fit",
        "search_seconds": "a whole search",
        "supernet_seconds": "nas@enas's supernet and controller phase",
        "latency_ms_p50": "median batch-1 latency in LiteRT after warm-up, ms",
        "latency_ms_p95": "95th percentile of the same",
        "keras_latency_ms_p50": "median batch-1 latency of a Keras call, ms",
        "throughput_per_s": "samples per second",
    },
}
NAMES: dict[str, str] = {name: text for group in GROUPS.values() for name, text in group.items()}

# JSON only (not numbers: MLflow never sees them)
TEXT = {"name": "a pick's candidate name (evaluate)"}

# Table columns renamed when they become metrics (tables keep their short headers).
FROM_COLUMN = {
    "params": "n_params",
    "nonzero_params": "n_nonzero_params",
    "gzip_bytes": "file_gzip_bytes",
    "accuracy": "test_accuracy",
    "accuracy_ci_low": "test_accuracy_ci_low",
    "accuracy_ci_high": "test_accuracy_ci_high",
    "macro_f1": "test_macro_f1",
    "bytes": "size_bytes",
}


def metric_name(column: str) -> str:
    """The glossary name of a table column (`params` -> `n_params`); others are unchanged."""
    return FROM_COLUMN.get(column, column)


def as_metrics(row: dict, keys: Iterable[str] | None = None) -> dict:
    """Columns of a table row (all, or `keys`) under their glossary names."""
    return {metric_name(k): row[k] for k in (row if keys is None else keys)}


def unknown(keys: Iterable[str]) -> list[str]:
    """The keys whose name (the part after the last `.`) is not in the glossary."""
    return sorted(k for k in keys if k.rsplit(".", 1)[-1] not in (NAMES.keys() | TEXT.keys()))


def check(keys: Iterable[str], where: str) -> None:
    """Refuse (LEANML_STRICT_GLOSSARY=1, as in the tests) or name in one line the metric
    names outside the glossary."""
    bad = unknown(keys)
    if not bad:
        return
    message = f"{where}: metric names outside leanml/glossary.py: {', '.join(bad)}"
    if os.environ.get("LEANML_STRICT_GLOSSARY") == "1":
        from leanml.errors import LeanmlError

        raise LeanmlError(message)
    print(f"warning: {message}", file=sys.stderr)


def markdown() -> str:
    """The glossary as the README shows it (tests/test_glossary.py keeps the two equal)."""
    lines = []
    for group, names in GROUPS.items():
        lines += [f"**{group}**", "", "| name | meaning |", "|---|---|"]
        lines += [f"| `{name}` | {text} |" for name, text in names.items()]
        lines.append("")
    return "\n".join(lines)
