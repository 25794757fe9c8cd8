"""params `nas`: the architecture space, reward, budget and the settings of each strategy."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, model_validator

from leanml.params.schema import (
    ACTIVATIONS,
    Choice,
    Float,
    Int,
    KeyError_,
    PosInt,
    Section,
)
from leanml.params.train import Fidelity, Fit


def _choice_list(default: list, what: str) -> Any:
    return Field(default, min_length=1, description=f"a non-empty list of {what}")


class NasSpace(Section):
    """The architecture space: up to `max_layers` layers, each a set of categorical decisions."""

    max_layers: int = Int(3, ge=1, le=8)
    kinds: list[Literal["dense", "conv"]] = _choice_list(["dense", "conv"], "'dense' / 'conv'")
    units: list[PosInt] = _choice_list([16, 32, 64, 128], "integers ≥ 1")
    filters: list[PosInt] = _choice_list([8, 16, 32], "integers ≥ 1")
    kernel_sizes: list[PosInt] = _choice_list([3, 5], "integers ≥ 1")
    activations: list[Literal[ACTIVATIONS]] = _choice_list(  # type: ignore[valid-type]
        ["relu", "tanh", "elu"], "activation names"
    )
    dropouts: list[Annotated[float, Field(strict=True, ge=0, lt=1)]] = _choice_list(
        [0.0, 0.2], "numbers in [0, 1)"
    )
    batch_norm: list[StrictBool] = _choice_list([False, True], "true/false")
    skip: list[StrictBool] = _choice_list([False, True], "true/false")

    @model_validator(mode="after")
    def _distinct(self) -> NasSpace:
        for name in (
            "kinds",
            "units",
            "filters",
            "kernel_sizes",
            "activations",
            "dropouts",
            "batch_norm",
            "skip",
        ):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise KeyError_(name, f"must not repeat a choice, got {values!r}")
        return self


class Reward(Section):
    """MnasNet-style hardware-aware reward: accuracy × (params / target)^weight, if a target."""

    target_params: int | None = Field(
        None, strict=True, gt=0, description="null (reward = val accuracy) or an integer > 0"
    )
    weight: float = Float(-0.07, le=0)


class RL(Section):
    controller: Literal["lstm", "independent"] = Choice("lstm", ("lstm", "independent"))
    hidden: int = Int(32, ge=1)
    learning_rate: float = Float(0.02, gt=0, le=1)
    children_per_update: int = Int(2, ge=1)
    baseline_decay: float = Float(0.8, ge=0, lt=1)
    entropy_weight: float = Float(0.01, ge=0)


class ENAS(RL):
    """Weight sharing (ENAS): the rl controller's settings, a supernet, the final children.

    Defaults differ from `nas.rl`'s where the controller gets a hundred cheap rewards instead
    of a few full trainings: the independent controller (an LSTM update costs ~0.25 s here)
    and one child per update, as in the ENAS paper.
    """

    controller: Literal["lstm", "independent"] = Choice("independent", ("lstm", "independent"))
    learning_rate: float = Float(0.05, gt=0, le=1)
    children_per_update: int = Int(1, ge=1)
    updates: int = Int(100, ge=1)
    supernet_steps: int = Int(3, ge=1)
    warmup_steps: int = Int(50, ge=0)
    batch_size: int = Int(64, ge=1)
    supernet_learning_rate: float = Float(0.003, gt=0, le=1)
    reward_samples: int = Int(512, ge=1)
    candidates: int = Int(30, ge=1)
    children: int = Int(2, ge=1)

    @model_validator(mode="after")
    def _enough_candidates(self) -> ENAS:
        if self.children > self.candidates:
            raise KeyError_(
                "children", f"must be ≤ candidates ({self.candidates}), got {self.children}"
            )
        return self


class Meta(Section):
    neighbours: int = Int(2, ge=1)
    warm_start: int = Int(3, ge=0)
    candidates: int = Int(300, ge=1)
    transfer: bool = Field(True, strict=True, description="true or false")
    source_architectures: int = Int(3, ge=1)
    source_epochs: int = Int(5, ge=1)
    synthetic_tasks: int = Int(1, ge=0)


class Nas(Section):
    """Architecture search: one space, one budget (children trained) for every strategy."""

    budget: int = Int(6, ge=1)
    epoch_budget: int | None = Field(
        None, strict=True, ge=1, description="null (count children only) or an integer ≥ 1"
    )
    fidelity: Fidelity = Fidelity()
    fit: Fit = Fit(learning_rate=0.003, epochs=6, early_stopping_patience=2)
    final_fit: Fit | None = Field(
        None, description="null (the train stage's fit settings) or fit settings for the refit"
    )
    include_baseline: bool = Field(
        True, strict=True, description="true (the train stage's model is the first child) or false"
    )
    space: NasSpace = NasSpace()
    reward: Reward = Reward()
    rl: RL = RL()
    meta: Meta = Meta()
    enas: ENAS = ENAS()

    @model_validator(mode="after")
    def _fits_budget(self) -> Nas:
        if self.rl.children_per_update > self.budget:
            raise KeyError_(
                "rl.children_per_update",
                f"must be ≤ nas.budget ({self.budget}), got {self.rl.children_per_update}",
            )
        if self.enas.children > self.budget:
            raise KeyError_(
                "enas.children",
                f"must be ≤ nas.budget ({self.budget}), got {self.enas.children}",
            )
        return self
