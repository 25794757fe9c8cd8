"""What a search-like stage does around the runner: track trials, refit the best, write outputs.

Shared by `search@<algo>` and `nas@<strategy>`: the same trial table, convergence curve, Pareto
front, best.json, metrics.json, best model, nested MLflow runs and resume checkpoint. A stage
describes its problem as a `Study` and its run as `Settings`, then calls `execute`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from leanml import glossary, measure, tracking
from leanml.errors import LeanmlError
from leanml.io import write_csv, write_json, write_metrics
from leanml.stage import raise_if_interrupted
from leanml.train import TrainResult
from leanml.trials import execution as executors
from leanml.trials import runner
from leanml.trials.base import Algorithm, Config, Trial
from leanml.trials.checkpoint import Checkpoint
from leanml.trials.fidelity import Plan


@dataclass(frozen=True)
class Study:
    """The problem a stage searches: what a trial trains, how it scores, how the best is kept."""

    objective: runner.Objective  # (config, seed, **trial_kwargs) -> trial metrics
    score: runner.ScoreFn  # trial -> the number maximised
    refit: Callable[[Trial], TrainResult]  # the best config retrained at full fidelity
    describe_best: Callable[[Trial], dict[str, Any]]  # extra best.json fields
    names: list[str]  # config names: the trial table's columns
    fingerprint: str  # what the resume checkpoint is valid for (`trials.fingerprint`)
    trial_kwargs: Callable[[Config], dict[str, Any]] | None = None  # per-trial, from the driver
    # the hand-made baseline at full fidelity (the train stage's model, scored on val): it
    # replaces the refit winner when its val accuracy is strictly higher
    incumbent: Callable[[], TrainResult] | None = None


@dataclass(frozen=True)
class Settings:
    """How a stage runs a study: none of these but the budget and seed change a trial."""

    label: str  # e.g. "search@ga", in logs and errors
    budget: int  # trained evaluations
    seed: int
    sample: Any  # inputs for the logged model's signature
    execution: Any = None  # the `execution` params section (None: serial, no time limit)
    epoch_budget: int | None = None  # training epochs over all trials (None: trials only)
    fidelity: Plan = Plan()  # multi-fidelity rungs (`trials.fidelity`)

    @classmethod
    def of(cls, label: str, section: Any, cfg: Any, sample: Any) -> Settings:
        """From a stage's params section (`search` or `nas`: budget, epoch_budget, fidelity,
        fit) and the whole params (`base`, `execution`)."""
        return cls(
            label,
            section.budget,
            cfg.base.seed,
            sample,
            cfg.execution,
            epoch_budget=section.epoch_budget,
            fidelity=Plan.of(section.fidelity, section.fit.epochs),
        )


def baseline_model(path: Path, val: Any) -> Callable[[], TrainResult]:
    """A `Study.incumbent`: the train stage's model at `path`, scored on the val split."""

    def load() -> TrainResult:
        from leanml import models
        from leanml.train import evaluate

        model = models.load(path, "train")
        accuracy = evaluate(model, val)["accuracy"]
        return TrainResult(model, [], {"val_accuracy": accuracy, "status": "ok"})

    return load


def _rows(trials: list[Trial], names: list[str]) -> Iterator[dict[str, Any]]:
    for t in trials:
        yield {
            "proposal": t.proposal,
            "evaluation": t.evaluation,
            **{name: t.config.get(name) for name in names},
            "val_accuracy": t.val_accuracy,
            "score": t.score,
            "params": t.params,
            "file_bytes": t.file_bytes,
            "epochs": t.epochs,
            "seconds": round(t.seconds, 3),
            "status": t.status,
            "from_cache": t.from_cache,
            "seed": t.seed,
            "error": t.error,
        }


