"""nas@<strategy>: architecture search with one strategy over the shared space and budget."""

from dataclasses import replace

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
    # conv alone on tabular data: an error; beside dense: left out, with one line saying so
    kinds = nas.space_kinds(ncfg.space.kinds, splits.input_shape)
    notice = nas.kinds_notice(ncfg.space.kinds, splits.input_shape)
    meta_file = all_paths.nas_metadata.data
    if strategy == "meta" and not meta_file.is_file():
        raise LeanmlError(
            f"{meta_file.relative_to(paths.project_root())}: missing; it is written by the "
            "nas_metadata stage: run `dvc repro nas_metadata` first"
        )

    from leanml.nas.meta import load_metadataset, meta_features  # TensorFlow: seconds
    from leanml.nas.objective import nas_study
    from leanml.nas.space import ArchSpace
    from leanml.trials.fingerprint import fingerprint
    from leanml.trials.study import Settings, baseline_model, execute

    used = nas.used_params(cfg, strategy)
    label = f"nas@{strategy}"
    tags = {"seed": base.seed, "strategy": strategy}
    with tracking.stage_run(label, base.tracking, used, tags) as run:
        run.log_data(splits, card, ("train", "val"))
        run.set_tags({"space.kinds": ",".join(kinds)})
        if notice:
            print(notice)
        space = ArchSpace(ncfg.space, image_input=image)
        extra, inputs = {}, []
        if strategy == "meta":
            rows, models = load_metadataset(meta_file)
            extra = {"rows": rows, "target": meta_features(splits), "models": models}
            # transfer only where it fits: the warm starts are checked on the target's shapes
            extra |= {"input_shape": splits.input_shape, "n_classes": splits.n_classes}
            inputs = [meta_file]
        if strategy == "enas":  # its supernet trains on the train split, scores on val
            extra = {"data": splits}
        initial = [space.baseline(cfg.train.model)] if ncfg.include_baseline else []
        algorithm = nas.create(strategy, space, ncfg, base.seed, initial, **extra)
        fp = fingerprint(used, card["sha256"], *inputs)
        final_fit = ncfg.final_fit or cfg.train.fit_settings()
        study = nas_study(space, splits, ncfg, algorithm, strategy, fp, final_fit)
        if ncfg.include_baseline:  # the baseline model competes with the refit winner
            study = replace(study, incumbent=baseline_model(all_paths.train.model, splits.val))
        settings = Settings.of(label, ncfg, cfg, splits.val.x[:64])
        out = paths.item(all_paths.nas, strategy)
        execute(study, algorithm, run, out, settings)
        # the task's meta-features let a later meta-learning run reuse this run's trials
        features = extra.get("target") or meta_features(splits)
        report = {"strategy": strategy, "target_features": features, "log": algorithm.report().log}
        write_json(out.strategy, report)
        run.log_artifact(out.strategy)


if __name__ == "__main__":
    stage.run(main, "nas")
