"""search@<algo>: hyper-parameter search with one algorithm over the shared space and budget."""

import hashlib
import json
import sys
import time

from leanml import data, measure, params, paths, search, stage, tracking
from leanml.errors import LeanmlError
from leanml.io import read_json, write_csv, write_json
from leanml.search import runner
from leanml.search.objective import apply, keras_objective
from leanml.search.space import Space
from leanml.train import train_and_score


def _rows(trials, names):
    for t in trials:
        yield {
            "proposal": t.proposal,
            "evaluation": t.evaluation,
            **{name: t.config[name] for name in names},
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


def main() -> None:
    algo = sys.argv[1] if len(sys.argv) > 1 else ""
    cfg = params.load()
    if algo not in search.ALGORITHMS:
        raise LeanmlError(
            f"search: algorithm must be one of {', '.join(search.ALGORITHMS)}, got {algo!r} "
            "(usage: python stages/search.py <algo>)"
        )
    all_paths = paths.load()
    out = paths.item(all_paths.search, algo)
    base, scfg = cfg.base, cfg.search
    shared = scfg.model_dump(include={"budget", "objective", "fit", "space"})
    used = {
        "base": base.model_dump(),
        "search": {**shared, algo: getattr(scfg, algo)},
        "train": {"model": cfg.train.model},
    }
    label = f"search@{algo}"
    with tracking.stage_run(
        label, base.tracking, used, {"seed": base.seed, "algorithm": algo}
    ) as run:
        splits = data.load_prepared(all_paths.prepare)
        card = read_json(all_paths.prepare.card)
        run.set_tags({"dataset": card["dataset"], "dataset.sha256": card["sha256"]})
        space = Space.from_params(scfg.space)
        algorithm = search.create(algo, space, scfg, base.seed, scfg.budget)
        fingerprint = hashlib.sha256(
            json.dumps({**used, "data": card["sha256"]}, sort_keys=True, default=str).encode()
        ).hexdigest()
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
        trials = runner.run(
            algorithm,
            keras_objective(splits, cfg.train.model, scfg.fit),
            budget=scfg.budget,
            kind=scfg.objective.kind,
            size_weight=scfg.objective.size_weight,
            seed=base.seed,
            checkpoint=runner.Checkpoint(out.checkpoint, fingerprint),
            on_trial=on_trial,
            label=label,
        )
        seconds = time.perf_counter() - start
        best = runner.best_trial(trials)
        if best is None:
            first = next((t.error for t in trials if t.error), "no trial ran")
            raise LeanmlError(f"{label}: all {len(trials)} trials failed; first error: {first}")

        # The best configuration retrained from its own seed: the same weights as in its trial.
        spec, fit = apply(best.config, cfg.train.model, scfg.fit)
        result = train_and_score(spec, splits, fit, seed=best.seed, progress=False)
        measure.save_model(result.model, out.model)
        measured = measure.measure(result.model, out.model, splits.val.x[:64], base.measure)

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
        names = space.names
        write_csv(out.trials, _rows(trials, names), list(next(_rows(trials[:1], names))))
        write_csv(out.convergence, curve, ["evaluation", "best_score", "best_val_accuracy"])
        write_csv(out.pareto, _rows(front, names), list(next(_rows(trials[:1], names))))
        write_json(
            out.best,
            {
                "algorithm": algo,
                "config": best.config,
                "trial": best.proposal,
                "seed": best.seed,
                "score": best.score,
                "val_accuracy": result.metrics["val_accuracy"],
                "model": {"spec": spec.model_dump(), "fit": fit.model_dump()},
            },
        )
        write_json(out.metrics, metrics)

        run.log_metrics(metrics)
        for path in (out.trials, out.convergence, out.pareto, out.best, out.metrics):
            run.log_artifact(path)
        run.log_keras_model(result.model, splits.val.x[:5], name="best_model")
        if best.proposal in trial_runs:
            tracking.tag_run(trial_runs[best.proposal], {"best": "true"})
        print(
            f"{label}: best val_accuracy {metrics['best_val_accuracy']:.4f} "
            f"(score {best.score:.4f}) after {metrics['evaluations']} evaluations, "
            f"{metrics['cache_hits']} cached, {metrics['failed_trials']} failed -> {out.model}"
        )


if __name__ == "__main__":
    stage.run(main, "search")