def execute(
    study: Study,
    algorithm: Algorithm,
    run: tracking.StageRun,
    out: SimpleNamespace,
    settings: Settings,
) -> dict[str, Any]:
    """Run the search, write every output in `out` (see `paths.item`), return metrics.json.

    `settings.execution` says where trials run; it never changes the results.
    """
    label, execution = settings.label, settings.execution
    trial_runs: dict[int, str] = {}

    def on_trial(t: Trial) -> None:
        tags = {"status": t.status, "from_cache": t.from_cache, "seed": t.seed}
        with run.child(f"trial-{t.proposal:03d}", t.config, tags, t.span) as child:
            child.log_metrics(
                {
                    "val_accuracy": t.val_accuracy,
                    "score": t.score,
                    "n_params": t.params,
                    "file_bytes": t.file_bytes,
                    "seconds": t.seconds,
                    "evaluation": t.evaluation,
                    "epochs": t.epochs,
                }
            )
            if t.extra.get("val_curve"):  # the learning curve the rungs judged, per epoch
                child.log_curve("epoch_val_accuracy", t.extra["val_curve"])
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
            study.objective,
            budget=settings.budget,
            seed=settings.seed,
            score=study.score,
            checkpoint=Checkpoint(out.checkpoint, study.fingerprint),
            on_trial=on_trial,
            label=label,
            executor=executor,
            trial_timeout=execution.trial_timeout if execution is not None else None,
            trial_kwargs=study.trial_kwargs,
            epoch_budget=settings.epoch_budget,
            fidelity=settings.fidelity,
        )
    finally:
        executor.close()
    seconds = time.perf_counter() - start
    best = runner.best_trial(trials)
    if best is None:
        first = next((t.error for t in trials if t.error), "no trial ran")
        raise LeanmlError(f"{label}: all {len(trials)} trials failed; first error: {first}")

    # The best configuration retrained at full fidelity (`final_fit`) from its trial's seed:
    # selection used the trials' val scores only; the refit's val accuracy is reported beside.
    # The baseline at full fidelity competes with it (on val, never test): a search returns
    # the hand-made model rather than a worse one, and says so.
    refit = result = study.refit(best)
    baseline = study.incumbent() if study.incumbent else None
    source = "refit"
    if baseline is not None and baseline.metrics["val_accuracy"] > refit.metrics["val_accuracy"]:
        result, source = baseline, "baseline"
    raise_if_interrupted()  # no outputs from a run that was asked to stop
    measure.save_model(result.model, out.model)
    measured = measure.measure(result.model, out.model)

    curve = runner.convergence(trials)
    final = curve[-1]["best_score"]
    to_best = next(r["evaluation"] for r in curve if r["best_score"] >= final)
    front = runner.pareto_front(trials)
    metrics = {
        "best_trial.score": best.score,
        "best_trial.val_accuracy": best.val_accuracy,  # the winner's trial (search fidelity)
        "refit.val_accuracy": refit.metrics["val_accuracy"],  # its refit (final fidelity)
        "refit.epochs_run": refit.metrics["epochs_run"],
        # the stage's model: the refit, or the baseline when that scored higher on val
        "best.val_accuracy": result.metrics["val_accuracy"],
        "winner_is_baseline": int(source == "baseline"),
        "evaluations": max(t.evaluation for t in trials),
        "proposals": len(trials),
        "cache_hits": sum(t.from_cache for t in trials),
        "failed_trials": sum(not t.ok for t in trials),
        "pruned_trials": sum(t.pruned and not t.from_cache for t in trials),
        "epochs_spent": sum(t.epochs for t in trials),
        "evaluations_to_best": to_best,
        "pareto_size": len(front),
        "search_seconds": seconds,
        **{f"best.{k}": v for k, v in glossary.as_metrics(measured).items()},
        **algorithm.report().metrics,  # e.g. a weight-sharing controller's updates
    }
    columns = list(next(_rows(trials[:1], study.names)))
    write_csv(out.trials, _rows(trials, study.names), columns)
    write_csv(out.convergence, curve, ["evaluation", "epochs", "best_score", "best_val_accuracy"])
    write_csv(out.pareto, _rows(front, study.names), columns)
    write_json(
        out.best,
        {
            "config": best.config,
            "trial": best.proposal,
            "seed": best.seed,
            "score": best.score,
            "trial_val_accuracy": best.val_accuracy,
            "refit_val_accuracy": refit.metrics["val_accuracy"],
            "refit_epochs_run": refit.metrics["epochs_run"],
            # which model the stage keeps: "refit" (the winner) or "baseline" (higher val)
            "source": source,
            "val_accuracy": result.metrics["val_accuracy"],  # the kept model's
            **study.describe_best(best),
        },
    )
    write_metrics(out.metrics, out.timings, metrics)  # search seconds: timings

    run.log_metrics(metrics)
    for path in (out.trials, out.convergence, out.pareto, out.best, out.metrics, out.timings):
        run.log_artifact(path)
    for step, values in algorithm.report().steps:  # e.g. an RL controller, once per update
        run.log_metrics(values, step=step)
    run.log_keras_model(result.model, settings.sample[:5], name="best_model")
    if best.proposal in trial_runs:
        tracking.tag_run(trial_runs[best.proposal], {"best": "true"})
    kept = "the refit" if source == "refit" else "the baseline (higher val than the refit)"
    print(
        f"{label}: kept {kept}, val_accuracy {metrics['best.val_accuracy']:.4f}; refit "
        f"{metrics['refit.val_accuracy']:.4f}, trial {best.val_accuracy:.4f}, score "
        f"{best.score:.4f}; after "
        f"{metrics['evaluations']} evaluations ({metrics['epochs_spent']} epochs), "
        f"{metrics['cache_hits']} cached, {metrics['pruned_trials']} pruned, "
        f"{metrics['failed_trials']} failed -> {out.model}"
    )
    return metrics
