"""One metric vocabulary (leanml/glossary.py): what it accepts and refuses, and the README's
copy of it. (Every stage's real names are checked against it by the end-to-end pipeline test
and, in strict mode, by every test that runs a stage.)"""

from __future__ import annotations

import pytest

from leanml import glossary
from leanml.errors import LeanmlError
from tests.conftest import ROOT


def test_a_key_is_a_glossary_name_with_any_subject():
    keys = [
        "val_accuracy",
        "best.val_accuracy",
        "by_method.compress/prune.test_accuracy",
        "auto_r2.5.artifact_bytes",  # a subject with a dot in it
        "iris.best_score",
        "best.name",  # text, JSON only
        "best_val_accuracy",  # the old winner prefix
        "baseline.accuracy",  # which split?
        "params",  # a count, named like MLflow's params
    ]
    assert glossary.unknown(keys) == ["baseline.accuracy", "best_val_accuracy", "params"]


def test_table_columns_become_metrics_under_their_glossary_names():
    row = {"accuracy": 0.9, "params": 10, "nonzero_params": 4, "size_bytes": 80, "name": "x"}
    assert glossary.as_metrics(row, ["accuracy", "params", "nonzero_params", "size_bytes"]) == {
        "test_accuracy": 0.9,
        "n_params": 10,
        "n_nonzero_params": 4,
        "size_bytes": 80,
    }
    assert set(glossary.FROM_COLUMN.values()) <= set(glossary.NAMES)


def test_an_unknown_name_stops_in_strict_mode_and_warns_otherwise(monkeypatch, capsys):
    with pytest.raises(LeanmlError, match="train: metric names outside leanml/glossary.py: acc"):
        glossary.check({"acc": 1, "val_accuracy": 1}, "train")
    monkeypatch.delenv("LEANML_STRICT_GLOSSARY")
    glossary.check({"acc": 1}, "train")
    assert "warning: train: metric names outside leanml/glossary.py: acc" in capsys.readouterr().err


def test_the_readme_shows_the_glossary_as_the_code_defines_it():
    readme = (ROOT / "README.md").read_text()
    assert glossary.markdown() in readme, "README.md: paste glossary.markdown() into 'Metric names'"
    assert len(glossary.NAMES) == sum(len(g) for g in glossary.GROUPS.values())  # no name twice
