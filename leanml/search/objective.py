"""The one objective every search algorithm shares: apply a config, train, score, measure."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from leanml import measure
from leanml.data import Splits
from leanml.params import Fit, ModelSpec, Search
from leanml.params import Objective as ObjectiveCfg
from leanml.search.space import Space
from leanml.train import StopRule, TrainResult, train_and_score
from leanml.trials import fidelity
from leanml.trials.base import Config, Trial
from leanml.trials.study import Study


def apply(config: Config, base_model: ModelSpec, base_fit: Fit) -> tuple[ModelSpec, Fit]:
    """The model spec and fit settings a configuration stands for.

    `hidden_units` and `n_layers` set the dense layers (the MLP's hidden layers, or the CNN's
    dense head): `n_layers` copies of `hidden_units`. Other names replace the field of the same
    name in the fit settings or in the model's layer settings.
    """
    kind = base_model.kind
    layer = getattr(base_model, kind)
    dense_field = "hidden_units" if kind == "mlp" else "dense_units"
    current = list(getattr(layer, dense_field)) or [64]
    width = int(config.get("hidden_units", current[0]))
    depth = int(config.get("n_layers", len(current)))
    layer_update: dict[str, Any] = {dense_field: [width] * depth}
    fit_update: dict[str, Any] = {}
    for name in ("dropout", "activation"):
        if name in config:
            layer_update[name] = config[name]
    for name in ("learning_rate", "batch_size", "optimizer", "epochs"):
        if name in config:
            fit_update[name] = config[name]
    # model_validate (not model_copy) so the applied values are checked like params.yaml's
    new_layer = type(layer).model_validate({**layer.model_dump(), **layer_update})
    spec = ModelSpec.model_validate({**base_model.model_dump(), kind: new_layer.model_dump()})
    fit = Fit.model_validate({**base_fit.model_dump(), **fit_update})
    return spec, fit


def keras_objective(data: Splits, base_model: ModelSpec, base_fit: Fit):
    """An `Objective` for the runner: trains on train, scores on val, never reads test.

    Self-contained (no open files or driver state), so it can run on a Dask worker.
    """

    def objective(config: Config, seed: int, stop: StopRule | None = None) -> dict[str, Any]:
        spec, fit = apply(config, base_model, base_fit)
        result = train_and_score(spec, data, fit, seed=seed, progress=False, stop=stop)
        with tempfile.TemporaryDirectory(prefix="leanml-trial-") as workdir:
            path = measure.save_model(result.model, Path(workdir) / "trial.keras")
            size = measure.file_bytes(path)["file_bytes"]
        return {
            "val_accuracy": result.metrics["val_accuracy"],
            "val_loss": result.metrics["val_loss"],
            "params": measure.count_params(result.model)["params"],
            "file_bytes": size,
            "epochs_run": result.metrics["epochs_run"],
            "fit_seconds": result.metrics["fit_seconds"],
            "status": result.metrics["status"],
            "val_curve": result.val_curve,
        }

    return objective


def score(cfg: ObjectiveCfg) -> Callable[[Trial], float]:
    """The number maximised (`search.objective`): val accuracy, or accuracy − w·log10(params).

    In `pareto` mode an algorithm that can optimise two objectives scores (accuracy, params)
    itself; any other algorithm maximises the trade-off.
    """

    def scalar(trial: Trial) -> float:
        if not trial.ok:
            return -1.0 - 10.0 * cfg.size_weight  # below anything a finished trial can score
        if cfg.kind == "accuracy":
            return trial.val_accuracy
        return trial.val_accuracy - cfg.size_weight * math.log10(max(trial.params, 1))

    return scalar


def search_study(
    space: Space,
    data: Splits,
    model: ModelSpec,
    cfg: Search,
    algo: str,
    fingerprint: str,
    final_fit: Fit | None = None,
) -> Study:
    """What `search@<algo>` searches: configs applied to `model` and `search.fit`, trained.

    The winner is refit with `final_fit` (the full fidelity: `search.final_fit`, or the train
    stage's fit settings; None: `search.fit`, the trials' own), the config's dimensions still
    overriding what they name, from its trial's seed.
    """
    refit_fit = final_fit or cfg.fit
    trial_fit = fidelity.trial_fit(cfg.fit, cfg.fidelity)

    def refit(best: Trial) -> TrainResult:
        spec, fit = apply(best.config, model, refit_fit)
        return train_and_score(spec, data, fit, seed=best.seed, progress=False)

    def describe_best(best: Trial) -> dict[str, Any]:
        spec, fit = apply(best.config, model, refit_fit)
        _, fit_of_trial = apply(best.config, model, trial_fit)
        return {
            "algorithm": algo,
            "model": {
                "spec": spec.model_dump(),
                "fit": fit.model_dump(),
                "trial_fit": fit_of_trial.model_dump(),
            },
        }

    return Study(
        objective=keras_objective(data, model, trial_fit),
        score=score(cfg.objective),
        refit=refit,
        describe_best=describe_best,
        names=space.names,
        fingerprint=fingerprint,
    )
