"""NAS benchmark, leave-one-task-out (issue 17): meta warm start vs random NAS vs RL on tasks
the meta-dataset has never seen.

The meta-dataset is built once from every bundled source task (the full digits data split into
classes 0-4 / 5-9, iris, wine, breast-cancer, synthetic tasks), as the `nas_metadata` stage
does. Each bundled dataset (digits, iris, wine, breast-cancer) is then the target in turn,
prepared as the prepare stage prepares a user's file (seeded stratified train/val/test split,
scaled on train), and the meta strategy only sees the source tasks the pipeline's own rule
keeps (`tasks.select_sources`: no task with the target's data digest, none that is a split of
the target's data: digits 0-4 / 5-9 for the digits target). Each task's rows come from its own
data only, so removing the held-out task's rows is the meta-dataset built without it (the
architectures the other tasks sampled are the same draws either way, up to the sampler's
position). Every strategy trains `--budget` children per seed at the same fit.

    python bench/nas.py [--budget 10] [--seeds 5] [--epochs 6] [--targets digits,iris,...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from leanml import data, nas
from leanml.nas.meta import build_metadataset, load_metadataset, meta_features
from leanml.nas.objective import nas_objective, reward, train_child, transfer_kwargs
from leanml.nas.space import ArchSpace
from leanml.nas.tasks import bundled_tasks, select_sources
from leanml.params import Fit, Nas
from leanml.trials import runner

TARGETS = ("digits", "iris", "wine", "breast_cancer")
STRATEGIES = ("random", "rl", "meta")


def target_data(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The target's samples as a user would bring them (digits: the embedded loader)."""
    if name == "digits":
        return data.load("digits")
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    return data._check_arrays(bunch.data, bunch.target, f"{name}.npz")  # as load_npz checks


def children_to_reach(curve: list[dict], level: float) -> int | None:
    """The first child after which the best val accuracy so far is >= `level` (None: never)."""
    return next((r["evaluation"] for r in curve if r["best_val_accuracy"] >= level), None)


def run_target(name, cfg, rows, models, seeds, synthetic):
    x, y = target_data(name)
    kept, excluded = select_sources(bundled_tasks(0, synthetic), x)
    left_out = {e["task"] for e in excluded}
    own = {"digits": {"digits_0to4", "digits_5to9"}}.get(name, {name})
    if not own <= left_out:  # the pipeline's rule must remove the held-out task itself
        sys.exit(f"bench: the exclusion rule kept {sorted(own - left_out)} for target {name}")
    names = {t.name for t in kept}
    rows = [r for r in rows if r.task in names]
    models = {t: p for t, p in models.items() if t in names}
    splits = data.split(x, y, 0.15, 0.15, 0)  # the prepare stage's defaults
    space = ArchSpace(cfg.space, image_input=len(splits.input_shape) == 3)
    extra = {
        "rows": rows,
        "target": meta_features(splits),
        "models": models,
        "input_shape": splits.input_shape,
        "n_classes": splits.n_classes,
    }
    curves: dict[str, list] = {s: [] for s in STRATEGIES}
    for seed in range(seeds):
        for strategy in STRATEGIES:
            algo = nas.create(strategy, space, cfg, seed, **(extra if strategy == "meta" else {}))
            trials = runner.run(
                algo,
                nas_objective(space, splits, cfg.fit),
                trial_kwargs=transfer_kwargs(algo),
                budget=cfg.budget,
                seed=seed,
                progress=False,
                score=reward(cfg.reward),
            )
            curves[strategy].append(runner.convergence(trials))
            best = curves[strategy][-1][-1]["best_val_accuracy"]
            print(f"{name} seed {seed} {strategy}: best {best:.4f}", flush=True)
    return curves, sorted(names), excluded


def summarise(curves: dict[str, list], budget: int) -> dict:
    out = {}
    for strategy, runs in curves.items():
        bests = [c[-1]["best_val_accuracy"] for c in runs]
        out[strategy] = {"mean": statistics.mean(bests), "std": statistics.pstdev(bests)}
        out[strategy]["per_seed"] = [round(b, 4) for b in bests]
    # children each strategy needs to reach random NAS's final best, per seed; never reached
    # within the budget counts as budget + 1 (a lower bound: stated beside the mean)
    for strategy in STRATEGIES:
        hits = [
            children_to_reach(c, r[-1]["best_val_accuracy"])
            for c, r in zip(curves[strategy], curves["random"], strict=True)
        ]
        out[strategy]["to_random_best"] = hits
        out[strategy]["to_random_best_mean"] = statistics.mean(
            budget + 1 if h is None else h for h in hits
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--out", default="", help="write the results as JSON here too")
    args = parser.parse_args()
    print("command: python bench/nas.py " + " ".join(sys.argv[1:]), flush=True)
    started = time.monotonic()
    cfg = Nas(
        budget=args.budget,
        fit=Fit(epochs=args.epochs, learning_rate=0.003, early_stopping_patience=2),
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        fit = cfg.fit.model_copy(update={"epochs": cfg.meta.source_epochs})
        payload = build_metadataset(
            lambda image: ArchSpace(cfg.space, image_input=image),
            lambda sp, arch, s, seed: train_child(sp, arch, s, fit, seed),
            seed=0,
            n_archs=cfg.meta.source_architectures,
            synthetic=cfg.meta.synthetic_tasks,
            model_dir=Path(tmp),
        )
        meta_file = Path(tmp) / "metadata.json"
        meta_file.write_text(json.dumps(payload))
        rows, models = load_metadataset(meta_file)
        print(f"meta-dataset: {len(rows)} rows, {time.monotonic() - started:.0f} s", flush=True)
        for name in args.targets.split(","):
            t0 = time.monotonic()
            curves, sources, excluded = run_target(
                name, cfg, rows, models, args.seeds, cfg.meta.synthetic_tasks
            )
            results[name] = summarise(curves, cfg.budget)
            results[name] |= {"sources": sources, "excluded": excluded}
            results[name]["seconds"] = round(time.monotonic() - t0)
            print(json.dumps({name: results[name]}), flush=True)
    mean = {
        s: statistics.mean(r[s]["to_random_best_mean"] for r in results.values())
        for s in STRATEGIES
    }
    summary = {
        "budget": cfg.budget,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "children_to_random_best_mean_over_targets": mean,
        "meta_over_random": mean["meta"] / mean["random"],
        "target_met (meta <= 1/2 random)": mean["meta"] <= mean["random"] / 2,
        "seconds": round(time.monotonic() - started),
    }
    print(json.dumps(summary, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps({"targets": results, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
