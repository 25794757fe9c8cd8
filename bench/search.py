"""Search benchmark: every algorithm with and without multi-fidelity trials, at one epoch budget.

On the prepared digits data (run `dvc repro prepare` first), with the real Keras objective, as
`search@<algo>` runs it: the baseline as the first trial, the winner refit at full fidelity (the
train stage's fit: 30 epochs, early stopping patience 5) from its trial's seed. For each
algorithm × fidelity (`none`: every trial `--epochs` epochs; `asha`: rungs from `--min-epochs`
to `--max-epochs`, eta 3) × seed it records the refit winner's val accuracy (selection read
trials' val scores only), its test accuracy (information only), the configurations tried and the
epochs spent. Reports mean ± std over seeds and a paired Wilcoxon test of each algorithm against
random search at the same fidelity, and of asha against none per algorithm.

    python bench/search.py [--seeds 5] [--epoch-budget 60] [--algorithms ga pso bayes tpe random]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from leanml import data, paths, search
from leanml.params import Fidelity, Fit, Search, Train
from leanml.search.objective import search_study
from leanml.search.space import Space, baseline
from leanml.study import wilcoxon_pair
from leanml.train import evaluate
from leanml.trials import runner
from leanml.trials.fidelity import Plan

OUT = Path(__file__).parent / "out"


def one(splits, name: str, seed: int, kind: str, args) -> dict:
    fidelity = Fidelity(kind=kind, min_epochs=args.min_epochs, max_epochs=args.max_epochs, eta=3)
    cfg = Search(
        budget=10_000,  # the epoch budget ends every search
        epoch_budget=args.epoch_budget,
        fit=Fit(epochs=args.epochs, early_stopping_patience=2),
        fidelity=fidelity,
    )
    train = Train()
    space = Space.from_params(cfg.space)
    study = search_study(space, splits, train.model, cfg, name, "bench", train.fit_settings())
    algo = search.create(name, space, cfg, seed, cfg.budget, [baseline(train, space)])
    start = time.perf_counter()
    trials = runner.run(
        algo,
        study.objective,
        budget=cfg.budget,
        seed=seed,
        score=study.score,
        progress=False,
        epoch_budget=cfg.epoch_budget,
        fidelity=Plan.of(fidelity, args.epochs),
    )
    best = runner.best_trial(trials)
    refit = study.refit(best)
    return {
        "algorithm": name,
        "fidelity": kind,
        "seed": seed,
        "configs": sum(not t.from_cache for t in trials),
        "pruned": sum(t.pruned for t in trials if not t.from_cache),
        "epochs": sum(t.epochs for t in trials),
        "trial_val_accuracy": best.val_accuracy,
        "refit_val_accuracy": refit.metrics["val_accuracy"],
        "refit_test_accuracy": evaluate(refit.model, splits.test)["accuracy"],
        "winner_is_baseline": best.proposal == 0,
        "seconds": round(time.perf_counter() - start, 1),
    }


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.4f} ± {statistics.pstdev(values):.4f}"


def table(rows: list[dict], baseline_val: float, baseline_test: float) -> str:
    lines = [
        f"Baseline (train stage, seed 42): val {baseline_val:.4f}, test {baseline_test:.4f}.",
        "",
        "| algorithm | fidelity | refit val (mean ± std) | refit test | configs | epochs "
        "| pruned | winner = baseline config | refit val ≥ baseline's "
        "| vs random (wins/losses, p) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["algorithm"], row["fidelity"]), []).append(row)
    for (name, kind), runs in groups.items():
        runs = sorted(runs, key=lambda r: r["seed"])
        vals = [r["refit_val_accuracy"] for r in runs]
        rnd = sorted(groups.get(("random", kind), []), key=lambda r: r["seed"])
        versus = "—"
        if name != "random" and len(rnd) == len(runs):
            test = wilcoxon_pair(vals, [r["refit_val_accuracy"] for r in rnd])
            p = "n/a" if test["p_value"] is None else f"{test['p_value']:.3f}"
            versus = f"{test['a_wins']}/{test['b_wins']}, p {p}"
        lines.append(
            f"| {name} | {kind} | {mean_std(vals)} "
            f"| {mean_std([r['refit_test_accuracy'] for r in runs])} "
            f"| {statistics.mean(r['configs'] for r in runs):.1f} "
            f"| {statistics.mean(r['epochs'] for r in runs):.1f} "
            f"| {statistics.mean(r['pruned'] for r in runs):.1f} "
            f"| {sum(r['winner_is_baseline'] for r in runs)}/{len(runs)} "
            f"| {sum(r['refit_val_accuracy'] >= baseline_val for r in runs)}/{len(runs)} "
            f"| {versus} |"
        )
    lines += ["", "asha vs none per algorithm (paired by seed, refit val accuracy):", ""]
    for name in dict.fromkeys(r["algorithm"] for r in rows):
        a = sorted(groups.get((name, "asha"), []), key=lambda r: r["seed"])
        b = sorted(groups.get((name, "none"), []), key=lambda r: r["seed"])
        if a and len(a) == len(b):
            test = wilcoxon_pair(
                [r["refit_val_accuracy"] for r in a], [r["refit_val_accuracy"] for r in b]
            )
            p = "n/a" if test["p_value"] is None else f"{test['p_value']:.3f}"
            ratio = statistics.mean(r["configs"] for r in a) / statistics.mean(
                r["configs"] for r in b
            )
            lines.append(
                f"- {name}: asha − none {test['mean_diff']:+.4f} "
                f"({test['a_wins']} wins / {test['b_wins']} losses, p {p}); "
                f"{ratio:.2f}× the configurations"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epoch-budget", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=6, help="fidelity none: epochs per trial")
    parser.add_argument("--min-epochs", type=int, default=1)
    parser.add_argument("--max-epochs", type=int, default=9)
    parser.add_argument("--algorithms", nargs="+", default=list(search.ALGORITHMS))
    parser.add_argument("--fidelities", nargs="+", default=["none", "asha"])
    parser.add_argument("--out", type=Path, default=OUT / "search.json")
    parser.add_argument(
        "--table-only", action="store_true", help="only rebuild the table from --out"
    )
    args = parser.parse_args()

    splits = data.load_prepared(paths.load().prepare)
    rows = json.loads(args.out.read_text()) if args.out.is_file() else []
    done = {(r["algorithm"], r["fidelity"], r["seed"]) for r in rows}
    for seed in range(0 if args.table_only else args.seeds):
        for kind in args.fidelities:
            for name in args.algorithms:
                if (name, kind, seed) in done:
                    continue  # resume: every finished run is kept in the JSON file
                row = one(splits, name, seed, kind, args)
                rows.append(row)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(rows, indent=1))
                print(json.dumps(row), file=sys.stderr, flush=True)

    from leanml.train import train_and_score

    train = Train()
    ref = train_and_score(train.model, splits, train.fit_settings(), seed=42, progress=False)
    report = table(rows, ref.metrics["val_accuracy"], evaluate(ref.model, splits.test)["accuracy"])
    args.out.with_suffix(".md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
