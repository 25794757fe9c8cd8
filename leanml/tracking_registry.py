"""The evaluate stage's picks in the MLflow Model Registry: one registered model per dataset
(`leanml-<dataset>`), one version per distinct pick, aliases naming the picks (`baseline`,
`best`, `smallest_within_1pp`), the test metrics on each version. Logging only: no output of a
stage depends on it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from leanml.glossary import metric_name

DESCRIPTION = (
    "leanml's evaluate picks on this dataset: aliases `baseline` (the train stage's model), "
    "`best` (highest test accuracy) and `smallest_within_<pp>pp` (the smallest within that many "
    "accuracy points of the baseline); each version's tags hold its test metrics under their "
    "glossary names (test_accuracy, size_bytes, ...)."
)
# what a version carries from its leaderboard row
VERSION_METRICS = ("accuracy", "delta_pp", "macro_f1", "size_bytes", "ratio_weights", "params")


def alias(name: str) -> str:
    """A registry alias: letters, digits, `_` and `-` only (`smallest_within_1.5pp` → `…1_5pp`)."""
    return re.sub(r"[^\w-]", "_", name)


def _log_pick(run: Any, path: Path, row: dict[str, Any], sample: Any) -> Any:
    name = f"pick-{alias(row['name'])}"
    if path.suffix == ".keras":
        from leanml import models

        return run.log_keras_model(models.load(path, row["family"]), sample, name=name)
    from leanml.tracking_models import runner

    return run.log_file_model(path, sample, runner(path)(sample), name=name)


def register_picks(
    run: Any, picks: dict[str, dict[str, Any] | None], dataset: str, root: Path, sample: Any
) -> dict[str, str]:
    """Log each pick as a model under the evaluate run (a Keras model with `mlflow.keras`; a
    `.tflite` file as the pyfunc that runs it, `tracking_models`), signature from `sample`,
    and register it; returns alias -> version."""
    import mlflow

    client = mlflow.MlflowClient()
    name = f"leanml-{alias(dataset)}"
    versions: dict[str, str] = {}  # candidate name -> version (one version per model)
    out: dict[str, str] = {}
    for pick, row in picks.items():
        if row is None:
            continue
        path = root / row["path"]
        if row["name"] not in versions:
            info = _log_pick(run, path, row, sample)
            if not versions:  # the first pick of this run: the registered model, once
                try:
                    client.create_registered_model(name, description=DESCRIPTION)
                except mlflow.exceptions.MlflowException:
                    pass  # registered by an earlier run: a new version each run
            version = str(
                client.create_model_version(name, info.model_uri, run_id=run.run_id).version
            )
            for metric in VERSION_METRICS:
                if row.get(metric) is not None:
                    client.set_model_version_tag(name, version, metric_name(metric), row[metric])
            client.set_model_version_tag(name, version, "candidate", row["name"])
            versions[row["name"]] = version
        client.set_registered_model_alias(name, alias(pick), versions[row["name"]])
        out[alias(pick)] = versions[row["name"]]
    return out
