"""search_report: overlay every search algorithm's convergence curve on one figure."""

import csv

from leanml import paths, search, stage
from leanml.io import read_json, write_json
from leanml.report import plot_convergence


def main() -> None:
    group = paths.load().search
    curves, summary = {}, {}
    for algo in search.ALGORITHMS:
        out = paths.item(group, algo)
        if not out.convergence.is_file():
            continue
        with open(out.convergence) as handle:
            curves[algo] = list(csv.DictReader(handle))
        metrics = read_json(out.metrics)
        summary[algo] = {
            k: metrics[k]
            for k in ("best_score", "best_val_accuracy", "evaluations", "evaluations_to_best")
        }
    plot_convergence(curves, group.figure, "search: best so far")
    write_json(group.summary, summary)
    print(f"search_report: {', '.join(sorted(curves))} -> {group.figure}")


if __name__ == "__main__":
    stage.run(main, "search_report")
