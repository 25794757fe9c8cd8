"""train: fit the baseline model from params, measure it, write models/train/ and reports/train/."""

from leanml import data, glossary, params, paths, stage, tracking
from leanml.io import read_json, write_csv, write_metrics


def main() -> None:
    cfg = params.load()  # first: bad params stop the stage before any import, read or run
    all_paths = paths.load()
    out, base = all_paths.train, cfg.base
    splits = data.load_prepared(all_paths.prepare)  # missing inputs too, before a run is opened
    card = read_json(all_paths.prepare.card)

    from leanml import measure  # TensorFlow: seconds to import, so only once the input is good
    from leanml.report.figures import plot_history
    from leanml.train import evaluate, train_and_score

    with tracking.stage_run(
        "train", base.tracking, {"base": base, "train": cfg.train}, {"seed": base.seed}
    ) as run:
        run.log_data(splits, card, ("train", "val"))

        def log_epoch(values: dict, step: int) -> None:  # Keras' names -> the glossary's curves
            run.log_metrics({epoch_name(k): v for k, v in values.items()}, step=step)

        result = train_and_score(
            cfg.train.model, splits, cfg.train, seed=base.seed, on_epoch=log_epoch
        )
        measure.save_model(result.model, out.model)
        test = evaluate(result.model, splits.test)
        metrics = {
            **{k: v for k, v in result.metrics.items() if k != "status"},
            "test_accuracy": test["accuracy"],
            "test_loss": test["loss"],
            **glossary.as_metrics(measure.measure(result.model, out.model)),
        }
        write_metrics(out.metrics, out.timings, metrics)  # fit seconds: timings
        columns = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
        write_csv(out.history, result.history, columns)
        plot_history(result.history, out.figure, f"baseline {cfg.train.model.kind}")

        run.set_tags({"status": result.metrics["status"]})
        run.log_metrics(metrics)  # the kept model's; the per-epoch curves are epoch_*
        for path in (out.metrics, out.timings, out.history, out.figure, all_paths.prepare.card):
            run.log_artifact(path)
        run.log_keras_model(result.model, splits.val.x[:5])
        print(
            f"train: val_accuracy {metrics['val_accuracy']:.4f} "
            f"test_accuracy {metrics['test_accuracy']:.4f} "
            f"{metrics['n_params']} params, {metrics['file_bytes']} bytes -> {out.model}"
        )


def epoch_name(key: str) -> str:
    """A Keras history key as a per-epoch glossary name: `val_loss` -> `epoch_val_loss`,
    `accuracy` -> `epoch_train_accuracy`."""
    return f"epoch_{key}" if key.startswith("val_") else f"epoch_train_{key}"


if __name__ == "__main__":
    stage.run(main, "train")
