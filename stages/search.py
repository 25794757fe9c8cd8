"""search@<algo>: hyper-parameter search with one algorithm over the shared space and budget."""

import hashlib
import json

from leanml import data, params, paths, search, stage, tracking
from leanml.io import read_json
from leanml.search.space import Space


def main() -> None:
    algo = stage.item_arg(search.ALGORITHMS, "search: algorithm", "stages/search.py <algo>")
    cfg = params.load()  # first: bad params stop the stage before TensorFlow is imported
    all_paths = paths.load()
    splits = data.load_prepared(all_paths.prepare)  # missing inputs too, before a run is opened
    card = read_json(all_paths.prepare.card)

    from leanml.search.objective import apply, keras_objective  # TensorFlow: seconds
    from leanml.search.pipeline import execute
    from leanml.train import train_and_score

    base, scfg = cfg.base, cfg.search
    shared = scfg.model_dump(include={"budget", "objective", "fit", "space"})
    used = {
        "base": base.model_dump(),
        "search": {**shared, algo: getattr(scfg, algo)},
        "train": {"model": cfg.train.model},
        # where trials run does not change results (not in the fingerprint); a time limit does
        "execution": {"trial_timeout": cfg.execution.trial_timeout},
    }
    label = f"search@{algo}"
    tags = {"seed": base.seed, "algorithm": algo}
    with tracking.stage_run(label, base.tracking, used, tags) as run:
        run.set_tags({"dataset": card["dataset"], "dataset.sha256": card["sha256"]})
        space = Space.from_params(scfg.space)
        fingerprint = hashlib.sha256(
            json.dumps({**used, "data": card["sha256"]}, sort_keys=True, default=str).encode()
        ).hexdigest()

        def retrain(best):
            spec, fit = apply(best.config, cfg.train.model, scfg.fit)
            return train_and_score(spec, splits, fit, seed=best.seed, progress=False)

        def best_info(best):
            spec, fit = apply(best.config, cfg.train.model, scfg.fit)
            return {
                "algorithm": algo,
                "model": {"spec": spec.model_dump(), "fit": fit.model_dump()},
            }

        execute(
            label=label,
            run=run,
            algorithm=search.create(algo, space, scfg, base.seed, scfg.budget),
            objective=keras_objective(splits, cfg.train.model, scfg.fit),
            names=space.names,
            budget=scfg.budget,
            seed=base.seed,
            fingerprint=fingerprint,
            out=paths.item(all_paths.search, algo),
            retrain=retrain,
            best_info=best_info,
            measure_cfg=base.measure,
            sample=splits.val.x[:64],
            kind=scfg.objective.kind,
            size_weight=scfg.objective.size_weight,
            execution=cfg.execution,
        )


if __name__ == "__main__":
    stage.run(main, "search")
