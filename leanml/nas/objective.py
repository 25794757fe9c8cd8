"""The NAS child objective and reward: build an architecture, train it, score it on val."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from leanml import measure
from leanml.data import Splits
from leanml.nas.meta import transfer_weights
from leanml.nas.space import Arch, ArchSpace
from leanml.params import Fit, Nas, Reward
from leanml.train import StopRule, TrainResult, train_and_score_model
from leanml.trials import fidelity
from leanml.trials.base import Trial
from leanml.trials.study import Study


def train_child(
    space: ArchSpace,
    arch: Arch,
    data: Splits,
    fit: Fit,
    seed: int,
    init_from: str | None = None,
    stop: StopRule | None = None,
) -> TrainResult:
    """Train one child network from `seed` (optionally starting from a source model's weights)."""

    def make():
        model = space.build(arch, data.input_shape, data.n_classes)
        if init_from:
            transfer_weights(model, init_from)
        return model

    return train_and_score_model(make, data, fit, seed=seed, progress=False, stop=stop)


def nas_objective(space: ArchSpace, data: Splits, fit: Fit):
    """The child objective; `init_from` (a source model file) comes from the driver per child
    (runner `trial_kwargs`), so the objective holds no strategy state and can run on a worker."""

    def objective(
        arch: Arch, seed: int, init_from: str | None = None, stop: StopRule | None = None
    ) -> dict[str, Any]:
        result = train_child(space, arch, data, fit, seed, init_from, stop)
        with tempfile.TemporaryDirectory(prefix="leanml-child-") as workdir:
            path = measure.save_model(result.model, Path(workdir) / "child.keras")
            size = measure.file_bytes(path)["file_bytes"]
        return {
            "val_accuracy": result.metrics["val_accuracy"],
            "params": measure.count_params(result.model)["params"],
            "file_bytes": size,
            "status": result.metrics["status"],
            "epochs_run": result.metrics["epochs_run"],
            "val_curve": result.val_curve,
            "transfer_from": Path(init_from).stem if init_from else "",
        }

    return objective


def transfer_kwargs(algorithm: Any) -> Callable[[Arch], dict[str, Any]] | None:
    """Runner `trial_kwargs` for a strategy that initialises children from source models."""
    init_source = getattr(algorithm, "init_source", None)
    if init_source is None:
        return None
    return lambda arch: {"init_from": init_source(arch)}


def reward(cfg: Reward) -> Callable[[Trial], float]:
    """Val accuracy, or MnasNet's accuracy × (params / target)^weight when a target is set."""

    def score(trial: Trial) -> float:
        if not trial.ok:
            return 0.0
        if cfg.target_params is None:
            return trial.val_accuracy
        return trial.val_accuracy * (max(trial.params, 1) / cfg.target_params) ** cfg.weight

    return score


def nas_study(
    space: ArchSpace,
    data: Splits,
    cfg: Nas,
    algorithm: Any,
    strategy: str,
    fingerprint: str,
    final_fit: Fit | None = None,
) -> Study:
    """What `nas@<strategy>` searches: children trained on `data`, scored by `nas.reward`.

    The winner is refit with `final_fit` (`nas.final_fit`, or the train stage's fit; None:
    `nas.fit`) from its trial's seed and the same initial weights (transfer) as its trial.
    """
    init_source = getattr(algorithm, "init_source", lambda arch: None)
    refit_fit = final_fit or cfg.fit
    trial_fit = fidelity.trial_fit(cfg.fit, cfg.fidelity)

    def refit(best: Trial) -> TrainResult:
        return train_child(space, best.config, data, refit_fit, best.seed, init_source(best.config))

    return Study(
        objective=nas_objective(space, data, trial_fit),
        score=reward(cfg.reward),
        refit=refit,
        describe_best=lambda best: {
            "strategy": strategy,
            "architecture": space.describe(best.config),
            # the layer kinds searched: conv is left out on data that is not images
            "space_kinds": list(space.kinds),
            "fit": refit_fit.model_dump(),
            "trial_fit": trial_fit.model_dump(),
        },
        names=space.names,
        fingerprint=fingerprint,
        trial_kwargs=transfer_kwargs(algorithm),
    )
