"""params `base`: seed, dataset and MLflow tracking, which every stage shares."""

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
    """The latency protocol (`evaluate.measure`): calls discarded, calls timed, batch size."""

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

    @model_validator(mode="before")
    @classmethod
    def _measure_moved(cls, data):
        # params.yaml files from before latency moved to the evaluate stage
        if isinstance(data, dict) and "measure" in data:
            raise KeyError_(
                "measure",
                "was removed: latency is measured once, by the evaluate stage, for every "
                "candidate in one runtime; set evaluate.measure (warmup, runs, batch_size) "
                f"instead and delete base.measure, got {data['measure']!r}",
            )
        return data

    @model_validator(mode="after")
    def _npz_needs_path(self) -> Base:
        if self.dataset == "npz" and not self.npz_path:
            raise KeyError_(
                "npz_path", "must name a .npz file when base.dataset is 'npz', got None"
            )
        return self
