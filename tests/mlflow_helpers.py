"""Read back what the stages logged to MLflow (tests only): every run as a dict, a metric's steps."""

from __future__ import annotations

from leanml import tracking
from leanml.params import Tracking


def runs(cfg: Tracking) -> list[dict]:
    """Every run of the experiment as plain dicts."""
    import mlflow

    experiment_id = tracking.connect(cfg)
    client = mlflow.MlflowClient()
    out = []
    for r in client.search_runs([experiment_id], max_results=10_000):
        out.append(
            {
                "run_id": r.info.run_id,
                "name": r.info.run_name,
                "status": r.info.status,
                "start_time": r.info.start_time,
                "end_time": r.info.end_time,
                "parent": r.data.tags.get("mlflow.parentRunId"),
                "tags": dict(r.data.tags),
                "params": dict(r.data.params),
                "metrics": dict(r.data.metrics),
                "artifacts": [a.path for a in client.list_artifacts(r.info.run_id)],
            }
        )
    return out


def metric_history(run_id: str, key: str) -> list[tuple[int, float]]:
    """(step, value) of every logged value of metric `key` of a run."""
    import mlflow

    return [(m.step, m.value) for m in mlflow.MlflowClient().get_metric_history(run_id, key)]
