"""params `train`: the model spec (MLP or CNN) and the fit settings shared by every trainer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from leanml.params.schema import (
    ACTIVATIONS,
    OPTIMIZERS,
    Choice,
    Float,
    Int,
    IntList,
    KeyError_,
    PosInt,
    Section,
)


class MLP(Section):
    hidden_units: list[PosInt] = IntList([128])
    activation: Literal[ACTIVATIONS] = Choice("relu", ACTIVATIONS)  # type: ignore[valid-type]
    dropout: float = Float(0.0, ge=0, lt=1)


class CNN(Section):
    filters: list[PosInt] = IntList([6, 16])
    kernel_size: int = Int(3, ge=1)
    pool_size: int = Int(2, ge=1)
    dense_units: list[PosInt] = IntList([120, 84], min_length=0)
    activation: Literal[ACTIVATIONS] = Choice("relu", ACTIVATIONS)  # type: ignore[valid-type]
    dropout: float = Float(0.0, ge=0, lt=1)


class ModelSpec(Section):
    kind: Literal["mlp", "cnn"] = Choice("mlp", ("mlp", "cnn"))
    mlp: MLP = MLP()
    cnn: CNN = CNN()


class Fit(Section):
    """How one model is fitted; shared by the baseline, search trials and NAS children."""

    optimizer: Literal[OPTIMIZERS] = Choice("adam", OPTIMIZERS)  # type: ignore[valid-type]
    learning_rate: float = Float(0.001, gt=0, le=10)
    epochs: int = Int(30, ge=1)
    batch_size: int = Int(32, ge=1)
    early_stopping_patience: int = Int(5, ge=0)


class Train(Fit):
    """The baseline: a model spec plus the fit settings (flat, so `-S train.epochs=3` works)."""

    model: ModelSpec = ModelSpec()

    def fit_settings(self) -> Fit:
        """The baseline's fit settings alone (what `final_fit: null` refits with)."""
        return Fit.model_validate(self.model_dump(include=set(Fit.model_fields)))


FIDELITY_KINDS = ("none", "asha", "hyperband")


class Fidelity(Section):
    """Multi-fidelity trials (search and NAS): stop the weak ones at rungs of a few epochs.

    `asha`: rungs at min_epochs·eta^k (< max_epochs); at each rung a trial goes on only if its
    val accuracy is in the top 1/eta of the values recorded at that rung so far. `hyperband`:
    the same rule in several brackets that start at different rungs (trial i in bracket
    i mod n). `none`: every trial trains its fit settings' epochs.
    """

    kind: Literal["none", "asha", "hyperband"] = Choice("none", FIDELITY_KINDS)
    min_epochs: int = Int(1, ge=1)
    max_epochs: int = Int(9, ge=1)
    eta: int = Int(3, ge=2)
    wave: int = Field(
        1,
        strict=True,
        ge=1,
        description="an integer ≥ 1 (trials started together; set it to execution.workers "
        "to keep the workers busy — results depend on it, never on the number of workers)",
    )

    @model_validator(mode="after")
    def _rungs(self) -> Fidelity:
        if self.kind != "none" and self.min_epochs >= self.max_epochs:
            raise KeyError_(
                "min_epochs",
                f"must be < max_epochs ({self.max_epochs}) for kind {self.kind!r}, "
                f"got {self.min_epochs}",
            )
        return self
