"""MLflow tracking: one parent run per pipeline execution, one child run per stage.

With `tracking_reap` (which closes runs of killed processes), the only module that imports
mlflow. Stages of one `dvc repro` / `dvc exp run` are separate processes, so they find their
shared parent run by a pipeline key: the DVC experiment name (`DVC_EXP_NAME`, set by
`dvc exp run`) or else the id of the `dvc` process that runs them.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from leanml import glossary
from leanml.errors import LeanmlError
from leanml.params import Tracking
from leanml.params.util import flatten, mask_password
from leanml.paths import project_root
from leanml.tracking_provenance import git_tags, log_datasets, provenance
from leanml.tracking_reap import PID_TAG, close_stale_runs, process_tags

PIPELINE_TAG = "leanml.pipeline"
DB_NAME = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
# Explicit requirements: without them log_model spends seconds inferring them.
PIP_REQUIREMENTS = ["tensorflow-cpu==2.21.0", "keras>=3.10"]


def store_root() -> Path:
    """Where the default store lives: the project root, also for `dvc exp run --queue` copies."""
    root = project_root()
    marker = f"{os.sep}.dvc{os.sep}tmp{os.sep}exps{os.sep}"
    text = str(root)
    return Path(text.split(marker)[0]) if marker in text else root


def resolve_uri(cfg: Tracking) -> str:
    """params `base.tracking.uri`, else `$MLFLOW_TRACKING_URI`, else the project's sqlite file."""
    if cfg.uri:
        return cfg.uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{store_root() / DB_NAME}"


def ui_command(cfg: Tracking) -> str:
    """The exact command that opens the MLflow UI on this store, bound to loopback."""
    uri = resolve_uri(cfg)
    return f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000"


