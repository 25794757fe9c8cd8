"""Typed schema of params.yaml: every section parses into a model that rejects bad values.

A bad value is reported as one line naming the full key path, what is allowed and what was
given, e.g. ``train.epochs: must be an integer ≥ 1, got -3``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo

from leanml.errors import LeanmlError

DATASETS = ("digits", "mnist", "fashion_mnist", "npz")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "selu", "gelu", "swish")
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")


class KeyError_(ValueError):
    """A cross-field check that failed, pointing at the key (relative to its section) to blame."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key
        self.message = message


def _bounds(ge=None, gt=None, le=None, lt=None) -> str:
    parts = []
    if ge is not None:
        parts.append(f"≥ {ge}")
    if gt is not None:
        parts.append(f"> {gt}")
    if le is not None:
        parts.append(f"≤ {le}")
    if lt is not None:
        parts.append(f"< {lt}")
    return " and ".join(parts)


def Int(default: int, *, ge: int | None = 1, le: int | None = None) -> Any:
    """An integer field (no floats, strings or booleans)."""
    text = "an integer " + _bounds(ge=ge, le=le)
    return Field(default, strict=True, ge=ge, le=le, description=text.strip())


def Float(default: float, *, ge=None, gt=None, le=None, lt=None) -> Any:
    """A finite number field; integers are accepted."""
    text = "a number " + _bounds(ge=ge, gt=gt, le=le, lt=lt)
    return Field(
        default,
        strict=True,
        ge=ge,
        gt=gt,
        le=le,
        lt=lt,
        allow_inf_nan=False,
        description=text.strip(),
    )


def Choice(default: str, choices: tuple[str, ...]) -> Any:
    """One of a fixed set of names."""
    return Field(default, description="one of " + ", ".join(repr(c) for c in choices))


def IntList(default: list[int], *, ge: int = 1, min_length: int = 1) -> Any:
    """A list of integers, each ≥ ge."""
    text = f"a list of at least {min_length} integer(s) ≥ {ge}"
    return Field(default, min_length=min_length, description=text)


PosInt = Annotated[int, Field(strict=True, ge=1)]


