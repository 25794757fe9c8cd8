"""nas@<strategy>: architecture search with one strategy over the shared space and budget."""

import hashlib
import json

from leanml import data, nas, params, paths, stage, tracking
from leanml.errors import LeanmlError
from leanml.io import read_json, write_json


def main() -> None:
    strategy = stage.item_arg(nas.STRATEGIES, "nas: strategy", "stages/nas.py <strategy>")
    cfg = params.load()  # first: bad params stop the stage before TensorFlow is imported
    all_paths = paths.load()
    base, ncfg = cfg.base, cfg.nas
    # missing or unfit inputs too, before a run is opened
    splits = data.load_prepared(all_paths.prepare)
    card = read_json(all_paths.prepare.card)
    image = len(splits.input_shape) == 3
    if "conv" in ncfg.space.kinds and not image:
        raise LeanmlError(
            "nas.space.kinds: 'conv' needs image data (samples of shape (H, W, C)); this "
            f"dataset's samples have shape {splits.input_shape}: use kinds: [dense]"
        )
    meta_file = all_paths.nas_metadata.data
    if strategy == "meta" and not meta_file.is_file():
        raise LeanmlError(
            f"{meta_file.relative_to(paths.project_root())}: missing; it is written by the "
            "nas_metadata stage: run `dvc repro nas_metadata` first"
        )

    from leanml.nas.meta import load_metadataset, meta_features  # TensorFlow: seconds
    from leanml.nas.objective import nas_objective, reward, train_child, transfer_kwargs
    from leanml.nas.space import ArchSpace
    from leanml.search.pipeline import execute

    shared = ncfg.model_dump(include={"budget", "fit", "space", "reward"})
    used = {
        "base": base.model_dump(),
        "nas": {**shared, strategy: getattr(ncfg, strategy, {})},
        # where children run does not change results (not in the fingerprint); a time limit does
        "execution": {"trial_timeout": cfg.execution.trial_timeout},
    }
    label = f"nas@{strategy}"
    with tracking.stage_run(
        label, base.tracking, used, {"seed": base.seed, "strategy": strategy}
    ) as run:
        run.set_tags({"dataset": card["dataset"], "dataset.sha256": card["sha256"]})
        space = ArchSpace(ncfg.space, image_input=image)
        extra, fingerprint_extra = {}, ""
        if strategy == "meta":
            rows, models = load_metadataset(meta_file)
            target = meta_features(splits)
            extra = {"rows": rows, "target": target, "models": models}
            fingerprint_extra = hashlib.sha256(meta_file.read_bytes()).hexdigest()
        algorithm = nas.create(strategy, space, ncfg, base.seed, **extra)
        fingerprint = hashlib.sha256(
            json.dumps(
                {**used, "data": card["sha256"], "meta": fingerprint_extra},
                sort_keys=True,
                default=str,
            ).encode()
        ).hexdigest()
        init_source = getattr(algorithm, "init_source", None)
        out = paths.item(all_paths.nas, strategy)

        def retrain(best):
            source = init_source(best.config) if init_source else None
            return train_child(space, best.config, splits, ncfg.fit, best.seed, source)

        execute(
            label=label,
            run=run,
            algorithm=algorithm,
            objective=nas_objective(space, splits, ncfg.fit),
            trial_kwargs=transfer_kwargs(algorithm),
            execution=cfg.execution,
            names=space.names,
            budget=ncfg.budget,
            seed=base.seed,
            fingerprint=fingerprint,
            out=out,
            retrain=retrain,
            best_info=lambda best: {
                "strategy": strategy,
                "architecture": space.describe(best.config),
            },
            measure_cfg=base.measure,
            sample=splits.val.x[:64],
            score=reward(ncfg.reward),
        )
        log = getattr(algorithm, "log", [])
        # the task's meta-features let a later meta-learning run reuse this run's trials
        features = extra.get("target") or meta_features(splits)
        write_json(out.strategy, {"strategy": strategy, "target_features": features, "log": log})
        for entry in log:
            if "update" in entry:  # the RL controller, once per update
                run.log_metrics(
                    {
                        "controller_mean_reward": entry["mean_reward"],
                        "controller_entropy": entry["entropy"],
                    },
                    step=entry["update"],
                )
        run.log_artifact(out.strategy)


if __name__ == "__main__":
    stage.run(main, "nas")
