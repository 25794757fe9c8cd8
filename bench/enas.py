"""ENAS (weight sharing) vs RL with full child training vs random NAS, at equal wall clock.

In-process on the prepared digits data (`dvc repro prepare` first), the stage's defaults
(`nas` section of params.yaml) with no baseline child. Per seed:

1. ENAS runs its supernet phase and trains its `nas.enas.children` final children through the
   trial engine: its wall-clock time T and its training samples S are the budget.
2. RL and random NAS train children (`nas.fit`) until T has passed: a child that ends after T
   does not count (the prefix of children that fits in T is what a run stopped at T returns;
   the children do not depend on time). The same runs give the equal-samples view: the
   children whose cumulative training samples fit in S.
3. Each strategy's best child (by its trial's val score) is refit at full fidelity (the train
   stage's fit, as the stage does) and scored on val and test.

The machine is shared: wall clock is noisy, so the table also gives the training samples each
strategy processed (a budget no other process changes).

    python bench/enas.py [--seeds 5] [--cap 16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from leanml import data, nas, params, paths
from leanml.nas.objective import nas_objective, reward, train_child
from leanml.nas.space import ArchSpace
from leanml.train import evaluate
from leanml.trials import runner


class OutOfTime(BaseException):
    """Ends a run at the wall-clock budget (not an Exception: the runner does not record it)."""


def run(name, space, cfg, seed, splits, deadline=None):
    """(trials, [(seconds since start, cumulative training samples) per trial], algorithm)."""
    start = time.perf_counter()
    extra = {"data": splits} if name == "enas" else {}
    algo = nas.create(name, space, cfg, seed, **extra)
    objective = nas_objective(space, splits, cfg.fit)
    trials, marks, samples = [], [], [0]
    n_train = len(splits.train.y)

    def timed(arch, trial_seed):
        if deadline is not None and time.perf_counter() - start > deadline:
            raise OutOfTime
        return objective(arch, trial_seed)

    def on_trial(t):
        samples[0] += t.epochs * n_train
        trials.append(t)
        marks.append((time.perf_counter() - start, samples[0]))

    try:
        runner.run(
            algo,
            timed,
            budget=cfg.budget,
            seed=seed,
            progress=False,
            score=reward(cfg.reward),
            on_trial=on_trial,
        )
    except OutOfTime:
        pass
    return trials, marks, algo


def refit(space, splits, fit, trial, cache):
    key = (json.dumps(trial.config, sort_keys=True), trial.seed)
    if key not in cache:
        result = train_child(space, trial.config, splits, fit, trial.seed)
        cache[key] = (
            result.metrics["val_accuracy"],
            evaluate(result.model, splits.test)["accuracy"],
            result.metrics["epochs_run"],
        )
    return cache[key]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--cap", type=int, default=16, help="most children RL/random train")
    args = parser.parse_args()
    cfg_all = params.load()
    splits = data.load_prepared(paths.load().prepare)
    base = cfg_all.nas.model_copy(update={"include_baseline": False})
    final_fit = base.final_fit or cfg_all.train.fit_settings()
    space = ArchSpace(base.space, image_input=len(splits.input_shape) == 3)
    n_train = len(splits.train.y)
    rows = []
    for seed in range(args.seeds):
        cache: dict = {}
        e_trials, e_marks, enas = run("enas", space, base, seed, splits)
        seconds, enas_metrics = e_marks[-1][0], enas.report().metrics
        enas_samples = enas_metrics["supernet_train_samples"] + e_marks[-1][1]
        row = {"seed": seed, "budget_seconds": seconds, "budget_samples": enas_samples}
        best = runner.best_trial(e_trials)
        val, test, _ = refit(space, splits, final_fit, best, cache)
        row["enas"] = {
            "val": val,
            "test": test,
            "trial_val": best.val_accuracy,
            "children": len(e_trials),
            "updates": enas_metrics["controller_updates"],
            "supernet_seconds": enas_metrics["supernet_seconds"],
            "samples": enas_samples,
            "architecture": space.describe(best.config),
        }
        cfg = base.model_copy(update={"budget": args.cap})
        for name in ("rl", "random"):
            trials, marks, algo = run(name, space, cfg, seed, splits, deadline=seconds)
            for view, at, limit in (("time", 0, seconds), ("samples", 1, enas_samples)):
                kept = [t for t, m in zip(trials, marks, strict=True) if m[at] <= limit]
                kept = kept or trials[:1]
                best = runner.best_trial(kept)
                val, test, _ = refit(space, splits, final_fit, best, cache)
                row[f"{name}_{view}"] = {
                    "val": val,
                    "test": test,
                    "trial_val": best.val_accuracy,
                    "children": len(kept),
                    "updates": len(kept) // cfg.rl.children_per_update if name == "rl" else 0,
                    "samples": sum(t.epochs for t in kept) * n_train,
                    "architecture": space.describe(best.config),
                }
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps(summary(rows), indent=2))


def summary(rows):
    def stat(values):
        return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"

    out = {
        "budget_seconds": stat([r["budget_seconds"] for r in rows]),
        "budget_samples": stat([r["budget_samples"] for r in rows]),
    }
    for name in ("enas", "rl_time", "random_time", "rl_samples", "random_samples"):
        runs = [r[name] for r in rows]
        out[name] = {k: stat([x[k] for x in runs]) for k in ("val", "test", "children", "samples")}
        out[name]["updates"] = stat([x["updates"] for x in runs])
    return out


if __name__ == "__main__":
    main()
