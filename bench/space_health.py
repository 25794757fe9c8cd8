"""Space health: the share of random configurations near chance at the search fidelity.

Samples N configurations uniformly from `search.space` (params.yaml), trains each with
`search.fit` (the trial fidelity) on the prepared data (run `dvc repro prepare` first) and
reports how many end below `--threshold` val accuracy (digits: chance is 0.10), by optimizer.

    python bench/space_health.py [--n 40] [--seed 0] [--threshold 0.25]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

import numpy as np

from leanml import data, params, paths
from leanml.search.objective import keras_objective
from leanml.search.space import Space
from leanml.trials.runner import trial_seed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=float, default=0.25)
    args = parser.parse_args()

    cfg = params.load()
    splits = data.load_prepared(paths.load().prepare)
    space = Space.from_params(cfg.search.space)
    objective = keras_objective(splits, cfg.train.model, cfg.search.fit)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    rows = []
    for i in range(args.n):
        config = space.sample(rng)
        out = objective(config, trial_seed(args.seed, i))
        acc = out["val_accuracy"] if out["status"] == "ok" else 0.0
        rows.append((config, acc))
        print(f"{i:2d} {acc:.3f} {json.dumps(config)}", flush=True)
    dead = [(c, a) for c, a in rows if a < args.threshold]
    by_opt = Counter(c.get("optimizer", "-") for c, _ in dead)
    accs = [a for _, a in rows]
    print(
        json.dumps(
            {
                "n": args.n,
                "epochs": cfg.search.fit.epochs,
                "near_chance": len(dead),
                "near_chance_share": round(len(dead) / args.n, 3),
                "near_chance_by_optimizer": dict(sorted(by_opt.items())),
                "median_val_accuracy": round(float(np.median(accs)), 4),
                "seconds": round(time.perf_counter() - start, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
