"""Fuzz every stage entry point with bad input: invalid params.yaml files, bad arguments, faulty
data and model files.

`BAD_PARAMS` is a table of invalid params.yaml edits, each with the key path and a fragment of
the message expected. Every entry goes through every stage entry point that dvc.yaml declares
(`python stages/<name>.py [item]`, once per foreach item), in-process with `runpy` so that the
whole table costs seconds. Each run must exit 2 with one stderr line per problem naming the full
key, what is allowed and what was given; print no traceback; start no work (no data, model or
MLflow store touched: those functions are replaced by tripwires); and leave every project file
as it was. `test_real_processes` then runs one real subprocess per stage to prove the same of
the process path (exit code, stderr without traceback, no files).
"""

from __future__ import annotations

import contextlib
import io
import os
import runpy
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from leanml import tracking
from leanml.paths import members
from tests import mlflow_helpers
from tests.conftest import ROOT, copy_project, project_env

# the real functions, kept before any tripwire replaces them
_REAL_CONNECT, _REAL_STAGE_RUN = tracking.connect, tracking.stage_run


def _entry_points() -> list[tuple[str, list[str]]]:
    """(stage name, argv) of every stage in dvc.yaml, one per foreach item."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    declared = yaml.safe_load((ROOT / "leanml/paths.yaml").read_text())
    out = []
    sources = yaml.safe_load((ROOT / "params.yaml").read_text())["compress"]["sources"]
    for name, stage in stages.items():
        if "matrix" in stage:
            # compress_winner: one stage per compress.sources entry and method; params.yaml lists
            # no source, so there is no such stage here (tests/test_sources.py runs one)
            assert sources == [], sources
            continue
        if "foreach" not in stage:
            out.append((name, stage["cmd"].split()[1:]))
            continue
        items = stage["foreach"]
        if isinstance(items, str):  # "${members.compress}": a list in leanml/paths.yaml
            node = declared
            for part in items.strip("${}").split("."):
                node = node[part]
            items = node
        for item in items:
            cmd = stage["do"]["cmd"].replace("${key}", item).replace("${item}", item)
            out.append((f"{name}@{item}", cmd.split()[1:]))
    return out


ENTRY_POINTS = _entry_points()
# one per dvc.yaml stage (the first item of a foreach), for the real subprocesses
ONE_PER_STAGE = list(
    {name.split("@")[0]: (name, argv) for name, argv in reversed(ENTRY_POINTS)}.values()
)[::-1]

SECRET = "hunter2"


def bad(edits: dict, key: str, fragment: str, id: str | None = None):
    """One invalid config: `edits` (dotted key → value) applied to the project's params.yaml,
    expected to give exactly one problem line for `key` containing `fragment`."""
    return pytest.param(edits, [(key, fragment)], id=id or f"{key}={list(edits.values())[-1]!r}")


INF, NAN = float("inf"), float("nan")
DIM = "search.space"

BAD_PARAMS = [
    # --- base ----------------------------------------------------------------------------------
    bad({"base.seed": -1}, "base.seed", "must be an integer ≥ 0, got -1"),
    bad({"base.seed": "42"}, "base.seed", "must be an integer ≥ 0, got '42'"),
    bad({"base.seed": 4.2}, "base.seed", "must be an integer ≥ 0, got 4.2"),
    bad(
        {"base.dataset": "cifar10"},
        "base.dataset",
        "must be one of 'digits', 'mnist', 'fashion_mnist', 'npz', got 'cifar10'",
    ),
    bad(
        {"base.dataset": "npz", "base.npz_path": None},
        "base.npz_path",
        "must name a .npz file when base.dataset is 'npz', got None",
    ),
    bad(
        {"base.npz_path": 5},
        "base.npz_path",
        "must be null, or the path of a .npz file with arrays x and y, got 5",
    ),
    bad(
        {"base.tracking.experiment": ""},
        "base.tracking.experiment",
        "must be a non-empty experiment name, got ''",
    ),
    bad({"base.tracking.uri": ""}, "base.tracking.uri", "or a tracking URI, got ''"),
    bad({"base.tracking.uri": 5}, "base.tracking.uri", "or a tracking URI, got 5"),
    bad(
        {"base.tracking.uri": f"https://bob:{SECRET}@mlflow.example.org"},
        "base.tracking.uri",
        "must not hold a password",
        id="base.tracking.uri=password",
    ),
    bad(
        {"base.tracking.token": "abc"},
        "base.tracking.token",
        "unknown key in base.tracking; allowed keys are uri, experiment",
    ),
    # the latency protocol moved to evaluate.measure (only the evaluate stage times models)
    bad({"base.measure.runs": 1000}, "base.measure", "was removed: latency is measured once"),
    bad({"evaluate.measure.warmup": -1}, "evaluate.measure.warmup", "must be an integer ≥ 0"),
    bad({"evaluate.measure": []}, "evaluate.measure", "must be a mapping of keys, got []"),
    bad({"base": "fast"}, "base", "must be a mapping of keys, got 'fast'"),
    bad(
        {"trian.epochs": 3},
        "trian",
        "unknown key; allowed keys are base, prepare, train, search, nas, compress, evaluate, execution",
    ),
    # --- prepare -------------------------------------------------------------------------------
    bad({"prepare.val_fraction": 0}, "prepare.val_fraction", "must be a number > 0 and < 1, got 0"),
    bad(
        {"prepare.test_fraction": 1.2},
        "prepare.test_fraction",
        "must be a number > 0 and < 1, got 1.2",
    ),
    bad(
        {"prepare.val_fraction": "0.1"},
        "prepare.val_fraction",
        "must be a number > 0 and < 1, got '0.1'",
    ),
    bad(
        {"prepare.val_fraction": NAN},
        "prepare.val_fraction",
        "must be a number > 0 and < 1, got nan",
    ),
    bad(
        {"prepare.val_fraction": 0.5, "prepare.test_fraction": 0.5},
        "prepare.test_fraction",
        "prepare.val_fraction + prepare.test_fraction must be ≤ 0.8 so that at least 20% is left to train on, got 0.5 + 0.5 = 1",
        id="prepare.fractions-sum-1",
    ),
    bad(
        {"prepare.val_fraction": 0.45, "prepare.test_fraction": 0.4},
        "prepare.test_fraction",
        "got 0.45 + 0.4 = 0.85",
        id="prepare.fractions-sum-0.85",
    ),
    bad(
        {"prepare.shuffle": True},
        "prepare.shuffle",
        "unknown key in prepare; allowed keys are val_fraction, test_fraction",
    ),
    # --- train ---------------------------------------------------------------------------------
    bad({"train.epochs": 0}, "train.epochs", "must be an integer ≥ 1, got 0"),
    bad({"train.epochs": 2.5}, "train.epochs", "must be an integer ≥ 1, got 2.5"),
    bad({"train.epochs": "3"}, "train.epochs", "must be an integer ≥ 1, got '3'"),
    bad({"train.epochs": True}, "train.epochs", "must be an integer ≥ 1, got True"),
    bad({"train.batch_size": -32}, "train.batch_size", "must be an integer ≥ 1, got -32"),
    bad({"train.learning_rate": 0}, "train.learning_rate", "must be a number > 0 and ≤ 10, got 0"),
    bad(
        {"train.learning_rate": INF},
        "train.learning_rate",
        "must be a number > 0 and ≤ 10, got inf",
    ),
    bad(
        {"train.optimizer": "adamm"},
        "train.optimizer",
        "must be one of 'adam', 'sgd', 'rmsprop', 'adamw', got 'adamm'",
    ),
    bad(
        {"train.optimiser": "adam"},
        "train.optimiser",
        "unknown key in train; allowed keys are optimizer, learning_rate, epochs",
    ),
    bad(
        {"train.early_stopping_patience": -1},
        "train.early_stopping_patience",
        "must be an integer ≥ 0, got -1",
    ),
    bad({"train.model.kind": "rnn"}, "train.model.kind", "must be one of 'mlp', 'cnn', got 'rnn'"),
    bad(
        {"train.model.mlp.hidden_units": []},
        "train.model.mlp.hidden_units",
        "must be a list of at least 1 integer(s) ≥ 1, got []",
    ),
    bad(
        {"train.model.mlp.hidden_units": [64, -8]},
        "train.model.mlp.hidden_units[1]",
        "must be a list of at least 1 integer(s) ≥ 1, got -8",
    ),
    bad(
        {"train.model.mlp.activation": "leaky_relu"},
        "train.model.mlp.activation",
        "must be one of 'relu', 'tanh', 'sigmoid', 'elu', 'selu', 'gelu', 'swish', got 'leaky_relu'",
    ),
    bad(
        {"train.model.mlp.dropout": 1.0},
        "train.model.mlp.dropout",
        "must be a number ≥ 0 and < 1, got 1.0",
    ),
    bad(
        {"train.model.mlp.units": [64]},
        "train.model.mlp.units",
        "unknown key in train.model.mlp; allowed keys are hidden_units, activation, dropout",
    ),
    bad(
        {"train.model.cnn.filters": "16"},
        "train.model.cnn.filters",
        "must be a list of at least 1 integer(s) ≥ 1, got '16'",
    ),
    bad(
        {"train.model.cnn.kernel_size": 0},
        "train.model.cnn.kernel_size",
        "must be an integer ≥ 1, got 0",
    ),
    bad({"train.model": None}, "train.model", "must be a mapping of keys, got None"),
    # --- search --------------------------------------------------------------------------------
    bad({"search.budget": 0}, "search.budget", "must be an integer ≥ 1, got 0"),
    bad(
        {"search.objective.kind": "size"},
        "search.objective.kind",
        "must be one of 'accuracy', 'tradeoff', 'pareto', got 'size'",
    ),
    bad(
        {"search.objective.size_weight": INF},
        "search.objective.size_weight",
        "must be a number ≥ 0, got inf",
    ),
    bad({"search.fit.epochs": 0}, "search.fit.epochs", "must be an integer ≥ 1, got 0"),
    bad({"search.space": {}}, "search.space", "must declare at least one dimension, got {}"),
    bad(
        {f"{DIM}.width": {"type": "int", "low": 1, "high": 4}},
        f"{DIM}.width",
        "unknown dimension; searchable names are hidden_units, n_layers, dropout, activation, learning_rate, batch_size, optimizer, epochs",
    ),
    bad(
        {f"{DIM}.hidden_units": {"type": "int", "low": 64, "high": 8}},
        f"{DIM}.hidden_units.low",
        "must be < high (8), got 64",
        id="dim-low>high",
    ),
    bad(
        {f"{DIM}.dropout": {"type": "real", "low": 0.3, "high": 0.3}},
        f"{DIM}.dropout.low",
        "must be < high (0.3), got 0.3",
        id="dim-low=high",
    ),
    bad(
        {f"{DIM}.learning_rate": {"type": "real", "low": 0, "high": 0.1, "log": True}},
        f"{DIM}.learning_rate.low",
        "must be > 0 on a log scale, got 0",
        id="dim-log-low-0",
    ),
    bad(
        {f"{DIM}.learning_rate": {"type": "real", "low": -1, "high": 0.1, "log": True}},
        f"{DIM}.learning_rate.low",
        "must be > 0 on a log scale, got -1",
        id="dim-log-low-negative",
    ),
    bad(
        {f"{DIM}.hidden_units": {"type": "int", "low": 8, "high": 64, "log": True}},
        f"{DIM}.hidden_units.log",
        "must be false for an int dimension (log is only for real), got True",
        id="dim-log-on-int",
    ),
    bad(
        {f"{DIM}.activation": {"type": "categorical", "choices": []}},
        f"{DIM}.activation.choices",
        "must be a non-empty list, got []",
        id="dim-empty-choices",
    ),
    bad(
        {f"{DIM}.batch_size": {"type": "categorical", "choices": [16, 16]}},
        f"{DIM}.batch_size.choices",
        "must not repeat a value, got [16, 16]",
        id="dim-repeated-choice",
    ),
    bad(
        {f"{DIM}.optimizer": {"type": "categorical", "choices": ["adam", "lion"]}},
        f"{DIM}.optimizer.choices[1]",
        "'lion' is not a valid optimizer: must be one of 'adam', 'sgd', 'rmsprop', 'adamw' (as train.optimizer)",
        id="dim-bad-choice",
    ),
    bad(
        {f"{DIM}.activation": {"type": "categorical", "choices": ["relu"], "low": 1}},
        f"{DIM}.activation.low",
        "is not used by a categorical dimension (it has choices); remove it, got 1",
        id="dim-categorical-with-low",
    ),
    bad(
        {f"{DIM}.n_layers": {"type": "int", "low": 1, "choices": [1, 2]}},
        f"{DIM}.n_layers.choices",
        "is only for type categorical; remove it (an int dimension uses low and high), got [1, 2]",
        id="dim-int-with-choices",
    ),
    bad(
        {f"{DIM}.dropout": {"type": "real", "low": 0, "high": 1.5}},
        f"{DIM}.dropout.high",
        "1.5 is not a valid dropout: must be a number ≥ 0 and < 1 (as train.model.mlp.dropout)",
        id="dim-out-of-range",
    ),
    bad(
        {f"{DIM}.dropout": {"type": "gaussian"}},
        f"{DIM}.dropout.type",
        "must be one of 'int', 'real', 'categorical', got 'gaussian'",
        id="dim-unknown-type",
    ),
    bad(
        {f"{DIM}.n_layers": {"type": "int", "low": 1.5, "high": 3}},
        f"{DIM}.n_layers.low",
        "must be an integer for an int dimension, got 1.5",
        id="dim-int-fraction",
    ),
    bad(
        {f"{DIM}.n_layers": {"type": "int", "low": 1, "high": INF}},
        f"{DIM}.n_layers.high",
        "must be a finite number, got inf",
        id="dim-infinite",
    ),
    bad(
        {f"{DIM}.hidden_units": {"type": "int", "low": "8", "high": 64}},
        f"{DIM}.hidden_units.low",
        "must be a number (the lower bound), got '8'",
        id="dim-string-bound",
    ),
    bad(
        {f"{DIM}.hidden_units": {"type": "int", "low": 8}},
        f"{DIM}.hidden_units.high",
        "is required for an int dimension, got none",
        id="dim-missing-high",
    ),
    bad(
        {f"{DIM}.hidden_units": {"type": "int", "low": 8, "high": 64, "step": 8}},
        f"{DIM}.hidden_units.step",
        "unknown key in search.space.hidden_units; allowed keys are type, low, high, log, choices",
        id="dim-unknown-key",
    ),
    bad(
        {f"{DIM}.hidden_units": "wide"},
        f"{DIM}.hidden_units",
        "must be a mapping of dimension name → dimension, got 'wide'",
        id="dim-not-a-mapping",
    ),
    bad(
        {"search.ga.population": 50}, "search.ga.population", "must be ≤ search.budget (10), got 50"
    ),
    bad(
        {"search.ga.crossover_prob": 1.5},
        "search.ga.crossover_prob",
        "must be a number ≥ 0 and ≤ 1, got 1.5",
    ),
    bad(
        {"search.pso.topology": "pyramid"},
        "search.pso.topology",
        "'pyramid' is not supported: PySwarms 1.3's pyramid topology fails on current NumPy; use 'global' or 'ring'",
    ),
    bad(
        {"search.pso.topology": "ring", "search.pso.neighbours": 4},
        "search.pso.neighbours",
        "must be < particles (4), got 4",
        id="pso-ring-neighbours",
    ),
    bad({"search.pso.c1": INF}, "search.pso.c1", "must be a number ≥ 0, got inf"),
    bad(
        {"search.bayes.estimator": "XGB"},
        "search.bayes.estimator",
        "must be one of 'GP', 'RF', 'ET', got 'XGB'",
    ),
    bad({"search.bayes.batch": 0}, "search.bayes.batch", "must be an integer ≥ 1 (points per ask"),
    bad(
        {"search.bayes.initial_points": 11},
        "search.bayes.initial_points",
        "must be ≤ search.budget (10), got 11",
    ),
    bad(
        {"search.fidelity.kind": "bohb"},
        "search.fidelity.kind",
        "must be one of 'none', 'asha', 'hyperband', got 'bohb'",
    ),
    bad(
        {"search.fidelity.min_epochs": 9},
        "search.fidelity.min_epochs",
        "must be < max_epochs (9) for kind 'asha', got 9",
    ),
    bad({"search.fidelity.eta": 1}, "search.fidelity.eta", "must be an integer ≥ 2, got 1"),
    bad(
        {"search.epoch_budget": 0},
        "search.epoch_budget",
        "must be null (count trials only) or an integer ≥ 1, got 0",
    ),
    bad(
        {"nas.fidelity.wave": 0},
        "nas.fidelity.wave",
        "must be an integer ≥ 1 (trials started together",
    ),
    bad(
        {"search.random.log_uniform": "yes"},
        "search.random.log_uniform",
        "must be true (sample log dimensions log-uniformly) or false, got 'yes'",
    ),
    bad({"search.tpe.batch": 0}, "search.tpe.batch", "must be an integer ≥ 1 (points per ask"),
    bad(
        {"search.tpe.multivariate": "yes"},
        "search.tpe.multivariate",
        "must be true (joint Parzen estimator) or false (per dimension), got 'yes'",
    ),
    bad(
        {"search.cmaes.sigma": 0.5},
        "search.cmaes",
        "unknown key in search; allowed keys are budget, epoch_budget, fidelity, objective, fit, final_fit, include_baseline, space, ga, pso, bayes, random, tpe",
    ),
    # --- nas -----------------------------------------------------------------------------------
    bad({"nas.budget": 0}, "nas.budget", "must be an integer ≥ 1, got 0"),
    bad(
        {"nas.space.max_layers": 9}, "nas.space.max_layers", "must be an integer ≥ 1 and ≤ 8, got 9"
    ),
    bad(
        {"nas.space.units": []},
        "nas.space.units",
        "must be a non-empty list of integers ≥ 1, got []",
    ),
    bad(
        {"nas.space.kinds": ["dense", "lstm"]},
        "nas.space.kinds[1]",
        "must be a non-empty list of 'dense' / 'conv', got 'lstm'",
    ),
    bad(
        {"nas.space.activations": ["relu", "relu"]},
        "nas.space.activations",
        "must not repeat a choice, got ['relu', 'relu']",
    ),
    bad(
        {"nas.space.dropouts": [0.0, 1.0]},
        "nas.space.dropouts[1]",
        "must be a non-empty list of numbers in [0, 1), got 1.0",
    ),
    bad(
        {"nas.space.batch_norm": ["yes"]},
        "nas.space.batch_norm[0]",
        "must be a non-empty list of true/false, got 'yes'",
    ),
    bad(
        {"nas.reward.target_params": 0},
        "nas.reward.target_params",
        "must be null (reward = val accuracy) or an integer > 0, got 0",
    ),
    bad({"nas.reward.weight": 0.5}, "nas.reward.weight", "must be a number ≤ 0, got 0.5"),
    bad(
        {"nas.rl.controller": "gru"},
        "nas.rl.controller",
        "must be one of 'lstm', 'independent', got 'gru'",
    ),
    bad(
        {"nas.rl.children_per_update": 20},
        "nas.rl.children_per_update",
        "must be ≤ nas.budget (6), got 20",
    ),
    bad({"nas.meta.transfer": "yes"}, "nas.meta.transfer", "must be true or false, got 'yes'"),
    bad(
        {"nas.meta.synthetic_tasks": -1},
        "nas.meta.synthetic_tasks",
        "must be an integer ≥ 0, got -1",
    ),
    bad(
        {"nas.evolution": {}},
        "nas.evolution",
        "unknown key in nas; allowed keys are budget, epoch_budget, fidelity, fit, final_fit, include_baseline, space, reward, rl, meta",
    ),
    # --- compress ------------------------------------------------------------------------------
    bad(
        {"compress.prune.sparsities": [0.5, 1.0]},
        "compress.prune.sparsities[1]",
        "must be a list of numbers ≥ 0 and < 1, got 1.0",
    ),
    bad(
        {"compress.prune.sparsities": []},
        "compress.prune.sparsities",
        "must be a list of numbers ≥ 0 and < 1, got []",
    ),
    bad(
        {"compress.prune.criteria": ["random"]},
        "compress.prune.criteria[0]",
        "must be a list of at least 1 of 'magnitude', 'gradient', 'taylor', got 'random'",
    ),
    bad(
        {"compress.prune.scope": "local"},
        "compress.prune.scope",
        "must be one of 'per_layer', 'global', got 'local'",
    ),
    bad(
        {"compress.prune.structured.fractions": [1.0]},
        "compress.prune.structured.fractions[0]",
        "must be a list of numbers > 0 and < 1, got 1.0",
    ),
    bad(
        {"compress.quantize.ptq.bits": [1, 4]},
        "compress.quantize.ptq.bits[0]",
        "must be a list of integers from 2 to 16, got 1",
    ),
    bad(
        {"compress.quantize.tflite.modes": ["int4"]},
        "compress.quantize.tflite.modes[0]",
        "must be a list of any of 'dynamic_int8', 'float16', 'full_int8', got 'int4'",
    ),
    bad(
        {"compress.quantize.qat.granularity": "per_row"},
        "compress.quantize.qat.granularity",
        "must be one of 'per_tensor', 'per_channel', got 'per_row'",
    ),
    bad(
        {"compress.lowrank.criterion": "rank", "compress.lowrank.values": [8, 0]},
        "compress.lowrank.values[1]",
        "must be an integer rank ≥ 1 when compress.lowrank.criterion is 'rank', got 0",
        id="lowrank-rank-0",
    ),
    bad(
        {"compress.lowrank.values": [1.5]},
        "compress.lowrank.values[0]",
        "must be a number > 0 and ≤ 1 when compress.lowrank.criterion is 'rank_ratio', got 1.5",
    ),
    bad({"compress.lowrank.values": ["0.5"]}, "compress.lowrank.values[0]", "got '0.5'"),
    bad(
        {"compress.combined.bits": [32]},
        "compress.combined.bits[0]",
        "must be a list of integers from 2 to 16, got 32",
    ),
    bad(
        {"compress.auto.target_ratio": 0.5},
        "compress.auto.target_ratio",
        "must be a number > 1 (float32 weight bytes / artifact bytes), or null, got 0.5",
    ),
    bad(
        {"compress.auto.bits": [4, 1]},
        "compress.auto.bits",
        "must be [low, high] with low ≤ high, got [4, 1]",
    ),
    bad(
        {"compress.auto.algorithm": "pso", "compress.auto.algorithm_settings": {"particles": 40}},
        "compress.auto.algorithm_settings.particles",
        "must be ≤ compress.auto.budget (8), got 40",
    ),
    bad(
        {"compress.fine_tune.learning_rate": -1},
        "compress.fine_tune.learning_rate",
        "must be a number > 0 and ≤ 10, got -1",
    ),
    bad(
        {"compress.distill": {}},
        "compress.distill",
        "unknown key in compress; allowed keys are fine_tune, prune, quantize, lowrank, combined",
    ),
    # --- evaluate ------------------------------------------------------------------------------
    bad({"evaluate.families": []}, "evaluate.families", "must be null or a non-empty list, got []"),
    bad(
        {"evaluate.families": ["compress", "search"]},
        "evaluate.families",
        "must include 'train' (the baseline that deltas and compression ratios are relative to), got ['compress', 'search']",
    ),
    bad(
        {"evaluate.families": ["train", "train"]},
        "evaluate.families",
        "must not repeat a name, got ['train', 'train']",
    ),
    bad(
        {"evaluate.families": ["train", "models/search"]},
        "evaluate.families[1]",
        "must be a folder name under models/, got 'models/search'",
    ),
    bad(
        {"evaluate.within_pp": 101}, "evaluate.within_pp", "must be a number ≥ 0 and ≤ 100, got 101"
    ),
    bad(
        {"evaluate.size": "bytes"},
        "evaluate.size",
        "must be one of 'artifact_bytes', 'file_bytes', 'gzip_bytes', 'artifact_gzip_bytes', got 'bytes'",
    ),
    bad({"evaluate.measure.runs": 0}, "evaluate.measure.runs", "must be an integer ≥ 1, got 0"),
    bad(
        {"evaluate.latency_runs": 5},
        "evaluate.latency_runs",
        "unknown key in evaluate; allowed keys are families, within_pp, size, language, measure",
    ),
    # --- execution -----------------------------------------------------------------------------
    bad(
        {"execution.backend": "ray"},
        "execution.backend",
        "must be one of 'serial', 'dask', got 'ray'",
    ),
    bad(
        {"execution.address": "tcp://10.0.0.5:8786"},
        "execution.address",
        "is only used with execution.backend 'dask' (backend is 'serial'); set backend: dask or address: null, got 'tcp://10.0.0.5:8786'",
        id="address-with-serial",
    ),
    bad(
        {"execution.backend": "dask", "execution.address": "10.0.0.5:8786"},
        "execution.address",
        "must be a Dask scheduler address like 'tcp://host:8786' (scheme tcp, tls, ucx, ws or wss), got '10.0.0.5:8786'",
        id="address-without-scheme",
    ),
    bad({"execution.workers": 0}, "execution.workers", "must be an integer ≥ 1, got 0"),
    bad(
        {"execution.trial_timeout": 0},
        "execution.trial_timeout",
        "must be null (no limit) or seconds > 0",
    ),
    bad({"execution.trial_timeout": "10"}, "execution.trial_timeout", "got '10'"),
    bad({"execution.trial_timeout": INF}, "execution.trial_timeout", "got inf"),
    bad(
        {"execution.gpus": 1},
        "execution.gpus",
        "unknown key in execution; allowed keys are backend, workers, address, trial_timeout",
    ),
    # --- several problems at once: one line each --------------------------------------------
    pytest.param(
        {"train.epochs": 0, "train.batch_size": -1, "search.budget": 0, "nas.space.units": []},
        [
            ("train.epochs", "got 0"),
            ("train.batch_size", "got -1"),
            ("search.budget", "got 0"),
            ("nas.space.units", "got []"),
        ],
        id="four-problems",
    ),
]

# Not a valid params.yaml at all: (id, file content or None for a missing file, message fragment)
BAD_FILES = [
    ("missing", None, "params.yaml: file not found (run stages from the project root)"),
    (
        "not-yaml",
        "train: [epochs: 3\n",
        "params.yaml: not valid YAML: while parsing a flow sequence",
    ),
    ("a-list", "- 1\n- 2\n", "params.yaml: must be a mapping of sections, got list"),
    (
        "duplicate-key",
        "train:\n  epochs: 3\n  epochs: 50\n",
        "params.yaml: not valid YAML: duplicate key 'epochs' (the last one would silently win)",
    ),
    ("not-utf8", b"train:\n  epochs: \xff\xfe\n", "params.yaml: not UTF-8 text"),
]


class WorkStarted(BaseException):
    """Raised by the tripwires: a stage did real work before it had checked its input."""


# What a stage must not reach with bad params: reading data or models, opening MLflow.
TRIPWIRES = [
    ("leanml.tracking", "connect"),
    ("leanml.tracking", "stage_run"),
    ("leanml.data", "load"),
    ("leanml.data", "load_prepared"),
    ("leanml.models", "load"),
    ("leanml.report.convergence", "convergence_report"),
]


def _set(tree: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        if not isinstance(tree.get(part), dict):
            tree[part] = {}
        tree = tree[part]
    tree[last] = value


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Size and mtime of every file of the project but params.yaml (which the tests write)."""
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            path = Path(folder, name)
            if path != root / "params.yaml":
                stat = path.stat()
                out[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The stages and params.yaml, plus a stale output of every kind a stage could overwrite."""
    root = copy_project(tmp_path_factory.mktemp("fuzz"), names=("stages", "params.yaml"))
    for name in (
        "data/prepared/card.json",
        "models/train/model.keras",
        "models/search/ga/checkpoint.jsonl",
        "reports/train/metrics.json",
        "reports/search/ga/convergence.csv",
        "reports/nas/rl/convergence.csv",
        "reports/compress/prune/results.csv",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("stale\n")
    return root


@pytest.fixture
def in_project(project, monkeypatch):
    """cwd and LEANML_ROOT in the project, the tripwires armed, params.yaml restored after."""
    import leanml.models  # noqa: F401  (imported so that its tripwire can be set)
    import leanml.report.convergence  # noqa: F401

    monkeypatch.chdir(project)
    monkeypatch.setenv("LEANML_ROOT", str(project))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for module, name in TRIPWIRES:

        def tripwire(*args, _where=f"{module}.{name}", **kwargs):
            raise WorkStarted(_where)

        monkeypatch.setattr(f"{module}.{name}", tripwire)
    original = (project / "params.yaml").read_bytes()
    yield project
    (project / "params.yaml").write_bytes(original)


def run_stage(root: Path, argv: list[str]) -> tuple[int | str, str]:
    """Run `python <argv>` in-process in `root`: (exit code, stderr). A tripwire gives
    `work:<function>` instead of an exit code."""
    script = root / argv[0]
    saved_argv, saved_handler = sys.argv, signal.getsignal(signal.SIGTERM)
    sys.argv = [str(script), *argv[1:]]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            runpy.run_path(str(script), run_name="__main__")
        code: int | str = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except WorkStarted as exc:
        code = f"work:{exc}"
    except Exception as exc:  # what a user would see as a traceback
        code = f"crash:{type(exc).__name__}"
        err.write(f"Traceback (in-process): {type(exc).__name__}: {exc}\n")
    finally:
        sys.argv = saved_argv
        signal.signal(signal.SIGTERM, saved_handler)  # stage.run installs its own
    return code, err.getvalue()


def _problems(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "params.yaml: " in line]


def check_rejected(root: Path, argv: list[str], expected: list[tuple[str, str]]) -> list[str]:
    """Run one stage on the current params.yaml; return what is wrong with how it refused."""
    before = _snapshot(root)
    code, err = run_stage(root, argv)
    wrong = []
    if code != 2:
        wrong.append(f"exit {code}, not 2")
    if "Traceback" in err:
        wrong.append("traceback on stderr")
    if SECRET in err:
        wrong.append("a password printed")
    lines = _problems(err)
    if len(lines) != len(expected):
        wrong.append(f"{len(lines)} problem lines, expected {len(expected)}: {lines}")
    if lines and ": error: params.yaml: " not in lines[0]:
        wrong.append(f"first line does not say '<stage>: error: params.yaml: ': {lines[0]!r}")
    for key, fragment in expected:
        if not any(f"params.yaml: {key}: " in line and fragment in line for line in lines):
            wrong.append(f"no line for {key!r} with {fragment!r} in {lines}")
    for line in lines:
        message = line.split("params.yaml: ", 1)[1]
        says_value = any(w in message for w in ("got ", "unknown ", " is not "))
        says_allowed = any(
            w in message
            for w in (
                "must",
                "allowed",
                "one of",
                "use ",
                "names are",
                "required",
                "remove",
                "set ",
            )
        )
        if not (says_value and says_allowed):
            wrong.append(f"does not say what was given and what is allowed: {line!r}")
    if _snapshot(root) != before:
        wrong.append("project files created or modified")
    return wrong


@pytest.mark.parametrize(("edits", "expected"), BAD_PARAMS)
def test_bad_params_through_every_stage(in_project, edits, expected):
    cfg = yaml.safe_load((in_project / "params.yaml").read_text())
    for dotted, value in edits.items():
        _set(cfg, dotted, value)
    (in_project / "params.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    failures = {
        name: wrong
        for name, argv in ENTRY_POINTS
        if (wrong := check_rejected(in_project, argv, expected))
    }
    assert not failures, failures


@pytest.mark.parametrize(
    ("content", "fragment"), [pytest.param(c, f, id=i) for i, c, f in BAD_FILES]
)
def test_unreadable_params_file_through_every_stage(in_project, content, fragment):
    target = in_project / "params.yaml"
    if content is None:
        target.unlink()
    elif isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content)
    for name, argv in ENTRY_POINTS:
        before = _snapshot(in_project)
        code, err = run_stage(in_project, argv)
        assert code == 2, (name, code, err)
        assert fragment in err and "Traceback" not in err, (name, err)
        assert err.startswith(f"{name.split('@')[0]}") and ": error: " in err, (name, err)
        assert _snapshot(in_project) == before, name


def test_table_size():
    """The fuzz table is as big as RELIABILITY.md says (update both together)."""
    assert len(BAD_PARAMS) >= 50
    assert len(ENTRY_POINTS) == 22  # prepare, train, compress@×6, compress_report, search@×5,
    # search_report, nas_metadata, nas@×4, nas_report, evaluate


COMPRESS = "|".join(members("compress"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["stages/search.py", "nope"],
            "search: algorithm: must be one of ga, pso, bayes, random, tpe, got 'nope'",
        ),
        (
            ["stages/search.py"],
            "search: algorithm: must be one of ga, pso, bayes, random, tpe, got ''",
        ),
        (
            ["stages/nas.py", "nope"],
            "nas: strategy: must be one of rl, meta, random, enas, got 'nope'",
        ),
        (["stages/nas.py"], "nas: strategy: must be one of rl, meta, random, enas, got ''"),
        (
            ["stages/compress.py", "nope"],
            "compress: unknown method 'nope'; registered methods are prune, quantize, lowrank, combined",
        ),
        (["stages/compress.py"], f"usage: python stages/compress.py <{COMPRESS}> [<source>]"),
        (
            ["stages/compress.py", "prune", "quantize"],  # the second: a source (compress.sources)
            f"usage: python stages/compress.py <{COMPRESS}> [<source>]; <source> must be "
            "'search/<algo>'",
        ),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_arguments(in_project, argv, message):
    before = _snapshot(in_project)
    code, err = run_stage(in_project, argv)
    assert code == 2 and message in err and "Traceback" not in err, (code, err)
    assert len(err.strip().splitlines()) == 1
    assert _snapshot(in_project) == before


@pytest.mark.slow
def test_real_processes(tmp_path):
    """One real subprocess per stage, each with a different bad config, all at once."""
    cases = [p.values for p in BAD_PARAMS[:: max(1, len(BAD_PARAMS) // len(ONE_PER_STAGE))]]
    running = []
    for (name, argv), (edits, expected) in zip(ONE_PER_STAGE, cases, strict=False):
        root = copy_project(tmp_path / name, names=("stages", "params.yaml"))
        cfg = yaml.safe_load((root / "params.yaml").read_text())
        for dotted, value in edits.items():
            _set(cfg, dotted, value)
        (root / "params.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
        proc = subprocess.Popen(
            [sys.executable, *argv],
            cwd=root,
            env=project_env({"LEANML_ROOT": str(root)}),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        running.append((name, root, proc, expected))
    assert len(running) == len(ONE_PER_STAGE) == 10
    for name, root, proc, expected in running:
        _, err = proc.communicate(timeout=300)
        lines = _problems(err)
        assert proc.returncode == 2, (name, err)
        assert "Traceback" not in err, (name, err)
        assert len(lines) == len(expected), (name, lines)
        key, fragment = expected[0]
        assert f"params.yaml: {key}: " in lines[0] and fragment in lines[0], (name, lines)
        assert sorted(p.name for p in root.iterdir()) == ["params.yaml", "stages"], name


# --- faulty files between stages ----------------------------------------------------------------


@pytest.fixture
def fresh_project(tmp_path, monkeypatch):
    """A project of its own (stages, params.yaml); MLflow tripwired unless a test re-arms it."""
    root = copy_project(tmp_path / "project", names=("stages", "params.yaml"))
    monkeypatch.chdir(root)
    monkeypatch.setenv("LEANML_ROOT", str(root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for name in ("connect", "stage_run"):

        def tripwire(*args, _where=f"leanml.tracking.{name}", **kwargs):
            raise WorkStarted(_where)

        monkeypatch.setattr(f"leanml.tracking.{name}", tripwire)
    return root


def _edit_params(root: Path, edits: dict) -> None:
    cfg = yaml.safe_load((root / "params.yaml").read_text())
    for dotted, value in edits.items():
        _set(cfg, dotted, value)
    (root / "params.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


_X, _Y = np.random.default_rng(0).random((60, 4)), np.arange(60) % 3

DATA_FAULTS = [
    ("truncated", _npz(x=_X, y=_Y)[:300], "not a readable .npz file"),
    (
        "random-bytes",
        np.random.default_rng(1).bytes(400),
        "not a readable .npz file (not a zip archive)",
    ),
    (
        "zip-header-only",
        b"PK\x03\x04" + np.random.default_rng(2).bytes(400),
        "not a readable .npz file (BadZipFile",
    ),
    (
        "pickled-objects",
        _npz(x=np.array([{"a": 1}] * 60, dtype=object), y=_Y),
        "holds pickled Python objects, which are refused for safety",
    ),
    ("no-y", _npz(x=_X), "needs arrays 'x' and 'y', missing ['y']"),
    (
        "x-1d",
        _npz(x=_X[:, 0], y=_Y),
        "x must have shape (n, features), (n, H, W) or (n, H, W, C), got (60,)",
    ),
    ("x-5d", _npz(x=_X.reshape(60, 1, 2, 2, 1), y=_Y), "got (60, 1, 2, 2, 1)"),
    (
        "y-wrong-length",
        _npz(x=_X, y=_Y[:50]),
        "y must have shape (n,) with n = len(x) = 60, got (50,)",
    ),
    ("nan-feature", _npz(x=np.where(_X > 0.99, np.nan, _X), y=_Y), "NaN or infinite value(s)"),
    ("inf-feature", _npz(x=np.where(_X > 0.99, np.inf, _X), y=_Y), "NaN or infinite value(s)"),
    ("nan-label", _npz(x=_X, y=np.where(_Y == 2, np.nan, _Y)), "NaN or infinite"),
    (
        "gappy-labels",
        _npz(x=_X, y=_Y * 2),
        "must use every label 0..K-1 with K ≥ 2, found labels [0, 2, 4]",
    ),
    ("empty", _npz(x=_X[:0], y=_Y[:0]), "holds no samples"),
    (
        "class-too-small",
        _npz(x=_X, y=np.r_[np.zeros(57, int), np.ones(3, int)]),
        "class 1 has 3 sample(s)",
    ),
]


@pytest.mark.parametrize(
    ("content", "fragment"), [pytest.param(c, f, id=i) for i, c, f in DATA_FAULTS]
)
def test_data_faults_through_prepare(fresh_project, content, fragment):
    """A bad dataset stops prepare before an MLflow run is opened, naming the file and problem."""
    (fresh_project / "inputs").mkdir()
    (fresh_project / "inputs/mine.npz").write_bytes(content)
    _edit_params(fresh_project, {"base.dataset": "npz", "base.npz_path": "inputs/mine.npz"})
    code, err = run_stage(fresh_project, ["stages/prepare.py"])
    assert code == 2 and "Traceback" not in err, (code, err)
    assert err.startswith("prepare: error: ") and fragment in err, err
    assert "inputs/mine.npz" in err or "class 1" in err, err  # the split names the class
    assert len(err.strip().splitlines()) == 1
    assert not (fresh_project / "data").exists()


def _tiny_prepared(root: Path, tiny_splits) -> None:
    from leanml import data, paths

    data.save(tiny_splits, paths.load(root).prepare, data.card(tiny_splits, "digits", 0))


def _small_model(tiny_splits):
    from leanml import models
    from leanml.params import ModelSpec

    spec = ModelSpec.model_validate({"mlp": {"hidden_units": [4]}})
    return models.build(spec, tiny_splits.input_shape, 10)


def _model_bytes(tiny_splits, tmp_path) -> bytes:
    path = tmp_path / "good.keras"
    _small_model(tiny_splits).save(path)
    return path.read_bytes()


@pytest.mark.parametrize(
    "fault", ["missing", "truncated", "random-bytes", "zip-not-keras", "lambda"]
)
def test_model_faults_through_compress(fresh_project, tiny_splits, tmp_path, fault):
    """compress reads train's model: missing or corrupt, it names the file and the train stage."""
    import zipfile

    import keras

    _tiny_prepared(fresh_project, tiny_splits)
    target = fresh_project / "models/train/model.keras"
    target.parent.mkdir(parents=True)
    if fault == "truncated":
        target.write_bytes(_model_bytes(tiny_splits, tmp_path)[:2000])
    elif fault == "random-bytes":
        target.write_bytes(np.random.default_rng(0).bytes(3000))
    elif fault == "zip-not-keras":
        with zipfile.ZipFile(target, "w") as archive:
            archive.writestr("notes.txt", "not a model")
    elif fault == "lambda":
        keras.Sequential(
            [keras.Input((8, 8, 1)), keras.layers.Lambda(lambda x: x), keras.layers.Flatten()]
        ).save(target)
    expected = {
        "missing": "models/train/model.keras: missing; it is written by the train stage: run `dvc repro train` first",
        "truncated": "models/train/model.keras: corrupt or truncated (not a .keras zip archive); rerun the train stage that writes it: `dvc repro -f train`",
        "random-bytes": "models/train/model.keras: corrupt or truncated",
        "zip-not-keras": "models/train/model.keras: not a loadable Keras model",
        "lambda": "models/train/model.keras: not a loadable Keras model (refused by safe_mode: it holds Python code, e.g. a Lambda layer)",
    }[fault]
    code, err = run_stage(fresh_project, ["stages/compress.py", "prune"])
    assert code == 2 and "Traceback" not in err, (code, err)
    assert err.startswith("compress@prune: error: ") and expected in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (fresh_project / "models/compress").exists()


def test_model_faults_through_evaluate(fresh_project, tiny_splits, tmp_path, monkeypatch):
    """evaluate skips a corrupt candidate naming its file and producing stage; with nothing left
    to score it stops with exit 2. The run is real (a tmp MLflow store) and ends FAILED."""
    monkeypatch.setattr("leanml.tracking.connect", _REAL_CONNECT)
    monkeypatch.setattr("leanml.tracking.stage_run", _REAL_STAGE_RUN)
    monkeypatch.setenv("LEANML_PIPELINE", f"fuzz-{tmp_path.name}")
    _tiny_prepared(fresh_project, tiny_splits)
    good = _model_bytes(tiny_splits, tmp_path)
    (fresh_project / "models/train").mkdir(parents=True)
    (fresh_project / "models/train/model.keras").write_bytes(good[: len(good) // 2])
    (fresh_project / "models/search/ga").mkdir(parents=True)
    (fresh_project / "models/search/ga/best.keras").write_bytes(b"PK\x03\x04 not a model")
    code, err = run_stage(fresh_project, ["stages/evaluate.py"])
    assert code == 2 and "Traceback" not in err, (code, err)
    assert (
        "skipped train: models/train/model.keras: corrupt or truncated (not a .keras zip "
        "archive); rerun the train stage that writes it: `dvc repro -f train`" in err
    )
    assert "skipped search/ga: models/search/ga/best.keras: corrupt or truncated" in err
    assert "`dvc repro -f search@ga`" in err
    assert "evaluate: error: evaluate: no candidate model could be scored" in err
    assert not (fresh_project / "reports/evaluate").exists()
    runs = mlflow_helpers.runs(yaml_params(fresh_project).base.tracking)
    assert {r["name"]: r["status"] for r in runs if r["parent"]} == {"evaluate": "FAILED"}


def yaml_params(root: Path):
    from leanml import params

    return params.load(root / "params.yaml")


# --- an unusable tracking store: the stage stops before training --------------------------------


@pytest.mark.parametrize("store", ["unreachable-server", "read-only-sqlite"])
def test_unusable_store_stops_train_before_training(
    fresh_project, tiny_splits, monkeypatch, store, closed_port
):
    import subprocess as sp

    monkeypatch.setattr("leanml.tracking.connect", _REAL_CONNECT)
    monkeypatch.setattr("leanml.tracking.stage_run", _REAL_STAGE_RUN)

    def no_training(*args, **kwargs):
        raise WorkStarted("leanml.train.train_and_score")

    monkeypatch.setattr("leanml.train.train_and_score", no_training)
    _tiny_prepared(fresh_project, tiny_splits)
    db = fresh_project / "store.db"
    if store == "unreachable-server":
        uri = f"http://127.0.0.1:{closed_port}"
        expected = f"tracking: MLflow store {uri} is unreachable or unusable"
    else:
        uri = f"sqlite:///{db}"
        db.write_bytes(b"")
        db.chmod(0o444)
        if os.geteuid() == 0:  # root writes read-only files: make it immutable instead
            if sp.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
                pytest.skip("running as root without chattr: cannot make a file read-only")
        expected = f"tracking: cannot write the MLflow store {uri} (the file is read-only)"
    _edit_params(fresh_project, {"base.tracking.uri": uri})
    try:
        code, err = run_stage(fresh_project, ["stages/train.py"])
    finally:
        if store != "unreachable-server" and os.geteuid() == 0:
            sp.run(["chattr", "-i", str(db)], capture_output=True)
    assert code == 2 and "Traceback" not in err, (code, err)
    assert err.startswith("train: error: ") and expected in err, err
    assert "base.tracking.uri" in err and "MLFLOW_TRACKING_URI" in err  # where to point instead
    assert not (fresh_project / "models").exists()
