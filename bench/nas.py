"""NAS benchmark: RL vs random NAS, and meta warm start vs cold start, on the digits target.

In-process on the prepared data (run `dvc repro prepare` first), with the real child training.
The target task (all ten digits classes) is not in the meta-dataset (its source tasks are
digits 0-4 / 5-9, iris, wine, breast-cancer and synthetic tasks).

    python bench/nas.py [--budget 15] [--seeds 3] [--epochs 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from leanml import data, nas, paths
from leanml.nas.meta import build_metadataset, load_metadataset, meta_features
from leanml.nas.objective import nas_objective, reward, train_child, transfer_kwargs
from leanml.nas.space import ArchSpace
from leanml.params import Fit, Nas
from leanml.trials import runner


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    splits = data.load_prepared(paths.load().prepare)
    cfg = Nas(
        budget=args.budget,
        fit=Fit(epochs=args.epochs, learning_rate=0.003, early_stopping_patience=2),
    )
    space = ArchSpace(cfg.space, image_input=True)

    with tempfile.TemporaryDirectory() as tmp:
        fit = cfg.fit.model_copy(update={"epochs": cfg.meta.source_epochs})
        payload = build_metadataset(
            lambda image: ArchSpace(cfg.space, image_input=image),
            lambda sp, arch, s, seed: train_child(sp, arch, s, fit, seed),
            seed=0,
            n_archs=cfg.meta.source_architectures,
            synthetic=cfg.meta.synthetic_tasks,
            model_dir=Path(tmp),
            digits_xy=(splits.train.x, splits.train.y),  # no target val/test image leaks
        )
        meta_file = Path(tmp) / "metadata.json"
        meta_file.write_text(json.dumps(payload))
        rows, models = load_metadataset(meta_file)
        target = meta_features(splits)

        results: dict[str, list] = {"rl": [], "random": [], "meta": []}
        for seed in range(args.seeds):
            for name in results:
                extra = {"rows": rows, "target": target, "models": models} if name == "meta" else {}
                algo = nas.create(name, space, cfg, seed, **extra)
                trials = runner.run(
                    algo,
                    nas_objective(space, splits, cfg.fit),
                    trial_kwargs=transfer_kwargs(algo),
                    budget=cfg.budget,
                    seed=seed,
                    progress=False,
                    score=reward(cfg.reward),
                )
                curve = runner.convergence(trials)
                results[name].append(curve)
                print(f"seed {seed} {name}: best {curve[-1]['best_val_accuracy']:.4f}", flush=True)

    table = {}
    for name, curves in results.items():
        bests = [c[-1]["best_val_accuracy"] for c in curves]
        table[name] = {
            "best_val_accuracy_mean": round(statistics.mean(bests), 4),
            "best_val_accuracy_std": round(statistics.pstdev(bests), 4),
        }
    # children the meta warm start needs to reach the cold start's (random NAS) final best
    needed = []
    for meta_curve, cold_curve in zip(results["meta"], results["random"], strict=True):
        target_acc = cold_curve[-1]["best_val_accuracy"]
        hit = next(
            (r["evaluation"] for r in meta_curve if r["best_val_accuracy"] >= target_acc), None
        )
        needed.append(hit)
    table["meta_children_to_reach_cold_best"] = needed
    table["budget"] = cfg.budget
    print(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
