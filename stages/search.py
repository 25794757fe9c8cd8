"""search@<algo>: hyper-parameter search with one algorithm over the shared space and budget."""

from dataclasses import replace

from leanml import data, params, paths, search, stage, tracking
from leanml.io import read_json


def main() -> None:
    algo = stage.item_arg(search.ALGORITHMS, "search: algorithm", "stages/search.py <algo>")
    cfg = params.load()  # first: bad params stop the stage before TensorFlow is imported
    all_paths = paths.load()
    splits = data.load_prepared(all_paths.prepare)  # missing inputs too, before a run is opened
    card = read_json(all_paths.prepare.card)

    from leanml.search.objective import search_study  # TensorFlow: seconds
    from leanml.search.space import Space, baseline
    from leanml.trials.fingerprint import fingerprint
    from leanml.trials.study import Settings, baseline_model, execute

    base, scfg = cfg.base, cfg.search
    used = search.used_params(cfg, algo)
    label = f"search@{algo}"
    tags = {"seed": base.seed, "algorithm": algo}
    with tracking.stage_run(label, base.tracking, used, tags) as run:
        run.log_data(splits, card, ("train", "val"))
        space = Space.from_params(scfg.space)
        final_fit = scfg.final_fit or cfg.train.fit_settings()
        fp = fingerprint(used, card["sha256"])
        study = search_study(space, splits, cfg.train.model, scfg, algo, fp, final_fit)
        if scfg.include_baseline:  # the baseline model competes with the refit winner
            study = replace(study, incumbent=baseline_model(all_paths.train.model, splits.val))
        settings = Settings.of(label, scfg, cfg, splits.val.x[:64])
        initial = [baseline(cfg.train, space)] if scfg.include_baseline else []
        algorithm = search.create(algo, space, scfg, base.seed, scfg.budget, initial)
        execute(study, algorithm, run, paths.item(all_paths.search, algo), settings)


if __name__ == "__main__":
    stage.run(main, "search")
