"""Any candidate file as an MLflow logged model: a pyfunc that runs the file itself (`.keras`,
`.tflite`, or leanml's `.packed` encoding, decoded to Keras), with a signature, so every
compressed variant shows in the UI's Models column and loads with `mlflow.pyfunc.load_model`.
Logging only: no output of a stage depends on it. Loading needs this project's environment
(`leanml` importable: `.packed` decoding and the LiteRT runner are leanml code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np

# what a loader needs besides leanml itself (the project's pinned versions)
REQUIREMENTS = ["tensorflow-cpu==2.21.0", "keras>=3.10", "ai-edge-litert==2.3.0"]


def runner(path: Path):
    """A callable from a batch of inputs to class probabilities, for one candidate file."""
    from leanml.measure import KerasRunner, load_runner

    if path.suffix == ".packed":
        from leanml.compress.encode import decode

        return KerasRunner(decode(path)).predict
    return load_runner(path, "compress").predict


class CandidateFile(mlflow.pyfunc.PythonModel):
    """Runs the logged candidate file (artifact `model`) on float32 inputs."""

    def load_context(self, context):
        self._run = runner(Path(context.artifacts["model"]))

    # np.ndarray: a hint MLflow accepts without inferring a schema (the signature has it)
    def predict(self, context, model_input: np.ndarray, params=None) -> np.ndarray:
        return self._run(np.asarray(model_input, dtype=np.float32))


def log_file_model(
    path: Path, sample: np.ndarray, probs: np.ndarray, name: str = "candidate"
) -> Any:
    """Log `path` as a pyfunc model of the active run; `sample` and `probs` (its predictions)
    give the signature. Returns MLflow's `ModelInfo`."""
    import mlflow

    signature = mlflow.models.infer_signature(sample, probs)
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(Path(__file__).with_name("tracking_model_code.py")),  # from code
        artifacts={"model": str(path)},
        signature=signature,
        input_example=sample[:1],
        pip_requirements=REQUIREMENTS,
    )
