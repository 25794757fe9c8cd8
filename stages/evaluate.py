"""evaluate: score every candidate model on the test split; leaderboard, Pareto, figures, tables."""

import sys
import time

from leanml import data, params, paths, stage, tracking
from leanml.io import read_json

# What the pipeline's parent run shows of the evaluation: a dozen numbers, not every metric.
HEADLINE = (
    "candidates",
    "n_test",
    "one_sample_pp",
    "best.significant",
    "baseline.test_accuracy",
    "baseline.size_bytes",
    "best.test_accuracy",
    "best.delta_pp",
    "best.size_bytes",
    "smallest_within_pp.test_accuracy",
    "smallest_within_pp.delta_pp",
    "smallest_within_pp.size_bytes",
    "smallest_within_pp.ratio_weights",
    "pareto.size_front",
)


def main() -> None:
    cfg = params.load()  # first: bad params stop the stage before TensorFlow is imported
    all_paths = paths.load()
    base = cfg.base

    from leanml.report import evaluate as evaluate_report

    start = time.perf_counter()
    with tracking.stage_run(
        "evaluate", base.tracking, {"base": base, "evaluate": cfg.evaluate}, {"seed": base.seed}
    ) as run:
        metrics, rows, out = evaluate_report.run(
            all_paths, cfg, on_warning=lambda m: print(m, file=sys.stderr)
        )
        run.log_metrics(metrics)
        # the pipeline run carries the headline only (the stage run has every metric)
        run.log_parent_metrics({f"evaluate.{k}": metrics[k] for k in HEADLINE if k in metrics})
        run.log_parent_table(rows, "evaluate/leaderboard.json")
        for path in out.written:
            folder = "evaluate" if path.parent == out.leaderboard.parent else None
            folder = folder or f"evaluate/{path.parent.name}"
            run.log_parent_artifact(path, folder)
            run.log_artifact(path, folder.removeprefix("evaluate").strip("/") or None)
        run.set_tags({"best": rows[0]["name"], "candidates": len(rows)})
        splits = data.load_prepared(all_paths.prepare)
        run.log_data(splits, read_json(all_paths.prepare.card), ("test",))  # fmt: skip
        # the pipeline run reads as a report: the headline as its description, all params
        headline = "\n## ".join(out.summary.read_text().split("\n## ")[:2])  # title, headline
        run.describe_parent(headline, cfg.model_dump())
        # the picks, as loadable models in the Model Registry (aliases name the picks)
        from leanml.report.leaderboard import baseline_row, smallest_within
        from leanml.tracking_registry import register_picks

        within = cfg.evaluate.within_pp
        picks = {
            "baseline": baseline_row(rows),
            "best": rows[0],
            f"smallest_within_{within:g}pp": smallest_within(rows, within),
        }
        card = read_json(all_paths.prepare.card)
        registered = register_picks(
            run, picks, card["dataset"], paths.project_root(), splits.test.x[:5]
        )
        run.set_tags({f"registry.{k}": v for k, v in registered.items()})
        best, small = rows[0], metrics.get("smallest_within_pp.name")
        print(
            f"evaluate: {len(rows)} candidates in {time.perf_counter() - start:.1f}s; best "
            f"{best['name']} {100 * best['accuracy']:.2f}% test accuracy; smallest within "
            f"{cfg.evaluate.within_pp:g} pp: {small} "
            f"({metrics.get('smallest_within_pp.ratio_weights') or 0:.1f}x its float32 weights) "
            f"-> {out.summary}"
        )


if __name__ == "__main__":
    stage.run(main, "evaluate")
