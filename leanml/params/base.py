"""params `base`: seed, dataset, MLflow tracking and the latency protocol every stage shares."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from leanml.params.schema import Choice, Int, KeyError_, Section
from leanml.params.util import mask_password

DATASETS = ("digits", "mnist", "fashion_mnist", "npz")


class Tracking(Section):
    uri: str | None = Field(
        None,
        min_length=1,
        description="null (project sqlite file / $MLFLOW_TRACKING_URI) or a tracking URI",
    )
    experiment: str = Field("leanml", min_length=1, description="a non-empty experiment name")

    @model_validator(mode="after")
    def _no_password(self) -> Tracking:
        if self.uri and mask_password(self.uri) != self.uri:
            raise KeyError_(
                "uri",
                "must not hold a password (params.yaml is copied into dvc.lock, git and every "
                "run's MLflow params); set MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD "
                f"or export MLFLOW_TRACKING_URI instead, got {mask_password(self.uri)!r}",
            )
        return self


class Measure(Section):
    warmup: int = Int(10, ge=0)
    runs: int = Int(100, ge=1)
    batch_size: int = Int(256, ge=1)


class Base(Section):
    seed: int = Int(42, ge=0)
    dataset: Literal[DATASETS] = Choice("digits", DATASETS)  # type: ignore[valid-type]
    npz_path: str | None = Field(
        None, description="null, or the path of a .npz file with arrays x and y"
    )
    tracking: Tracking = Tracking()
    measure: Measure = Measure()

    @model_validator(mode="after")
    def _npz_needs_path(self) -> Base:
        if self.dataset == "npz" and not self.npz_path:
            raise KeyError_(
                "npz_path", "must name a .npz file when base.dataset is 'npz', got None"
            )
        return self
