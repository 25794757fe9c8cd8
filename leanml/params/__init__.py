"""Typed schema of params.yaml: every section parses into a model that rejects bad values.

A bad value is reported as one line naming the full key path, what is allowed and what was
given, e.g. ``train.epochs: must be an integer ≥ 1, got -3``. One module per section; this
package re-exports every public name, so `from leanml.params import Fit` works.
"""

from leanml.params.base import (
    DATASETS,
    Base,
    Measure,
    Tracking,
)
from leanml.params.compress import (
    GRANULARITIES,
    PRUNE_CRITERIA,
    PRUNE_SCOPES,
    PTQ,
    QAT,
    QUANT_SCHEMES,
    RANK_CRITERIA,
    STRUCTURED_CRITERIA,
    TFLITE_MODES,
    Bits,
    Combined,
    Compress,
    FineTune,
    Fraction,
    Lowrank,
    Prune,
    Quantize,
    Sparsity,
    Structured,
    TFLite,
)
from leanml.params.document import (
    Params,
    load,
    parse,
)
from leanml.params.evaluate import (
    SIZE_METRICS,
    Evaluate,
)
from leanml.params.execution import (
    Execution,
)
from leanml.params.nas import (
    RL,
    Meta,
    Nas,
    NasSpace,
    Reward,
)
from leanml.params.prepare import (
    Prepare,
)
from leanml.params.schema import (
    ACTIVATIONS,
    OPTIMIZERS,
    Choice,
    ChoiceList,
    Float,
    Int,
    IntList,
    KeyError_,
    NumberList,
    PosInt,
    Section,
)
from leanml.params.search import (
    GA,
    PSO,
    PSO_TOPOLOGIES,
    SEARCHABLE,
    TPE,
    Bayes,
    Dimension,
    Objective,
    RandomSearch,
    Search,
)
from leanml.params.train import (
    CNN,
    MLP,
    Fidelity,
    Fit,
    ModelSpec,
    Train,
)
from leanml.params.util import (
    flatten,
    mask_password,
)

__all__ = [
    "DATASETS",
    "ACTIVATIONS",
    "OPTIMIZERS",
    "KeyError_",
    "Int",
    "Float",
    "Choice",
    "IntList",
    "PosInt",
    "Section",
    "mask_password",
    "Tracking",
    "Measure",
    "Base",
    "Prepare",
    "MLP",
    "CNN",
    "ModelSpec",
    "Fidelity",
    "Fit",
    "Train",
    "Dimension",
    "SEARCHABLE",
    "Objective",
    "GA",
    "PSO_TOPOLOGIES",
    "PSO",
    "Bayes",
    "RandomSearch",
    "TPE",
    "Search",
    "PRUNE_CRITERIA",
    "STRUCTURED_CRITERIA",
    "PRUNE_SCOPES",
    "TFLITE_MODES",
    "GRANULARITIES",
    "QUANT_SCHEMES",
    "RANK_CRITERIA",
    "Sparsity",
    "Fraction",
    "Bits",
    "NumberList",
    "ChoiceList",
    "FineTune",
    "Structured",
    "Prune",
    "TFLite",
    "PTQ",
    "QAT",
    "Quantize",
    "Lowrank",
    "Combined",
    "Compress",
    "NasSpace",
    "Reward",
    "RL",
    "Meta",
    "Nas",
    "SIZE_METRICS",
    "Evaluate",
    "Execution",
    "Params",
    "issubclass_safe",
    "parse",
    "load",
    "flatten",
]
