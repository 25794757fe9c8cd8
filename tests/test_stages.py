"""Stage entry points with bad input: one clear message, non-zero exit, no traceback, no outputs."""

import subprocess
import sys

import pytest
import yaml

from tests.conftest import copy_project, project_env

pytestmark = pytest.mark.slow  # every test here runs a stage in a subprocess


@pytest.fixture
def project(tmp_path):
    copy_project(tmp_path)
    return tmp_path


def _run(project, stage):
    return subprocess.run(
        [sys.executable, f"stages/{stage}.py"],
        cwd=project,
        capture_output=True,
        text=True,
        env=project_env({"LEANML_ROOT": str(project)}),
        timeout=300,
    )


def _set(project, section, key, value):
    path = project / "params.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg[section][key] = value
    path.write_text(yaml.safe_dump(cfg))


@pytest.mark.parametrize(
    ("stage", "section", "key", "value", "message"),
    [
        ("train", "train", "epochs", -3, "train.epochs: must be an integer ≥ 1, got -3"),
        ("prepare", "prepare", "test_fraction", 0, "prepare.test_fraction: must be a number > 0"),
        ("prepare", "base", "dataset", "imagenet", "base.dataset: must be one of"),
        ("train", "train", "optimiser", "adam", "train.optimiser: unknown key in train"),
    ],
)
def test_bad_params_stop_the_stage_cleanly(project, stage, section, key, value, message):
    _set(project, section, key, value)
    done = _run(project, stage)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (project / "data").exists() and not (project / "models").exists()
    assert not (project / "mlflow.db").exists()  # rejected before any run was opened


def test_bad_npz_names_the_file(project):
    (project / "inputs").mkdir()
    (project / "inputs" / "mine.npz").write_bytes(b"garbage")
    _set(project, "base", "dataset", "npz")
    _set(project, "base", "npz_path", "inputs/mine.npz")
    done = _run(project, "prepare")
    assert done.returncode == 2
    assert "inputs/mine.npz: not a readable .npz file" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (project / "data").exists()


def test_train_without_prepare_names_the_missing_stage(project):
    done = _run(project, "train")
    assert done.returncode == 2
    assert "written by the prepare stage" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("script", "item", "message"),
    [
        (
            "search",
            "cmaes",
            "search: algorithm: must be one of ga, pso, bayes, random, tpe, got 'cmaes'",
        ),
        ("nas", "darts", "nas: strategy: must be one of rl, meta, random, enas, got 'darts'"),
    ],
)
def test_unknown_item_names_the_choices(project, script, item, message):
    done = subprocess.run(
        [sys.executable, f"stages/{script}.py", item],
        cwd=project,
        capture_output=True,
        text=True,
        env=project_env({"LEANML_ROOT": str(project)}),
        timeout=300,
    )
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
