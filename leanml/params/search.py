"""params `search`: the space, objective, budget and the settings of each search algorithm."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import (
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from leanml.params.schema import Choice, Float, Int, KeyError_, Section
from leanml.params.train import MLP, Fidelity, Fit


class Dimension(Section):
    """One search dimension: int (low, high), real (low, high, log) or categorical (choices)."""

    type: Literal["int", "real", "categorical"] = Choice("int", ("int", "real", "categorical"))
    low: StrictInt | StrictFloat | None = Field(None, description="a number (the lower bound)")
    high: StrictInt | StrictFloat | None = Field(None, description="a number (the upper bound)")
    log: bool = Field(False, strict=True, description="true or false")
    choices: list[StrictStr | StrictInt | StrictFloat] | None = Field(
        None, description="a non-empty list of distinct values"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Dimension:
        if self.type == "categorical":
            if self.log:
                raise KeyError_(
                    "log",
                    "must be false for a categorical dimension (log is only for real), got True",
                )
            if not self.choices:
                raise KeyError_("choices", f"must be a non-empty list, got {self.choices!r}")
            if len({repr(c) for c in self.choices}) != len(self.choices):
                raise KeyError_("choices", f"must not repeat a value, got {self.choices!r}")
            for key in ("low", "high"):
                if getattr(self, key) is not None:
                    raise KeyError_(
                        key,
                        "is not used by a categorical dimension (it has choices); remove it, "
                        f"got {getattr(self, key)!r}",
                    )
            return self
        article = "an" if self.type == "int" else "a"
        if self.choices is not None:
            raise KeyError_(
                "choices",
                f"is only for type categorical; remove it ({article} {self.type} dimension uses "
                f"low and high), got {self.choices!r}",
            )
        for key in ("low", "high"):
            value = getattr(self, key)
            if value is None:
                raise KeyError_(key, f"is required for {article} {self.type} dimension, got none")
            if not math.isfinite(value):
                raise KeyError_(key, f"must be a finite number, got {value!r}")
            if self.type == "int" and float(value) != int(value):
                raise KeyError_(key, f"must be an integer for an int dimension, got {value!r}")
        if self.low >= self.high:
            raise KeyError_("low", f"must be < high ({self.high!r}), got {self.low!r}")
        if self.log and self.low <= 0:
            raise KeyError_("low", f"must be > 0 on a log scale, got {self.low!r}")
        if self.log and self.type != "real":
            raise KeyError_(
                "log", "must be false for an int dimension (log is only for real), got True"
            )
        return self

    def extremes(self) -> list[tuple[str, Any]]:
        """(key, value) pairs spanning the dimension: its bounds, or every choice."""
        if self.type == "categorical":
            return [(f"choices[{i}]", c) for i, c in enumerate(self.choices or [])]
        cast = int if self.type == "int" else float
        return [("low", cast(self.low)), ("high", cast(self.high))]


# Where each searchable name lands: the fit settings or the model's layer settings.
SEARCHABLE = {
    "hidden_units": "model",
    "n_layers": "model",
    "dropout": "model",
    "activation": "model",
    "learning_rate": "fit",
    "batch_size": "fit",
    "optimizer": "fit",
    "epochs": "fit",
}


def _default_space() -> dict[str, Dimension]:
    return {
        "hidden_units": Dimension(type="int", low=8, high=256),
        "n_layers": Dimension(type="int", low=1, high=3),
        "learning_rate": Dimension(type="real", low=3e-4, high=3e-2, log=True),
        "dropout": Dimension(type="real", low=0.0, high=0.5),
        "batch_size": Dimension(type="categorical", choices=[16, 32, 64, 128]),
        "activation": Dimension(type="categorical", choices=["relu", "tanh", "elu"]),
        "optimizer": Dimension(type="categorical", choices=["adam", "rmsprop", "sgd"]),
    }


class Objective(Section):
    kind: Literal["accuracy", "tradeoff", "pareto"] = Choice(
        "accuracy", ("accuracy", "tradeoff", "pareto")
    )
    size_weight: float = Float(0.05, ge=0)


class GA(Section):
    population: int = Int(4, ge=2)
    generations: int | None = Field(
        None, strict=True, ge=1, description="null (as many as the budget allows) or an integer ≥ 1"
    )
    crossover_prob: float = Float(0.7, ge=0, le=1)
    mutation_prob: float = Float(0.5, ge=0, le=1)
    gene_mutation_prob: float = Float(0.3, gt=0, le=1)
    tournament_size: int = Int(3, ge=2)
    elites: int = Int(1, ge=0)


PSO_TOPOLOGIES = ("global", "ring")


class PSO(Section):
    particles: int = Int(4, ge=2)
    c1: float = Float(0.5, ge=0)
    c2: float = Float(1.5, ge=0)
    w: float = Float(0.5, ge=0)
    topology: str = Field("global", description="one of 'global', 'ring'")
    neighbours: int = Int(2, ge=1)
    p: int = Field(2, strict=True, ge=1, le=2, description="1 (L1) or 2 (L2) distance for ring")

    @model_validator(mode="after")
    def _known_topology(self) -> PSO:
        if self.topology in ("pyramid", "random"):
            raise KeyError_(
                "topology",
                f"{self.topology!r} is not supported: PySwarms 1.3's {self.topology} topology "
                "fails on current NumPy; use 'global' or 'ring'",
            )
        if self.topology not in PSO_TOPOLOGIES:
            raise KeyError_("topology", f"must be one of 'global', 'ring', got {self.topology!r}")
        if self.topology == "ring" and self.neighbours >= self.particles:
            raise KeyError_(
                "neighbours", f"must be < particles ({self.particles}), got {self.neighbours}"
            )
        return self


class Bayes(Section):
    estimator: Literal["GP", "RF", "ET"] = Choice("GP", ("GP", "RF", "ET"))
    acquisition: Literal["EI", "PI", "LCB", "gp_hedge"] = Choice(
        "gp_hedge", ("EI", "PI", "LCB", "gp_hedge")
    )
    initial_points: int = Int(4, ge=1)
    acq_points: int = Int(10000, ge=10)
    batch: int = Field(
        1,
        strict=True,
        ge=1,
        description="an integer ≥ 1 (points per ask; > 1 uses constant-liar, for parallel workers)",
    )


class TPE(Section):
    n_startup_trials: int = Int(4, ge=1)
    n_ei_candidates: int = Int(24, ge=1)
    multivariate: bool = Field(
        True, strict=True, description="true (joint Parzen estimator) or false (per dimension)"
    )
    constant_liar: bool = Field(
        True, strict=True, description="true (pending trials count as bad ones) or false"
    )
    batch: int = Field(
        1,
        strict=True,
        ge=1,
        description="an integer ≥ 1 (points per ask; > 1 with constant_liar, for parallel workers)",
    )


class RandomSearch(Section):
    log_uniform: bool = Field(
        True, strict=True, description="true (sample log dimensions log-uniformly) or false"
    )


class Search(Section):
    """Hyper-parameter search: one space, one objective, one budget for every algorithm."""

    budget: int = Int(10, ge=1)
    epoch_budget: int | None = Field(
        40, strict=True, ge=1, description="null (count trials only) or an integer ≥ 1"
    )
    fidelity: Fidelity = Fidelity(kind="asha")
    objective: Objective = Objective()
    fit: Fit = Fit(epochs=6, early_stopping_patience=2)
    final_fit: Fit | None = Field(
        None, description="null (the train stage's fit settings) or fit settings for the refit"
    )
    include_baseline: bool = Field(
        True, strict=True, description="true (the train stage's config is the first trial) or false"
    )
    space: dict[str, Dimension] = Field(
        default_factory=_default_space, description="a mapping of dimension name → dimension"
    )
    ga: GA = GA()
    pso: PSO = PSO()
    bayes: Bayes = Bayes()
    random: RandomSearch = RandomSearch()
    tpe: TPE = TPE()

    @model_validator(mode="after")
    def _space_fits_the_model(self) -> Search:
        if not self.space:
            raise KeyError_("space", "must declare at least one dimension, got {}")
        for name, dim in self.space.items():
            if name not in SEARCHABLE:
                raise KeyError_(
                    f"space.{name}",
                    f"unknown dimension; searchable names are {', '.join(SEARCHABLE)}",
                )
            target = Fit if SEARCHABLE[name] == "fit" else MLP
            for key, value in dim.extremes():
                probe = {"hidden_units": [value]} if name == "hidden_units" else {name: value}
                if name == "n_layers":
                    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
                else:
                    try:
                        target.model_validate(probe)
                        ok = True
                    except ValidationError:
                        ok = False
                if not ok:
                    if name == "n_layers":
                        allowed = "an integer ≥ 1 (the number of hidden layers)"
                    else:
                        field = "model.mlp." + name if target is MLP else name
                        description = target.model_fields[name].description
                        if name == "hidden_units":  # one value is the width of every layer
                            description = "an integer ≥ 1"
                        allowed = f"{description} (as train.{field})"
                    raise KeyError_(
                        f"space.{name}.{key}",
                        f"{value!r} is not a valid {name}: must be {allowed}",
                    )
        if self.fidelity.kind != "none" and "epochs" in self.space:
            raise KeyError_(
                "space.epochs",
                f"cannot be searched with fidelity.kind {self.fidelity.kind!r} (the rungs set "
                "each trial's epochs); remove it or set fidelity.kind: none",
            )
        if self.ga.population > self.budget:
            raise KeyError_(
                "ga.population",
                f"must be ≤ search.budget ({self.budget}), got {self.ga.population}",
            )
        if self.pso.particles > self.budget:
            raise KeyError_(
                "pso.particles",
                f"must be ≤ search.budget ({self.budget}), got {self.pso.particles}",
            )
        if self.bayes.initial_points > self.budget:
            raise KeyError_(
                "bayes.initial_points",
                f"must be ≤ search.budget ({self.budget}), got {self.bayes.initial_points}",
            )
        return self
