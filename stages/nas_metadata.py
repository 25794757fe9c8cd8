"""nas_metadata: build the meta-dataset (source tasks × sampled architectures) for meta NAS."""

from leanml import data, params, paths, stage, tracking
from leanml.io import write_json


def main() -> None:
    cfg = params.load()  # first: bad params stop the stage before TensorFlow is imported
    out = paths.load().nas_metadata
    base, ncfg = cfg.base, cfg.nas

    from leanml.nas.meta import build_metadataset
    from leanml.nas.objective import train_child
    from leanml.nas.space import ArchSpace
    from leanml.nas.tasks import describe_sources, earlier_runs, excluded_tag

    used = {
        "base": {"seed": base.seed, "dataset": base.dataset, "npz_path": base.npz_path},
        "nas": ncfg.model_dump(include={"space", "meta", "fit"}),
    }
    with tracking.stage_run("nas_metadata", base.tracking, used, {"seed": base.seed}) as run:
        fit = ncfg.fit.model_copy(update={"epochs": ncfg.meta.source_epochs})

        def train(space, arch, splits, seed):
            return train_child(space, arch, splits, fit, seed)

        # With digits as the target, its digits source tasks come from the train split only:
        # kept (no val/test image reaches them), reported as the same data, not transfer.
        digits_xy = None
        if base.dataset == "digits":
            train_split = data.load_prepared(paths.load().prepare).train
            digits_xy = (train_split.x, train_split.y)
        # the target's samples as loaded (every split): a bundled task with the same data or
        # a split of it (a user's wine.npz is the bundled wine) is left out
        target_x = data.load(base.dataset, base.npz_path)[0]
        payload = build_metadataset(
            lambda image: ArchSpace(ncfg.space, image_input=image),
            train,
            seed=base.seed,
            n_archs=ncfg.meta.source_architectures,
            synthetic=ncfg.meta.synthetic_tasks,
            model_dir=out.dir,
            digits_xy=digits_xy,
            target_x=target_x,
        )
        # earlier runs the user kept in inputs/nas_runs/<name>/ join the meta-dataset
        earlier = earlier_runs(paths.load().inputs / "nas_runs", ArchSpace(ncfg.space, True))
        payload["rows"] += earlier
        for task in sorted({r["task"] for r in earlier}):
            best = max(r["score"] for r in earlier if r["task"] == task)
            features = next(r["features"] for r in earlier if r["task"] == task)
            payload["tasks"].append({"task": task, "features": features, "best_score": best})
        write_json(out.data, payload)
        print(describe_sources(payload))
        run.set_tags({"sources.excluded": excluded_tag(payload) or "none"})
        metrics = {
            "tasks": len(payload["tasks"]),
            "rows": len(payload["rows"]),
            "excluded_tasks": len(payload["excluded"]),
            "same_data_tasks": len(payload["same_data"]),
            **{f"{t['task']}.best_score": t["best_score"] for t in payload["tasks"]},
        }
        write_json(out.metrics, metrics)
        run.log_metrics(metrics)
        run.log_artifact(out.data)
        print(f"nas_metadata: {metrics['rows']} rows from {metrics['tasks']} tasks -> {out.data}")


if __name__ == "__main__":
    stage.run(main, "nas_metadata")