def _quiet() -> None:
    for name in ("alembic", "mlflow", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one per logged model


def connect(cfg: Tracking) -> str:
    """Point MLflow at the store and make sure the experiment exists; fail early and clearly."""
    _quiet()
    import mlflow

    uri = resolve_uri(cfg)
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        if not db.parent.is_dir() or not os.access(db.parent, os.W_OK):
            raise LeanmlError(
                f"tracking: cannot write the MLflow store {uri} (folder missing or read-only); "
                "set base.tracking.uri or MLFLOW_TRACKING_URI to a writable store"
            )
        if db.exists() and not os.access(db, os.W_OK):
            raise LeanmlError(
                f"tracking: cannot write the MLflow store {uri} (the file is read-only); "
                "set base.tracking.uri or MLFLOW_TRACKING_URI to a writable store"
            )
    mlflow.set_tracking_uri(uri)
    try:
        client = mlflow.MlflowClient()
        experiment = client.get_experiment_by_name(cfg.experiment)
        if experiment is None:
            location = None
            if uri.startswith("sqlite:///"):
                location = (Path(uri.removeprefix("sqlite:///")).parent / ARTIFACTS_DIR).as_uri()
            experiment_id = client.create_experiment(cfg.experiment, artifact_location=location)
        else:
            experiment_id = experiment.experiment_id
    except Exception as exc:
        raise LeanmlError(
            f"tracking: MLflow store {mask_password(uri)} is unreachable or unusable "
            f"({_reason(exc)}); start it (`make server` for the project's own server) or set "
            "base.tracking.uri / MLFLOW_TRACKING_URI to another store"
        ) from None
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def _reason(exc: BaseException) -> str:
    """`Type: first line of the message`, with any password in a URI masked."""
    text = str(exc).strip()
    first = text.splitlines()[0][:300] if text else ""
    return mask_password(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)


def _end_status(exc: BaseException | None) -> str:
    """How a run ends: FINISHED, KILLED on an interrupt (Ctrl-C, SIGTERM), FAILED otherwise."""
    if exc is None:
        return "FINISHED"
    return "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"


def _dvc_ancestor() -> str | None:
    """`pid-starttime` of the nearest ancestor `dvc repro` / `dvc exp` process, if any."""
    import psutil

    try:
        process = psutil.Process().parent()
        while process is not None:
            cmd = " ".join(process.cmdline())
            if "dvc" in cmd and any(verb in cmd for verb in ("repro", "exp")):
                return f"{process.pid}-{int(process.create_time())}"
            process = process.parent()
    except psutil.Error:
        return None
    return None


def pipeline_key() -> tuple[str, str]:
    """(key, display name) of the pipeline execution this stage belongs to."""
    if os.environ.get("LEANML_PIPELINE"):
        key = os.environ["LEANML_PIPELINE"]
        return key, key
    if os.environ.get("DVC_EXP_NAME"):
        name = os.environ["DVC_EXP_NAME"]
        return f"exp:{name}", name
    ancestor = _dvc_ancestor()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if ancestor:
        return f"repro:{ancestor}", f"repro-{stamp}"
    return f"direct:{uuid.uuid4().hex}", f"direct-{stamp}"


def _find_or_create_parent(experiment_id: str) -> str:
    import mlflow

    key, name = pipeline_key()
    client = mlflow.MlflowClient()
    found = client.search_runs(
        [experiment_id], filter_string=f"tags.`{PIPELINE_TAG}` = '{key}'", max_results=1
    )
    if found:
        return found[0].info.run_id
    run = client.create_run(experiment_id, run_name=name, tags={PIPELINE_TAG: key, **git_tags()})
    return run.info.run_id


class StageRun:
    """The active stage run: log params, metrics, artifacts, models and nested child runs.

    `inherited`: the provenance tags (`provenance`) every nested run of it carries too."""

    def __init__(self, run_id: str, parent_id: str, inherited: dict[str, str] | None = None):
        self.run_id, self.parent_id = run_id, parent_id
        self.inherited = dict(inherited or {})

    def log_data(self, splits: Any, card: dict[str, Any], names: tuple[str, ...]) -> None:
        """The prepared splits this stage reads, as MLflow dataset inputs (the runs table's
        Dataset column): name `<dataset>/<split>`, digest = the prepared data's checksum (also
        the tags `dataset`, `dataset.sha256`)."""
        self.set_tags({"dataset": card["dataset"], "dataset.sha256": card["sha256"]})
        log_datasets(splits, card, names)

    def log_params(self, params: Any) -> None:
        import mlflow

        flat = {k: mask_password(str(v)) for k, v in flatten(params).items()}
        items = list(flat.items())
        for i in range(0, len(items), 100):
            mlflow.log_params(dict(items[i : i + 100]))

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        import mlflow

        numeric = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and v == v}
        glossary.check(numeric, "MLflow")
        mlflow.log_metrics(numeric, step=step)

    def log_curve(self, name: str, values: list[float]) -> None:
        """`values` as metric `name` at steps 1, 2, ... (e.g. a trial's per-epoch val accuracy),
        in one call to the store."""
        import time as _time

        from mlflow import MlflowClient
        from mlflow.entities import Metric

        glossary.check([name], "MLflow")
        now = int(_time.time() * 1000)
        points = [Metric(name, float(v), now, i) for i, v in enumerate(values, 1) if v == v]
        if points:
            MlflowClient().log_batch(self.run_id, metrics=points)

    def set_tags(self, tags: dict[str, Any]) -> None:
        import mlflow

        mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:
        import mlflow

        mlflow.log_artifact(str(path), artifact_path=folder)

    def log_keras_model(self, model: Any, sample: Any, name: str = "model") -> Any:
        """Log a Keras model with its signature (from `sample`) and explicit requirements;
        returns MLflow's `ModelInfo` (its `model_uri` is what the registry takes)."""
        import mlflow

        signature = mlflow.models.infer_signature(sample, model.predict(sample, verbose=0))
        return mlflow.keras.log_model(
            model, name=name, signature=signature, pip_requirements=PIP_REQUIREMENTS
        )

    def log_file_model(self, path: Path, sample: Any, probs: Any, name: str = "candidate") -> Any:
        """Log a candidate file (`.keras`, `.tflite`, `.packed`) as a pyfunc model that runs
        it, with the signature of `sample` -> `probs` (see `tracking_models`). Named apart
        from the run's `model/` artifact folder: MLflow lists a logged model of the same name
        in place of that folder, through the default tracking URI."""
        from leanml.tracking_models import log_file_model

        return log_file_model(Path(path), sample, probs, name)

    def log_parent_artifact(self, path: str | Path, folder: str | None = None) -> None:
        import mlflow

        mlflow.MlflowClient().log_artifact(self.parent_id, str(path), artifact_path=folder)

    def log_parent_table(self, rows: list[dict[str, Any]], artifact_file: str) -> None:
        """A table (list of row dicts) on the parent run, shown in the UI's evaluation view."""
        import mlflow

        columns = list(dict.fromkeys(k for row in rows for k in row))
        data = {c: [row.get(c) for row in rows] for c in columns}
        mlflow.log_table(data=data, artifact_file=artifact_file, run_id=self.parent_id)

    def log_parent_metrics(self, metrics: dict[str, Any]) -> None:
        """Numeric metrics on the parent run, so the pipeline's outcome shows at a glance."""
        import mlflow
        from mlflow.entities import Metric

        glossary.check(metrics, "MLflow")
        stamp = int(time.time() * 1000)
        batch = [
            Metric(k, float(v), stamp, 0)
            for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and v == v
        ]
        client = mlflow.MlflowClient()
        for i in range(0, len(batch), 500):
            client.log_batch(self.parent_id, metrics=batch[i : i + 500])

    def describe_parent(self, markdown: str, params: Any) -> None:
        """The pipeline run's description (the UI's Description box) and its params: every
        key of params.yaml, flattened, so the parent reads as the run it summarises. Params
        never change in MLflow: a parent that already holds other values keeps them."""
        import mlflow
        from mlflow.entities import Param

        client = mlflow.MlflowClient()
        client.set_tag(self.parent_id, "mlflow.note.content", markdown)
        have = client.get_run(self.parent_id).data.params
        flat = {k: mask_password(str(v))[:6000] for k, v in flatten(params).items()}
        new = [Param(k, v) for k, v in flat.items() if k not in have]
        for i in range(0, len(new), 100):
            client.log_batch(self.parent_id, params=new[i : i + 100])

    @contextmanager
    def child(
        self,
        name: str,
        params: Any = None,
        tags: dict | None = None,
        span: tuple[int, int] | None = None,
    ) -> Iterator[StageRun]:
        """A nested run under this one (a compressed variant, a search trial, a NAS child).

        Ends FINISHED, FAILED on an exception, or KILLED on an interrupt. `span`: (start, end)
        in ms since the epoch when the work it records happened elsewhere or earlier (a trial
        trained on a worker, logged when its result arrives): the run shows those times, so
        its duration in the UI is the trial's training time.
        """
        import mlflow

        every = {**self.inherited, **(tags or {})}
        tags_ = {k: str(v) for k, v in every.items()}
        if span is None:
            run = mlflow.start_run(run_name=name, nested=True, tags=tags_)
        else:
            created = mlflow.MlflowClient().create_run(
                mlflow.active_run().info.experiment_id,
                start_time=span[0],
                tags={**tags_, "mlflow.parentRunId": self.run_id},
                run_name=name,
            )
            run = mlflow.start_run(run_id=created.info.run_id, nested=True)
        status = _end_status(None)
        try:
            nested = StageRun(run.info.run_id, self.parent_id, self.inherited)
            if params is not None:
                nested.log_params(params)
            yield nested
        except BaseException as exc:
            status = _end_status(exc)
            raise
        finally:
            mlflow.end_run(status)
            if span is not None:  # end_run stamps "now": the work ended at span[1]
                mlflow.MlflowClient().set_terminated(run.info.run_id, status, end_time=span[1])