class Section(BaseModel):
    """Base of every params section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


# `scheme://user:password@host`: the password part of a URI's user info
_URI_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):[^/\s]*@")


def mask_password(text: str) -> str:
    """`https://user:secret@host` → `https://user:***@host` anywhere in `text`."""
    return _URI_PASSWORD.sub(r"\1:***@", text)


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


class Prepare(Section):
    val_fraction: float = Float(0.15, gt=0, lt=1)
    test_fraction: float = Float(0.15, gt=0, lt=1)

    @model_validator(mode="after")
    def _leave_room_to_train(self) -> Prepare:
        total = self.val_fraction + self.test_fraction
        if total > 0.8:
            raise KeyError_(
                "test_fraction",
                "prepare.val_fraction + prepare.test_fraction must be ≤ 0.8 so that at least 20% "
                f"is left to train on, got {self.val_fraction} + {self.test_fraction} = {total:g}",
            )
        return self


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
        "learning_rate": Dimension(type="real", low=1e-4, high=3e-2, log=True),
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
    population: int = Int(5, ge=2)
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


class RandomSearch(Section):
    log_uniform: bool = Field(
        True, strict=True, description="true (sample log dimensions log-uniformly) or false"
    )


class Search(Section):
    """Hyper-parameter search: one space, one objective, one budget for every algorithm."""

    budget: int = Int(10, ge=1)
    objective: Objective = Objective()
    fit: Fit = Fit(epochs=8, early_stopping_patience=2)
    space: dict[str, Dimension] = Field(
        default_factory=_default_space, description="a mapping of dimension name → dimension"
    )
    ga: GA = GA()
    pso: PSO = PSO()
    bayes: Bayes = Bayes()
    random: RandomSearch = RandomSearch()

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


# --- compress: pruning, quantization, low-rank factorization (issue 3) ---------------------------

PRUNE_CRITERIA = ("magnitude", "gradient", "taylor")
STRUCTURED_CRITERIA = ("l1", "l2", "taylor")
PRUNE_SCOPES = ("per_layer", "global")
TFLITE_MODES = ("dynamic_int8", "float16", "full_int8")
GRANULARITIES = ("per_tensor", "per_channel")
QUANT_SCHEMES = ("symmetric", "asymmetric")
RANK_CRITERIA = ("rank_ratio", "energy", "rank")

Sparsity = Annotated[float, Field(strict=True, ge=0, lt=1)]
Fraction = Annotated[float, Field(strict=True, gt=0, lt=1)]
Bits = Annotated[int, Field(strict=True, ge=2, le=16)]


def NumberList(default: list, text: str, *, min_length: int = 1) -> Any:
    """A list of numbers; `text` says what each must be."""
    return Field(default, min_length=min_length, description=f"a list of {text}")


def ChoiceList(default: list[str], choices: tuple[str, ...], *, min_length: int = 1) -> Any:
    """A list of names from a fixed set."""
    names = ", ".join(repr(c) for c in choices)
    least = f"at least {min_length} of " if min_length else "any of "
    return Field(default, min_length=min_length, description=f"a list of {least}{names}")


class FineTune(Section):
    """How compressed models are fine-tuned (shared by every method; epochs are per method)."""

    optimizer: Literal[OPTIMIZERS] = Choice("adam", OPTIMIZERS)  # type: ignore[valid-type]
    learning_rate: float = Float(0.0005, gt=0, le=10)
    batch_size: int = Int(32, ge=1)


class Structured(Section):
    fractions: list[Fraction] = NumberList([0.5], "numbers > 0 and < 1", min_length=0)
    criterion: Literal[STRUCTURED_CRITERIA] = Choice("l1", STRUCTURED_CRITERIA)  # type: ignore[valid-type]
    epochs: int = Int(8, ge=0)


class Prune(Section):
    criteria: list[Literal[PRUNE_CRITERIA]] = ChoiceList(["magnitude"], PRUNE_CRITERIA)  # type: ignore[valid-type]
    scope: Literal[PRUNE_SCOPES] = Choice("per_layer", PRUNE_SCOPES)  # type: ignore[valid-type]
    sparsities: list[Sparsity] = NumberList([0.5, 0.8, 0.9], "numbers ≥ 0 and < 1")
    epochs: int = Int(12, ge=0)
    ramp: float = Float(0.6, gt=0, le=1)
    frequency: int = Int(10, ge=1)
    structured: Structured = Structured()


class TFLite(Section):
    modes: list[Literal[TFLITE_MODES]] = ChoiceList(list(TFLITE_MODES), TFLITE_MODES, min_length=0)  # type: ignore[valid-type]
    calibration_samples: int = Int(200, ge=1)


class PTQ(Section):
    bits: list[Bits] = NumberList([2, 4, 8], "integers from 2 to 16", min_length=0)
    granularities: list[Literal[GRANULARITIES]] = ChoiceList(list(GRANULARITIES), GRANULARITIES)  # type: ignore[valid-type]
    schemes: list[Literal[QUANT_SCHEMES]] = ChoiceList(["symmetric", "asymmetric"], QUANT_SCHEMES)  # type: ignore[valid-type]


class QAT(Section):
    bits: list[Bits] = NumberList([2, 4], "integers from 2 to 16", min_length=0)
    granularity: Literal[GRANULARITIES] = Choice("per_channel", GRANULARITIES)  # type: ignore[valid-type]
    scheme: Literal[QUANT_SCHEMES] = Choice("symmetric", QUANT_SCHEMES)  # type: ignore[valid-type]
    epochs: int = Int(5, ge=0)


class Quantize(Section):
    tflite: TFLite = TFLite()
    ptq: PTQ = PTQ()
    qat: QAT = QAT()


class Lowrank(Section):
    criterion: Literal[RANK_CRITERIA] = Choice("rank_ratio", RANK_CRITERIA)  # type: ignore[valid-type]
    values: list[StrictFloat | StrictInt] = NumberList(
        [0.1, 0.25, 0.5], "rank ratios or energies in (0, 1], or ranks ≥ 1 (per criterion)"
    )
    epochs: int = Int(10, ge=0)

    @model_validator(mode="after")
    def _values_fit_criterion(self) -> Lowrank:
        for i, value in enumerate(self.values):
            if isinstance(value, bool):
                ok = False
            elif self.criterion == "rank":
                ok = isinstance(value, int) and value >= 1
            else:
                ok = 0 < value <= 1
            if not ok:
                allowed = (
                    "an integer rank ≥ 1" if self.criterion == "rank" else "a number > 0 and ≤ 1"
                )
                raise KeyError_(
                    f"values[{i}]",
                    f"must be {allowed} when compress.lowrank.criterion is "
                    f"{self.criterion!r}, got {value!r}",
                )
        return self


class Combined(Section):
    sparsities: list[Sparsity] = NumberList([0.9], "numbers ≥ 0 and < 1")
    bits: list[Bits] = NumberList([4, 8], "integers from 2 to 16")
    criterion: Literal[PRUNE_CRITERIA] = Choice("magnitude", PRUNE_CRITERIA)  # type: ignore[valid-type]
    scope: Literal[PRUNE_SCOPES] = Choice("per_layer", PRUNE_SCOPES)  # type: ignore[valid-type]
    granularity: Literal[GRANULARITIES] = Choice("per_channel", GRANULARITIES)  # type: ignore[valid-type]
    epochs: int = Int(12, ge=0)


class Compress(Section):
    """One subsection per registered method, plus the fine-tuning they share."""

    fine_tune: FineTune = FineTune()
    prune: Prune = Prune()
    quantize: Quantize = Quantize()
    lowrank: Lowrank = Lowrank()
    combined: Combined = Combined()


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


class Meta(Section):
    neighbours: int = Int(2, ge=1)
    warm_start: int = Int(3, ge=0)
    candidates: int = Int(300, ge=1)
    transfer: bool = Field(True, strict=True, description="true or false")
    source_architectures: int = Int(6, ge=1)
    source_epochs: int = Int(5, ge=1)
    synthetic_tasks: int = Int(2, ge=0)


class Nas(Section):
    """Architecture search: one space, one budget (children trained) for every strategy."""

    budget: int = Int(10, ge=1)
    fit: Fit = Fit(epochs=6, early_stopping_patience=2)
    space: NasSpace = NasSpace()
    reward: Reward = Reward()
    rl: RL = RL()
    meta: Meta = Meta()

    @model_validator(mode="after")
    def _fits_budget(self) -> Nas:
        if self.rl.children_per_update > self.budget:
            raise KeyError_(
                "rl.children_per_update",
                f"must be ≤ nas.budget ({self.budget}), got {self.rl.children_per_update}",
            )
        return self


# --- evaluate: every candidate on the test split (issue 6) ---------------------------------------

SIZE_METRICS = ("artifact_bytes", "file_bytes", "gzip_bytes", "artifact_gzip_bytes")


class Evaluate(Section):
    """Scoring every candidate model on the test split; the leaderboard and its tables."""

    # Folders under models/ whose models are candidates (models/nas_metadata, say, is not).
    families: list[str] | None = Field(
        ["train", "compress", "search", "nas"],
        description="null (every folder under models/) or a non-empty list of distinct "
        "stage folder names that includes 'train', e.g. [train, compress, search, nas]",
    )
    within_pp: float = Float(1.0, ge=0, le=100)
    size: Literal[SIZE_METRICS] = Choice("artifact_bytes", SIZE_METRICS)  # type: ignore[valid-type]
    # Its own latency protocol, so re-timing every candidate stays quick (base.measure is used
    # by the stages that time one model each).
    measure: Measure = Measure(warmup=5, runs=50, batch_size=256)

    @model_validator(mode="after")
    def _families_named(self) -> Evaluate:
        if self.families is None:
            return self
        if not self.families:
            raise KeyError_("families", "must be null or a non-empty list, got []")
        for i, name in enumerate(self.families):
            if not name or "/" in name or name.startswith("."):
                raise KeyError_(
                    f"families[{i}]", f"must be a folder name under models/, got {name!r}"
                )
        if len(set(self.families)) != len(self.families):
            raise KeyError_("families", f"must not repeat a name, got {self.families!r}")
        if "train" not in self.families:
            raise KeyError_(
                "families",
                "must include 'train' (the baseline that deltas and compression ratios are "
                f"relative to), got {self.families!r}",
            )
        return self


class Execution(Section):
    """Where search and NAS trials run. Results depend on the params, never on the workers."""

    backend: Literal["serial", "dask"] = Choice("serial", ("serial", "dask"))
    workers: int = Int(2, ge=1)
    address: str | None = Field(
        None,
        description="null (start a local Dask cluster) or a scheduler address like "
        "'tcp://10.0.0.5:8786'",
    )
    trial_timeout: float | None = Field(
        None,
        gt=0,
        strict=True,
        allow_inf_nan=False,
        description="null (no limit) or seconds > 0 a trial may train before it is stopped "
        "and recorded as failed",
    )

    @model_validator(mode="after")
    def _address(self) -> Execution:
        if self.address is None:
            return self
        if self.backend != "dask":
            raise KeyError_(
                "address",
                f"is only used with execution.backend 'dask' (backend is {self.backend!r}); "
                f"set backend: dask or address: null, got {self.address!r}",
            )
        scheme, _, rest = self.address.partition("://")
        host, _, port = rest.rpartition(":")
        if scheme not in ("tcp", "tls", "ucx", "ws", "wss") or not host or not port.isdigit():
            raise KeyError_(
                "address",
                "must be a Dask scheduler address like 'tcp://host:8786' "
                f"(scheme tcp, tls, ucx, ws or wss), got {self.address!r}",
            )
        return self


class Params(Section):
    """The whole params.yaml."""

    base: Base = Base()
    prepare: Prepare = Prepare()
    train: Train = Train()
    search: Search = Search()
    nas: Nas = Nas()
    compress: Compress = Compress()
    evaluate: Evaluate = Evaluate()
    execution: Execution = Execution()


def _field_at(model: type[BaseModel], loc: tuple) -> tuple[str, FieldInfo | None, Any]:
    """Walk `loc` through nested models and mappings.

    Returns the dotted key path, the last field passed, and the model class reached at the end
    (None when the walk ended inside a plain value). Union-member tags that pydantic adds to
    `loc` (e.g. 'int' for `int | None`) are skipped.
    """
    path, field, current = "", None, model
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        if get_origin(current) is dict:
            path += f".{part}"
            current = get_args(current)[1]
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue  # a union tag inside a plain value
        path = f"{path}.{part}" if path else str(part)
        field = current.model_fields.get(str(part))
        current = field.annotation if field is not None else None
    return path, field, current


def _message(err: dict) -> str:
    loc = tuple(p for p in err["loc"] if p != "function-after")
    path, field, _ = _field_at(Params, loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        parent_path, _, owner = _field_at(Params, loc[:-1])
        allowed = ", ".join(owner.model_fields) if issubclass_safe(owner) else "none"
        where = f" in {parent_path}" if parent_path else ""
        return f"{path}: unknown key{where}; allowed keys are {allowed}"
    ctx_error = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_error, KeyError_):
        return f"{path}.{ctx_error.key}: {ctx_error.message}" if path else ctx_error.message
    allowed = field.description if field is not None and field.description else err["msg"]
    if kind == "missing":
        return f"{path}: missing; must be {allowed}"
    if field is not None and issubclass_safe(field.annotation) and kind.endswith("_type"):
        return f"{path}: must be a mapping of keys, got {err['input']!r}"
    return f"{path}: must be {allowed}, got {err['input']!r}"


def issubclass_safe(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def parse(raw: Any, source: str = "params.yaml") -> Params:
    """Validate a params mapping; raise `LeanmlError` listing every bad key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise LeanmlError(f"{source}: must be a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        # dict.fromkeys: one line per problem even when a union reports it per member
        lines = list(dict.fromkeys(_message(err) for err in exc.errors()))
        raise LeanmlError("\n".join(f"{source}: {line}" for line in lines)) from None


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """yaml.safe_load's loader (the fast C one when built) that refuses duplicate keys."""


def _mapping_without_duplicates(loader: _Loader, node: yaml.MappingNode) -> dict:
    seen = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key_node.value!r} (the last one would silently win)",
                    key_node.start_mark,
                )
            seen.add(key)
    return loader.construct_mapping(node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def load(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as handle:
            raw = yaml.load(handle, Loader=_Loader)
    except FileNotFoundError:
        raise LeanmlError(f"{path}: file not found (run stages from the project root)") from None
    except yaml.YAMLError as exc:
        raise LeanmlError(f"{path}: not valid YAML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise LeanmlError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise LeanmlError(
            f"{path}: cannot be read ({exc.strerror or type(exc).__name__})"
        ) from None
    return parse(raw, source=path.name)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """`{'train': {'fit': {'epochs': 3}}}` → `{'train.fit.epochs': 3}` (lists kept as values)."""
    if isinstance(tree, BaseModel):
        tree = tree.model_dump()
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat
