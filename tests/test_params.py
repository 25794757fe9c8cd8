"""params.yaml schema: defaults parse, bad values give one precise message each."""

from pathlib import Path

import pytest
import yaml

from leanml import params
from leanml.errors import LeanmlError

ROOT = Path(__file__).resolve().parents[1]


def test_project_params_file_is_valid():
    cfg = params.load(ROOT / "params.yaml")
    assert cfg.base.dataset == "digits"
    assert cfg.train.model.kind in ("mlp", "cnn")


def test_empty_mapping_gives_defaults():
    cfg = params.parse({})
    assert cfg == params.Params()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"train": {"epochs": -3}}, "train.epochs: must be an integer ≥ 1, got -3"),
        ({"train": {"epochs": 2.5}}, "train.epochs: must be an integer ≥ 1, got 2.5"),
        ({"train": {"epochs": "3"}}, "train.epochs: must be an integer ≥ 1, got '3'"),
        ({"train": {"epochs": True}}, "train.epochs: must be an integer ≥ 1, got True"),
        (
            {"train": {"learning_rate": 0}},
            "train.learning_rate: must be a number > 0 and ≤ 10, got 0",
        ),
        (
            {"train": {"optimizer": "adamm"}},
            "train.optimizer: must be one of 'adam', 'sgd', 'rmsprop', 'adamw', got 'adamm'",
        ),
        (
            {"train": {"model": {"kind": "rnn"}}},
            "train.model.kind: must be one of 'mlp', 'cnn', got 'rnn'",
        ),
        (
            {"train": {"model": {"mlp": {"hidden_units": [64, 0]}}}},
            "train.model.mlp.hidden_units[1]: must be a list of at least 1 integer(s) ≥ 1, got 0",
        ),
        (
            {"train": {"model": {"mlp": {"hidden_units": []}}}},
            "train.model.mlp.hidden_units: must be a list of at least 1 integer(s) ≥ 1, got []",
        ),
        (
            {"train": {"model": {"mlp": {"dropout": 1.0}}}},
            "train.model.mlp.dropout: must be a number ≥ 0 and < 1, got 1.0",
        ),
        ({"train": {"epoch": 3}}, "train.epoch: unknown key in train; allowed keys are"),
        ({"trian": {}}, "trian: unknown key; allowed keys are base, prepare, train"),
        ({"base": {"seed": -1}}, "base.seed: must be an integer ≥ 0, got -1"),
        (
            {"base": {"dataset": "cifar"}},
            "base.dataset: must be one of 'digits', 'mnist', 'fashion_mnist', 'npz', got 'cifar'",
        ),
        (
            {"base": {"dataset": "npz"}},
            "base.npz_path: must name a .npz file when base.dataset is 'npz'",
        ),
        (
            {"base": {"tracking": {"experiment": ""}}},
            "base.tracking.experiment: must be a non-empty experiment name, got ''",
        ),
        (
            {"base": {"measure": {"runs": 1000}}},
            "base.measure: was removed: latency is measured once, by the evaluate stage, for "
            "every candidate in one runtime; set evaluate.measure (warmup, runs, batch_size) "
            "instead and delete base.measure, got {'runs': 1000}",
        ),
        (
            {"prepare": {"val_fraction": 1.5}},
            "prepare.val_fraction: must be a number > 0 and < 1, got 1.5",
        ),
        (
            {"prepare": {"val_fraction": 0.5, "test_fraction": 0.4}},
            "prepare.test_fraction: prepare.val_fraction + prepare.test_fraction must be ≤ 0.8",
        ),
        ({"train": "fast"}, "train: must be a mapping of keys, got 'fast'"),
        ({"search": {"budget": 0}}, "search.budget: must be an integer ≥ 1, got 0"),
        ({"search": {"space": {}}}, "search.space: must declare at least one dimension"),
        (
            {"search": {"space": {"width": {"type": "int", "low": 1, "high": 4}}}},
            "search.space.width: unknown dimension; searchable names are hidden_units",
        ),
        (
            {"search": {"space": {"hidden_units": {"type": "int", "low": 64, "high": 8}}}},
            "search.space.hidden_units.low: must be < high (8), got 64",
        ),
        (
            {
                "search": {
                    "space": {"learning_rate": {"type": "real", "low": 0, "high": 0.1, "log": True}}
                }
            },
            "search.space.learning_rate.low: must be > 0 on a log scale, got 0",
        ),
        (
            {"search": {"space": {"activation": {"type": "categorical", "choices": []}}}},
            "search.space.activation.choices: must be a non-empty list, got []",
        ),
        (
            {
                "search": {
                    "space": {"optimizer": {"type": "categorical", "choices": ["adam", "lion"]}}
                }
            },
            "search.space.optimizer.choices[1]: 'lion' is not a valid optimizer",
        ),
        (
            {"search": {"space": {"dropout": {"type": "real", "low": 0, "high": 1.5}}}},
            "search.space.dropout.high: 1.5 is not a valid dropout",
        ),
        (
            {"search": {"space": {"n_layers": {"type": "int", "low": 1.5, "high": 3}}}},
            "search.space.n_layers.low: must be an integer for an int dimension, got 1.5",
        ),
        (
            {"search": {"space": {"dropout": {"type": "gaussian"}}}},
            "search.space.dropout.type: must be one of 'int', 'real', 'categorical', got 'gaussian'",
        ),
        (
            {"search": {"ga": {"population": 50}}},
            "search.ga.population: must be ≤ search.budget (10), got 50",
        ),
        (
            {"search": {"pso": {"topology": "pyramid"}}},
            "search.pso.topology: 'pyramid' is not supported",
        ),
        (
            {"search": {"pso": {"topology": "star"}}},
            "search.pso.topology: must be one of 'global', 'ring', got 'star'",
        ),
        (
            {"search": {"bayes": {"acquisition": "UCB"}}},
            "search.bayes.acquisition: must be one of 'EI', 'PI', 'LCB', 'gp_hedge', got 'UCB'",
        ),
        (
            {"search": {"objective": {"kind": "size"}}},
            "search.objective.kind: must be one of 'accuracy', 'tradeoff', 'pareto', got 'size'",
        ),
        ({"nas": {"budget": 0}}, "nas.budget: must be an integer ≥ 1, got 0"),
        (
            {"nas": {"space": {"max_layers": 0}}},
            "nas.space.max_layers: must be an integer ≥ 1 and ≤ 8, got 0",
        ),
        (
            {"nas": {"space": {"units": []}}},
            "nas.space.units: must be a non-empty list of integers ≥ 1, got []",
        ),
        (
            {"nas": {"space": {"kinds": ["dense", "lstm"]}}},
            "nas.space.kinds[1]: must be a non-empty list of 'dense' / 'conv', got 'lstm'",
        ),
        (
            {"nas": {"space": {"filters": [8, 8]}}},
            "nas.space.filters: must not repeat a choice, got [8, 8]",
        ),
        (
            {"nas": {"reward": {"target_params": 0}}},
            "nas.reward.target_params: must be null (reward = val accuracy) or an integer > 0, got 0",
        ),
        (
            {"nas": {"rl": {"controller": "gru"}}},
            "nas.rl.controller: must be one of 'lstm', 'independent', got 'gru'",
        ),
        (
            {"nas": {"rl": {"children_per_update": 20}}},
            "nas.rl.children_per_update: must be ≤ nas.budget (6), got 20",
        ),
        (
            {"compress": {"prune": {"sparsities": [0.5, 1.0]}}},
            "compress.prune.sparsities[1]: must be a list of numbers ≥ 0 and < 1, got 1.0",
        ),
        (
            {"compress": {"combined": {"sparsities": [-0.1]}}},
            "compress.combined.sparsities[0]: must be a list of numbers ≥ 0 and < 1, got -0.1",
        ),
        (
            {"compress": {"quantize": {"ptq": {"bits": [1, 4]}}}},
            "compress.quantize.ptq.bits[0]: must be a list of integers from 2 to 16, got 1",
        ),
        (
            {"compress": {"quantize": {"qat": {"bits": [17]}}}},
            "compress.quantize.qat.bits[0]: must be a list of integers from 2 to 16, got 17",
        ),
        (
            {"compress": {"lowrank": {"criterion": "rank", "values": [8, 0]}}},
            "compress.lowrank.values[1]: must be an integer rank ≥ 1 when compress.lowrank.criterion is 'rank', got 0",
        ),
        (
            {"compress": {"lowrank": {"values": [1.5]}}},
            "compress.lowrank.values[0]: must be a number > 0 and ≤ 1 when compress.lowrank.criterion is 'rank_ratio', got 1.5",
        ),
        (
            {"compress": {"lowrank": {"criterion": "tucker"}}},
            "compress.lowrank.criterion: must be one of 'rank_ratio', 'energy', 'rank', got 'tucker'",
        ),
        (
            {"compress": {"prune": {"criteria": ["magnitude", "random"]}}},
            "compress.prune.criteria[1]: must be a list of at least 1 of 'magnitude', 'gradient', 'taylor', got 'random'",
        ),
        (
            {"compress": {"quantize": {"tflite": {"modes": ["int4"]}}}},
            "compress.quantize.tflite.modes[0]: must be a list of any of 'dynamic_int8', 'float16', 'full_int8', got 'int4'",
        ),
        (
            {"compress": {"prune": {"structured": {"fractions": [1.0]}}}},
            "compress.prune.structured.fractions[0]: must be a list of numbers > 0 and < 1, got 1.0",
        ),
        (
            {"compress": {"distill": {}}},
            "compress.distill: unknown key in compress; allowed keys are fine_tune, prune, quantize, lowrank, combined",
        ),
        (
            {"compress": {"prune": {"epochs": -1}}},
            "compress.prune.epochs: must be an integer ≥ 0, got -1",
        ),
        # evaluate (issue 6)
        (
            {"evaluate": {"within_pp": -1}},
            "evaluate.within_pp: must be a number ≥ 0 and ≤ 100, got -1",
        ),
        (
            {"evaluate": {"size": "bytes"}},
            "evaluate.size: must be one of 'artifact_bytes', 'file_bytes', 'gzip_bytes', "
            "'artifact_gzip_bytes', got 'bytes'",
        ),
        (
            {"evaluate": {"families": ["compress", "search"]}},
            "evaluate.families: must include 'train' (the baseline",
        ),
        (
            {"evaluate": {"families": []}},
            "evaluate.families: must be null or a non-empty list, got []",
        ),
        (
            {"evaluate": {"families": ["train", "train"]}},
            "evaluate.families: must not repeat a name, got ['train', 'train']",
        ),
        (
            {"evaluate": {"families": ["train", "models/search"]}},
            "evaluate.families[1]: must be a folder name under models/, got 'models/search'",
        ),
        (
            {"evaluate": {"measure": {"runs": 0}}},
            "evaluate.measure.runs: must be an integer ≥ 1, got 0",
        ),
        (
            {"evaluate": {"latency_runs": 5}},
            "evaluate.latency_runs: unknown key in evaluate; allowed keys are families, within_pp, "
            "size, language, measure",
        ),
    ],
)
def test_bad_value_message(raw, expected):
    with pytest.raises(LeanmlError) as err:
        params.parse(raw)
    assert expected in str(err.value)
    assert str(err.value).startswith("params.yaml: ")


def test_every_bad_key_is_reported_at_once():
    with pytest.raises(LeanmlError) as err:
        params.parse({"train": {"epochs": 0, "batch_size": -1}})
    lines = str(err.value).splitlines()
    assert len(lines) == 2
    assert any("train.epochs" in line for line in lines)
    assert any("train.batch_size" in line for line in lines)


def test_not_yaml_and_not_mapping(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [epochs: 3\n")
    with pytest.raises(LeanmlError, match="not valid YAML"):
        params.load(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(LeanmlError, match="must be a mapping of sections"):
        params.load(bad)
    with pytest.raises(LeanmlError, match="file not found"):
        params.load(tmp_path / "missing.yaml")


def test_flatten_uses_dotted_keys():
    flat = params.flatten(params.parse(yaml.safe_load("train: {epochs: 3}")))
    assert flat["train.epochs"] == 3
    assert flat["train.model.mlp.hidden_units"] == [128]
    assert flat["base.tracking.experiment"] == "leanml"
