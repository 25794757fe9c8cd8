"""params `train`: the model spec (MLP or CNN) and the fit settings shared by every trainer."""

from __future__ import annotations

from typing import Literal

from leanml.params.schema import (
    ACTIVATIONS,
    OPTIMIZERS,
    Choice,
    Float,
    Int,
    IntList,
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
