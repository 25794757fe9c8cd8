"""params `compress`: pruning, quantization, low-rank factorization, weight clustering and their
fine-tuning."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictFloat, StrictInt, model_validator

from leanml import paths
from leanml.params.schema import (
    OPTIMIZERS,
    Choice,
    ChoiceList,
    Float,
    Int,
    KeyError_,
    NumberList,
    Section,
)

PRUNE_CRITERIA = ("magnitude", "gradient", "taylor")
STRUCTURED_CRITERIA = ("l1", "l2", "taylor")
PRUNE_SCOPES = ("per_layer", "global")
TFLITE_MODES = ("dynamic_int8", "float16", "full_int8")
GRANULARITIES = ("per_tensor", "per_channel")
QUANT_SCHEMES = ("symmetric", "asymmetric")
RANK_CRITERIA = ("rank_ratio", "energy", "rank")
CLUSTER_INITS = ("linear", "density", "kmeans++")
QUANTIZERS = ("uniform", "kmeans")

Sparsity = Annotated[float, Field(strict=True, ge=0, lt=1)]
Fraction = Annotated[float, Field(strict=True, gt=0, lt=1)]
Bits = Annotated[int, Field(strict=True, ge=2, le=16)]
ClusterBits = Annotated[int, Field(strict=True, ge=1, le=8)]


class Distill(Section):
    """Knowledge distillation from the uncompressed model (Hinton et al., 2015); alpha 0 = off."""

    alpha: float = Float(0.0, ge=0, le=1)  # weight of the soft-target term
    temperature: float = Float(4.0, gt=0)


class FineTune(Section):
    """How compressed models are fine-tuned (shared by every method; epochs are per method)."""

    optimizer: Literal[OPTIMIZERS] = Choice("adam", OPTIMIZERS)  # type: ignore[valid-type]
    learning_rate: float = Float(0.0005, gt=0, le=10)
    batch_size: int = Int(32, ge=1)
    distill: Distill = Distill()


class Structured(Section):
    fractions: list[Fraction] = NumberList([0.5], "numbers > 0 and < 1", min_length=0)
    criterion: Literal[STRUCTURED_CRITERIA] = Choice("l1", STRUCTURED_CRITERIA)  # type: ignore[valid-type]
    epochs: int = Int(8, ge=0)


class Prune(Section):
    criteria: list[Literal[PRUNE_CRITERIA]] = ChoiceList(["magnitude"], PRUNE_CRITERIA)  # type: ignore[valid-type]
    scope: Literal[PRUNE_SCOPES] = Choice("global", PRUNE_SCOPES)  # type: ignore[valid-type]
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
    sparsities: list[Sparsity] = NumberList([0.7, 0.9], "numbers ≥ 0 and < 1")
    bits: list[Bits] = NumberList([2], "integers from 2 to 16")
    criterion: Literal[PRUNE_CRITERIA] = Choice("magnitude", PRUNE_CRITERIA)  # type: ignore[valid-type]
    scope: Literal[PRUNE_SCOPES] = Choice("global", PRUNE_SCOPES)  # type: ignore[valid-type]
    granularity: Literal[GRANULARITIES] = Choice("per_channel", GRANULARITIES)  # type: ignore[valid-type]
    epochs: int = Int(12, ge=0)
    # kmeans: smaller than uniform at equal accuracy and fine-tune budget on the default data
    quantizer: Literal[QUANTIZERS] = Choice("kmeans", QUANTIZERS)  # type: ignore[valid-type]
    init: Literal[CLUSTER_INITS] = Choice("linear", CLUSTER_INITS)  # type: ignore[valid-type]
    quantize_epochs: int = Int(0, ge=0)

    @model_validator(mode="after")
    def _bits_fit_quantizer(self) -> Combined:
        for i, bits in enumerate(self.bits):
            if self.quantizer == "kmeans" and bits > 8:
                raise KeyError_(
                    f"bits[{i}]",
                    f"must be at most 8 when compress.combined.quantizer is 'kmeans', got {bits}",
                )
        return self


class Cluster(Section):
    bits: list[ClusterBits] = NumberList([3, 4], "integers from 1 to 8")
    init: Literal[CLUSTER_INITS] = Choice("linear", CLUSTER_INITS)  # type: ignore[valid-type]
    epochs: int = Int(3, ge=0)


# the search algorithms compress@auto can drive, with the section class of each one's settings
def _algorithm_sections() -> dict[str, type[Section]]:
    from leanml.params.search import GA, PSO, TPE, Bayes, RandomSearch

    return {"ga": GA, "pso": PSO, "bayes": Bayes, "random": RandomSearch, "tpe": TPE}


SEARCH_ALGORITHMS = ("ga", "pso", "bayes", "random", "tpe")
# the setting of an algorithm that must fit in the budget (its first population / points)
BUDGET_BOUND = {"ga": "population", "pso": "particles", "bayes": "initial_points"}


class Auto(Section):
    """compress@auto: a per-layer sparsity and bit-width policy searched under a size target
    (AMC, He et al. 2018; HAQ, Wang et al. 2019), each candidate briefly fine-tuned."""

    algorithm: Literal[SEARCH_ALGORITHMS] = Choice("tpe", SEARCH_ALGORITHMS)  # type: ignore[valid-type]
    # overrides of the algorithm's own settings (the keys of search.<algorithm>)
    algorithm_settings: dict[str, Any] = Field(
        {}, description="a mapping of the chosen algorithm's settings (as in search.<algorithm>)"
    )
    budget: int = Int(8, ge=1)
    target_ratio: float | None = Field(
        25.0,
        strict=True,
        gt=1,
        allow_inf_nan=False,
        description="a number > 1 (float32 weight bytes / artifact bytes), or null",
    )
    target_bytes: int | None = Field(
        None, strict=True, ge=1, description="an integer ≥ 1 (artifact bytes), or null"
    )
    # global: bits per layer searched, one global magnitude threshold fitted to the target;
    # per_layer: each layer's relative density searched too (AMC's per-layer sparsity)
    scope: Literal[PRUNE_SCOPES] = Choice("global", PRUNE_SCOPES)  # type: ignore[valid-type]
    # the range the overall sparsity is fitted in (the target decides where)
    sparsity: list[Sparsity] = NumberList(
        [0.0, 0.99], "two numbers ≥ 0 and < 1 (low, high)", min_length=2
    )
    bits: list[ClusterBits] = NumberList(
        [1, 4], "two integers from 1 to 8 (low, high)", min_length=2
    )
    trial_epochs: int = Int(2, ge=0)
    finalists: int = Int(1, ge=1)
    epochs: int = Int(12, ge=0)
    init: Literal[CLUSTER_INITS] = Choice("linear", CLUSTER_INITS)  # type: ignore[valid-type]
    # uniform policies (the same bits in every layer, sparsity fitted: combined's hand-set
    # kind) tried first: the search starts from what a person would set by hand
    start_bits: list[ClusterBits] = NumberList(
        [2], "integers from 1 to 8 (within `bits`)", min_length=0
    )

    @model_validator(mode="after")
    def _consistent(self) -> Auto:
        for name in ("sparsity", "bits"):
            pair = getattr(self, name)
            if len(pair) != 2 or pair[0] > pair[1]:
                raise KeyError_(name, f"must be [low, high] with low ≤ high, got {pair}")
        for i, bits in enumerate(self.start_bits):
            if not self.bits[0] <= bits <= self.bits[1]:
                raise KeyError_(
                    f"start_bits[{i}]",
                    f"{bits} is outside the searched bits {self.bits[0]} to {self.bits[1]}",
                )
        if (self.target_ratio is None) == (self.target_bytes is None):
            raise KeyError_(
                "target_ratio",
                "set exactly one of target_ratio (e.g. 25: 25× smaller than the float32 "
                "weights) and target_bytes (the artifact's size limit); the other null",
            )
        self.search_section()  # the algorithm's settings, checked against the budget too
        return self

    def search_section(self) -> Any:
        """The `search` section the algorithm is created with: its settings, this budget."""
        from leanml.params.search import Search

        section = _algorithm_sections()[self.algorithm]
        try:
            chosen = section.model_validate(self.algorithm_settings)
        except ValueError as exc:
            allowed = ", ".join(section.model_fields)
            detail = " ".join(line.strip() for line in str(exc).splitlines()[1:3])
            raise KeyError_(
                "algorithm_settings",
                f"not valid settings of search.{self.algorithm} (keys: {allowed}): "
                + detail.split(" [type=")[0],
            ) from None
        field = BUDGET_BOUND.get(self.algorithm)
        if field is not None and getattr(chosen, field) > self.budget:
            raise KeyError_(
                f"algorithm_settings.{field}",
                f"must be ≤ compress.auto.budget ({self.budget}), got {getattr(chosen, field)}",
            )
        # the other algorithms' sections are not used here (nor checked against this budget)
        return Search().model_copy(update={"budget": self.budget, self.algorithm: chosen})


def source_error(name: object) -> str | None:
    """Why `name` is not a compress source (None when it is one)."""
    members = {family: paths.members(family) for family in ("search", "nas")}
    if name in members or (
        isinstance(name, str)
        and name.partition("/")[0] in members
        and name.partition("/")[2] in members[name.partition("/")[0]]
    ):
        return None
    if name == "train":
        return "'train' is always compressed (the compress@<method> stages); list only the others"
    if name in ("best_search", "best_nas"):
        family = name.removeprefix("best_")
        return (
            f"write {family!r} for the val-best of {family} (the name is also the folder dvc.yaml "
            f"reads: models/{family}), got {name!r}"
        )
    allowed = (
        f"must be 'search/<algo>' ({', '.join(members['search'])}), "
        f"'nas/<strategy>' ({', '.join(members['nas'])}), or 'search' or 'nas' "
        "(the family's member whose kept model has the highest val accuracy)"
    )
    return f"{allowed}, got {name!r}"


class Compress(Section):
    """One subsection per registered method, plus the fine-tuning they share."""

    fine_tune: FineTune = FineTune()
    prune: Prune = Prune()
    quantize: Quantize = Quantize()
    lowrank: Lowrank = Lowrank()
    combined: Combined = Combined()
    cluster: Cluster = Cluster()
    auto: Auto = Auto()
    # Models compressed besides the baseline, each by every method (compress_winner@<source>-
    # <method>); a name is also the folder its model is in (models/<source>), so dvc.yaml derives
    # each stage's inputs from it.
    sources: list[str] = Field(
        [], description="a list of 'search/<algo>', 'nas/<strategy>', 'search' or 'nas'"
    )

    @model_validator(mode="after")
    def _known_sources(self) -> Compress:
        for i, name in enumerate(self.sources):
            error = source_error(name)
            if error is not None:
                raise KeyError_(f"sources[{i}]", error)
            if name in self.sources[:i]:
                raise KeyError_(f"sources[{i}]", f"{name!r} is listed twice")
        return self
