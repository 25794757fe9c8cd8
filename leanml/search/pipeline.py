"""What a search-like stage does around the runner: track trials, retrain the best, write outputs.

Shared by `search@<algo>` and `nas@<strategy>`: the same trial table, convergence curve, Pareto
front, best.json, metrics.json, best model, nested MLflow runs and resume checkpoint.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

from leanml import measure, tracking
from leanml.errors import LeanmlError
from leanml.io import write_csv, write_json, write_metrics
from leanml.search import execution as executors
from leanml.search import runner
from leanml.search.base import Algorithm
from leanml.train import TrainResult


def _rows(trials: list[runner.Trial], names: list[str]) -> Iterator[dict[str, Any]]:
    for t in trials:
        yield {
            "proposal": t.proposal,
            "evaluation": t.evaluation,
            **{name: t.config.get(name) for name in names},
            "val_accuracy": t.val_accuracy,
            "score": t.score,
            "params": t.params,
            "file_bytes": t.file_bytes,
            "seconds": round(t.seconds, 3),
            "status": t.status,
            "from_cache": t.from_cache,
            "seed": t.seed,
            "error": t.error,
        }


def execute(
    *,
    label: str,
    run: tracking.StageRun,
    algorithm: Algorithm,
    objective: runner.Objective,
    names: list[str],
    budget: int,
    seed: int,
    fingerprint: str,
    out: SimpleNamespace,
    retrain: Callable[[runner.Trial], TrainResult],
    best_info: Callable[[runner.Trial], dict[str, Any]],
    measure_cfg: Any,
    sample: Any,
    score: Callable[[runner.Trial], float] | None = None,
    kind: str = "accuracy",
    size_weight: float = 0.0,
    execution: Any = None,
    trial_kwargs: Callable[[Any], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run the search, write every output in `out` (see `paths.item`), return metrics.json.

    `execution` (the params section) says where trials run; it never changes the results.
    """
    trial_runs: dict[int, str] = {}

    def on_trial(t: runner.Trial) -> None:
        tags = {"status": t.status, "from_cache": t.from_cache, "seed": t.seed}
        with run.child(f"trial-{t.proposal:03d}", t.config, tags) as child:
            child.log_metrics(
                {
                    "val_accuracy": t.val_accuracy,
                    "score": t.score,
                    "params": t.params,
                    "file_bytes": t.file_bytes,
                    "seconds": t.seconds,
                    "evaluation": t.evaluation,
                }
            )
            if t.error:
                child.set_tags({"error": t.error})
            trial_runs[t.proposal] = child.run_id

    start = time.perf_counter()
    executor = executors.create(execution)
    print(f"{label}: trials run on {executor.description}", file=sys.stderr)
    run.set_tags({"execution": executor.description})
    try:
        trials = runner.run(
            algorithm,
            objective,
            budget=budget,
            kind=kind,
            size_weight=size_weight,
            score=score,
            seed=seed,
            checkpoint=runner.Checkpoint(out.checkpoint, fingerprint),
            on_trial=on_trial,
            label=label,
            executor=executor,
            trial_timeout=execution.trial_timeout if execution is not None else None,
            trial_kwargs=trial_kwargs,
        )
    finally:
        executor.close()
    seconds = time.perf_counter() - start
    best = runner.best_trial(trials)
    if best is None:
        first = next((t.error for t in trials if t.error), "no trial ran")
        raise LeanmlError(f"{label}: all {len(trials)} trials failed; first error: {first}")

    # The best configuration retrained from its own seed: the same weights as in its trial.
    result = retrain(best)
    measure.save_model(result.model, out.model)
    measured = measure.measure(result.model, out.model, sample, measure_cfg)

    curve = runner.convergence(trials)
    final = curve[-1]["best_score"]
    to_best = next(r["evaluation"] for r in curve if r["best_score"] >= final)
    front = runner.pareto_front(trials)
    metrics = {
        "best_score": best.score,
        "best_val_accuracy": result.metrics["val_accuracy"],
        "evaluations": max(t.evaluation for t in trials),
        "proposals": len(trials),
        "cache_hits": sum(t.from_cache for t in trials),
        "failed_trials": sum(not t.ok for t in trials),
        "evaluations_to_best": to_best,
        "pareto_size": len(front),
        "search_seconds": seconds,
        **{f"best_{k}": v for k, v in measured.items()},
    }
    columns = list(next(_rows(trials[:1], names)))
    write_csv(out.trials, _rows(trials, names), columns)
    write_csv(out.convergence, curve, ["evaluation", "best_score", "best_val_accuracy"])
    write_csv(out.pareto, _rows(front, names), columns)
    write_json(
        out.best,
        {
            "config": best.config,
            "trial": best.proposal,
            "seed": best.seed,
            "score": best.score,
            "val_accuracy": result.metrics["val_accuracy"],
            **best_info(best),
        },
    )
    write_metrics(out.metrics, out.timings, metrics)  # search seconds, latency: timings

    run.log_metrics(metrics)
    for path in (out.trials, out.convergence, out.pareto, out.best, out.metrics, out.timings):
        run.log_artifact(path)
    run.log_keras_model(result.model, sample[:5], name="best_model")
    if best.proposal in trial_runs:
        tracking.tag_run(trial_runs[best.proposal], {"best": "true"})
    print(
        f"{label}: best val_accuracy {metrics['best_val_accuracy']:.4f} "
        f"(score {best.score:.4f}) after {metrics['evaluations']} evaluations, "
        f"{metrics['cache_hits']} cached, {metrics['failed_trials']} failed -> {out.model}"
    )
    return metrics
