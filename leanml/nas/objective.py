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
from leanml.params import Fit, Reward
from leanml.search.runner import Trial
from leanml.train import TrainResult, train_and_score_model


def train_child(
    space: ArchSpace, arch: Arch, data: Splits, fit: Fit, seed: int, init_from: str | None = None
) -> TrainResult:
    """Train one child network from `seed` (optionally starting from a source model's weights)."""

    def make():
        model = space.build(arch, data.input_shape, data.n_classes)
        if init_from:
            transfer_weights(model, init_from)
        return model

    return train_and_score_model(make, data, fit, seed=seed, progress=False)


def nas_objective(
    space: ArchSpace,
    data: Splits,
    fit: Fit,
    init_source: Callable[[Arch], str | None] | None = None,
):
    workdir = Path(tempfile.mkdtemp(prefix="leanml-nas-"))

    def objective(arch: Arch, seed: int) -> dict[str, Any]:
        source = init_source(arch) if init_source else None
        result = train_child(space, arch, data, fit, seed, source)
        path = measure.save_model(result.model, workdir / "child.keras")
        return {
            "val_accuracy": result.metrics["val_accuracy"],
            "params": measure.count_params(result.model)["params"],
            "file_bytes": measure.file_bytes(path)["file_bytes"],
            "status": result.metrics["status"],
            "transfer_from": Path(source).stem if source else "",
        }

    return objective


def reward(cfg: Reward) -> Callable[[Trial], float]:
    """Val accuracy, or MnasNet's accuracy × (params / target)^weight when a target is set."""

    def score(trial: Trial) -> float:
        if not trial.ok:
            return 0.0
        if cfg.target_params is None:
            return trial.val_accuracy
        return trial.val_accuracy * (max(trial.params, 1) / cfg.target_params) ** cfg.weight

    return score