def run_name(stage: str) -> str:
    """A stage run's name, leading with what differs between runs of one family, so the UI's
    narrow Run Name column tells them apart: `compress@combined` → `combined · compress`,
    `search@ga` → `ga · search`, `compress_winner@nas/rl-prune` → `nas/rl → prune · compress`;
    a single stage (`train`) keeps its name. The `stage` tag keeps the dvc.yaml name."""
    family, sep, member = stage.partition("@")
    if not sep:
        return stage
    if family == "compress_winner":
        origin, _, method = member.rpartition("-")
        return f"{origin} → {method} · compress"
    return f"{member} · {family}"


@contextmanager
def stage_run(stage: str, cfg: Tracking, params: Any = None, tags: dict | None = None):
    """Run a stage inside its own child run under the pipeline's parent run.

    A stage that fails ends its run FAILED; one interrupted (Ctrl-C / SIGTERM) ends it KILLED,
    so no run is left RUNNING. Runs left RUNNING by a killed (SIGKILL) process are closed as
    KILLED first. A store that cannot be written stops the stage here, before any work.
    """
    import mlflow

    experiment_id = connect(cfg)
    owner = process_tags()
    try:
        close_stale_runs(experiment_id)
        parent_id = _find_or_create_parent(experiment_id)
        # a first write through the client: a read-only store fails here, before any run starts
        mlflow.MlflowClient().set_tag(parent_id, PID_TAG, owner[PID_TAG])
        mlflow.start_run(run_id=parent_id)
        mlflow.set_tags(owner)  # the parent runs while this stage does
        # tag values as strings: an HTTP tracking server refuses other types (a sqlite file did not)
        inherited = provenance(stage, params, tags)
        all_tags = {**inherited, **owner, **(tags or {})}
        child = mlflow.start_run(
            run_name=run_name(stage), nested=True, tags={k: str(v) for k, v in all_tags.items()}
        )
    except Exception as exc:
        while mlflow.active_run() is not None:
            try:
                mlflow.end_run("FAILED")
            except Exception:
                break
        raise LeanmlError(
            f"tracking: cannot open a run in the MLflow store {mask_password(resolve_uri(cfg))} "
            f"({_reason(exc)}); set base.tracking.uri or MLFLOW_TRACKING_URI to a writable store"
        ) from None
    run = StageRun(child.info.run_id, parent_id, inherited)
    status = _end_status(None)
    try:
        if params is not None:
            run.log_params(params)
        yield run
    except BaseException as exc:
        status = _end_status(exc)
        raise
    finally:
        mlflow.end_run(status)  # the stage run
        mlflow.end_run(status)  # the parent, until the next stage resumes it
        if status != "FINISHED":
            print(f"tracking: {stage} run ended {status}", file=sys.stderr)


def tag_run(run_id: str, tags: dict[str, Any]) -> None:
    """Tag a run that is not the active one (e.g. mark the best trial after the search)."""
    import mlflow

    client = mlflow.MlflowClient()
    for k, v in tags.items():
        client.set_tag(run_id, k, str(v))
