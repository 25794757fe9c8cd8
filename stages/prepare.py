"""prepare: load the dataset named in params, split it (seeded, stratified) into data/prepared/."""

from leanml import data, params, paths, stage, tracking
from leanml.io import write_json


def main() -> None:
    cfg = params.load()  # first: bad params stop the stage before anything is read
    out = paths.load().prepare
    base = cfg.base
    # the dataset is read and checked before a run is opened: bad data leaves no trace
    x, y = data.load(base.dataset, base.npz_path)
    splits = data.split(x, y, cfg.prepare.val_fraction, cfg.prepare.test_fraction, base.seed)
    card = data.card(splits, base.dataset, base.seed)
    with tracking.stage_run(
        "prepare", base.tracking, {"base": base, "prepare": cfg.prepare}, {"seed": base.seed}
    ) as run:
        data.save(splits, out, card)
        metrics = {
            "n_train": len(splits.train.y),
            "n_val": len(splits.val.y),
            "n_test": len(splits.test.y),
            "n_classes": splits.n_classes,
            "n_features": int(splits.train.x[0].size),
        }
        write_json(out.metrics, metrics)
        run.log_data(splits, card, ("train", "val", "test"))
        run.log_metrics(metrics)
        run.log_artifact(out.card)
        run.log_artifact(out.metrics)
        print(f"prepare: {data.describe(card)} -> {out.dir}")


if __name__ == "__main__":
    stage.run(main, "prepare")
