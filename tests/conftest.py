"""Shared fixtures: fixed seeds, tiny real data, a real temporary MLflow sqlite store."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
# a metric name outside leanml/glossary.py fails the test that logs it (users get a warning)
os.environ["LEANML_STRICT_GLOSSARY"] = "1"

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)


@pytest.fixture(autouse=True)
def _mlflow_global_state():
    """Restore MLflow's process-global state after each test: `mlflow.set_tracking_uri` (called
    by `tracking.connect`) also exports MLFLOW_TRACKING_URI, and `set_experiment` exports
    MLFLOW_EXPERIMENT_ID, so without this a store of one test leaks into the next ones."""
    env = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
    saved = _mlflow_state()
    yield
    if "mlflow" in sys.modules:  # only if some test imported it: no import cost otherwise
        import mlflow
        from mlflow.tracking import fluent

        with contextlib.suppress(Exception):  # a run left open by a failed test
            while mlflow.active_run() is not None:
                mlflow.end_run("KILLED")
        uri, experiment_id = saved or (None, None)
        mlflow.set_tracking_uri(uri)
        fluent._active_experiment_id = experiment_id
    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        if key not in env:
            del os.environ[key]
    os.environ.update(env)


def _mlflow_state() -> tuple[str | None, str | None] | None:
    """(tracking URI as set, active experiment id) if mlflow is imported, without resolving
    defaults (`mlflow.get_tracking_uri()` would turn "unset" into a path)."""
    if "mlflow" not in sys.modules:
        return None
    from mlflow.tracking import fluent
    from mlflow.tracking._tracking_service import utils

    return utils._tracking_uri, fluent._active_experiment_id


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port where nothing listens until the test ends: the socket stays bound (no
    other process can take the port) but never listens, so connecting is refused at once.
    Picking a free port and closing it first would race with anything that binds meanwhile."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture(scope="session")
def digits_splits():
    """The real digits data, split as the prepare stage does."""
    from leanml import data

    x, y = data.load("digits")
    return data.split(x, y, 0.15, 0.15, seed=0)


@pytest.fixture(scope="session")
def tiny_splits(digits_splits):
    """A few hundred digits samples: enough to learn something in one or two epochs."""
    from leanml.data import Split, Splits

    def head(part, n):
        return Split(part.x[:n], part.y[:n])

    return Splits(
        head(digits_splits.train, 300), head(digits_splits.val, 120), head(digits_splits.test, 120)
    )


@pytest.fixture
def tracking_cfg(tmp_path, monkeypatch):
    """A Tracking section pointing at a fresh sqlite store in tmp_path."""
    from leanml.params import Tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("LEANML_PIPELINE", f"test-{tmp_path.name}")
    monkeypatch.setenv("LEANML_ROOT", str(tmp_path))
    return Tracking(uri=None, experiment="test")


def copy_project(target: Path, names=("stages", "leanml", "params.yaml")) -> Path:
    """Copy parts of the project (no caches) into `target` for a subprocess to run in."""
    import shutil

    for name in names:
        src, dst = ROOT / name, target / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dst)
    return target


def project_env(extra: dict | None = None) -> dict:
    """Environment for subprocesses: this venv first on PATH, quiet TF, no inherited store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_", "LEANML_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"})
    env["LEANML_STRICT_GLOSSARY"] = "1"  # every stage's metric names, in every subprocess
    env.update(extra or {})
    return env


E2E = "e2e_pipeline"


def _uses_e2e(item) -> bool:
    return E2E in getattr(item, "fixturenames", ())


@pytest.hookimpl(trylast=True)  # after `-m`/`-k` deselected what does not run
def pytest_collection_modifyitems(config, items):
    """The tests on the end-to-end pipeline run last (in their own order): the pipeline runs in
    the background from the session's first test on (`_e2e_background`), overlapping the rest of
    the suite, and is done, or nearly, when they start."""
    last = [item for item in items if _uses_e2e(item)]
    if last:
        items[:] = [item for item in items if not _uses_e2e(item)] + last


@pytest.fixture(scope="session", autouse=True)
def _e2e_background(request, tmp_path_factory):
    """Starts the end-to-end pipeline (tests/e2e.py) at the session's start if a test of this
    session uses it; nothing otherwise."""
    if not any(_uses_e2e(item) for item in request.session.items):
        yield None
        return
    from tests import e2e

    run = e2e.start(tmp_path_factory.mktemp("e2e"))
    yield run
    e2e.cleanup(run)


@pytest.fixture(scope="session")
def e2e_pipeline(_e2e_background):
    """The whole pipeline run end to end twice on tiny params (see tests/e2e.py): `root` after
    `dvc repro` (test_pipeline.py goes on in it) and its named experiment, and a twin run
    alongside it."""
    return _e2e_background.result()
