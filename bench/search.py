"""Search benchmark: GA, PSO, BO and random on one space and budget over several seeds.

Runs in-process on the prepared digits data (run `dvc repro prepare` first), with the real
Keras objective. Reports mean ± std of the best val accuracy per algorithm, the evaluations each
needs to reach random search's final best (mean over seeds), and the share of a search's wall
time that is pipeline overhead (MLflow trial runs, cache, checkpoint) rather than training.

    python bench/search.py [--budget 30] [--seeds 5] [--epochs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from leanml import data, paths, search
from leanml.params import Fit, ModelSpec, Search, Tracking
from leanml.search.objective import keras_objective
from leanml.search.space import Space
from leanml.trials import runner
from leanml.trials.checkpoint import Checkpoint


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()

    splits = data.load_prepared(paths.load().prepare)
    cfg = Search(budget=args.budget, fit=Fit(epochs=args.epochs, early_stopping_patience=2))
    space = Space.from_params(cfg.space)
    objective = keras_objective(splits, ModelSpec(), cfg.fit)
    results: dict[str, list] = {name: [] for name in search.ALGORITHMS}
    for seed in range(args.seeds):
        for name in search.ALGORITHMS:
            algo = search.create(name, space, cfg, seed, cfg.budget)
            trials = runner.run(algo, objective, budget=cfg.budget, seed=seed, progress=False)
            curve = runner.convergence(trials)
            results[name].append({"best": curve[-1]["best_val_accuracy"], "curve": curve})
            print(f"seed {seed} {name}: best {curve[-1]['best_val_accuracy']:.4f}", flush=True)

    table = {}
    for name, runs in results.items():
        bests = [r["best"] for r in runs]
        to_random = []
        for run, rnd in zip(runs, results["random"], strict=True):
            target = rnd["best"]
            hit = next(
                (r["evaluation"] for r in run["curve"] if r["best_val_accuracy"] >= target), None
            )
            to_random.append(hit if hit is not None else float("nan"))
        reached = [x for x in to_random if x == x]
        table[name] = {
            "best_val_accuracy_mean": round(statistics.mean(bests), 4),
            "best_val_accuracy_std": round(statistics.pstdev(bests), 4),
            "evals_to_random_best_mean": round(statistics.mean(reached), 1) if reached else None,
            "reached_random_best": f"{len(reached)}/{len(runs)}",
        }
    print(json.dumps(table, indent=2))
    print(json.dumps({"overhead": overhead(splits, cfg, space)}, indent=2))


def overhead(splits, cfg: Search, space: Space, budget: int = 10) -> dict:
    """Wall time of a random search with MLflow trial runs and a checkpoint vs its training."""
    from leanml import tracking

    with tempfile.TemporaryDirectory() as tmp:
        track = Tracking(uri=f"sqlite:///{tmp}/mlflow.db", experiment="bench")
        objective = keras_objective(splits, ModelSpec(), cfg.fit)
        algo = search.create("random", space, cfg, 0, budget)
        with tracking.stage_run("search@bench", track) as run:

            def on_trial(t):
                with run.child(f"trial-{t.proposal}", t.config, {"status": t.status}) as child:
                    child.log_metrics({"val_accuracy": t.val_accuracy, "params": t.params})

            start = time.perf_counter()
            trials = runner.run(
                algo,
                objective,
                budget=budget,
                seed=0,
                progress=False,
                checkpoint=Checkpoint(Path(tmp) / "ck.jsonl", "bench"),
                on_trial=on_trial,
            )
            wall = time.perf_counter() - start
    trained = sum(t.seconds for t in trials)
    return {
        "trials": len(trials),
        "wall_s": round(wall, 2),
        "objective_s": round(trained, 2),
        "overhead_share": round(1 - trained / wall, 4),
        "per_trial_overhead_ms": round(1000 * (wall - trained) / len(trials), 1),
    }


if __name__ == "__main__":
    main()
