"""Scale-out benchmark: trial throughput of one fixed search serially and on 1 and 2 Dask workers.

Runs a fixed search (random search by default, the real Keras objective on the prepared digits
data; run `dvc repro prepare` first) three times: in this process, on a Dask LocalCluster with 1
worker and with 2 workers (one thread each). Reports wall time, trials per minute, the speed-up
of 2 workers over 1 (target ≥ 1.6× on 2 cores), the cluster start-up and per-trial scheduling
overhead, and whether every run produced identical trials.

    python bench/scale.py [--algo random] [--budget 16] [--epochs 6]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from leanml import data, paths, search
from leanml.params import GA, PSO, Bayes, Fit, ModelSpec, Search
from leanml.search.objective import keras_objective
from leanml.search.space import Space
from leanml.trials import execution, runner
from leanml.trials.base import key


def _noop(objective, config, index, evaluation, seed, timeout, extra):
    return None


def _warm() -> None:
    import leanml.search.objective  # noqa: F401  (TensorFlow and Keras, once per worker)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--algo", default="random", choices=list(search.ALGORITHMS))
    parser.add_argument("--budget", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    splits = data.load_prepared(paths.load().prepare)
    cfg = Search(
        budget=args.budget,
        fit=Fit(epochs=args.epochs, early_stopping_patience=0),
        ga=GA(population=4),
        pso=PSO(particles=4),
        bayes=Bayes(initial_points=4, batch=2),
    )
    space = Space.from_params(cfg.space)
    objective = keras_objective(splits, ModelSpec(), cfg.fit)

    results, rows = {}, {}
    for name, workers in (("serial", 0), ("dask-1", 1), ("dask-2", 2)):
        start = time.perf_counter()
        executor = execution.DaskExecutor(workers) if workers else execution.SerialExecutor()
        if workers:
            executor.client.run(_warm)  # start-up includes importing TensorFlow on each worker
        startup = time.perf_counter() - start
        overhead = None
        if workers:
            # scheduling overhead: round trips of an empty task through the scheduler
            executor.share(None)
            executor.submit(_noop, None, 0, 0, 0, None, {})()  # warm
            t = time.perf_counter()
            calls = [executor.submit(_noop, None, 0, 0, 0, None, {}) for _ in range(50)]
            for call in calls:
                call()
            overhead = (time.perf_counter() - t) / 50
        algo = search.create(args.algo, space, cfg, args.seed, args.budget)
        start = time.perf_counter()
        trials = runner.run(
            algo, objective, budget=args.budget, seed=args.seed, progress=False, executor=executor
        )
        seconds = time.perf_counter() - start
        executor.close()
        trained = [t for t in trials if not t.from_cache]
        rows[name] = [(key(t.config), t.val_accuracy, t.params, t.status) for t in trials]
        results[name] = {
            "wall_seconds": round(seconds, 1),
            "trials": len(trained),
            "trials_per_minute": round(60 * len(trained) / seconds, 2),
            "mean_trial_seconds": round(statistics.mean(t.seconds for t in trained), 2),
            "cluster_start_seconds": round(startup, 1),
            "scheduler_roundtrip_ms": round(1000 * overhead, 1) if overhead else None,
            "best_val_accuracy": max(t.val_accuracy for t in trials),
        }
        print(name, json.dumps(results[name]), flush=True)

    summary = {
        "algo": args.algo,
        "budget": args.budget,
        "epochs": args.epochs,
        "speedup_2_over_1_worker": round(
            results["dask-1"]["wall_seconds"] / results["dask-2"]["wall_seconds"], 2
        ),
        "speedup_2_workers_over_serial": round(
            results["serial"]["wall_seconds"] / results["dask-2"]["wall_seconds"], 2
        ),
        "identical_trials": rows["serial"] == rows["dask-1"] == rows["dask-2"],
        "runs": results,
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
