"""End to end on tabular data: a user's .npz of feature vectors through every stage.

The e2e project's tiny params (tests/e2e.py) with the dataset swapped for scikit-learn's bundled
wine table (178 samples, 13 features, 3 classes; no download) and two models per search and
NAS stage; NAS keeps its default space (kinds: [dense, conv]). Every stage runs in DVC's order
with DVC's own commands, in forked children of one process that imported TensorFlow once
(`e2e.start_pipeline`, as the determinism test's twin): a real `dvc repro` costs ~6 s of
imports per stage more (19 stages). `dvc commit` then checks every output dvc.yaml declares
exists, and `dvc status` that nothing is left to run. The NAS space leaves conv layers out with
one line, and no third-party warning wall reaches the output.
"""

import csv
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

from leanml.paths import members
from tests import e2e
from tests.conftest import project_env

pytestmark = pytest.mark.slow


def _set_params(root, update) -> None:
    path = root / "params.yaml"
    cfg = yaml.safe_load(path.read_text())
    update(cfg)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def _tabular(cfg) -> None:
    cfg["base"]["dataset"] = "npz"
    cfg["base"]["npz_path"] = "inputs/wine.npz"


def _two_models(cfg) -> None:
    """Two models per search/NAS stage (the baseline and one proposal), one epoch each."""
    cfg["search"].update(budget=2, final_fit={"epochs": 1, "early_stopping_patience": 0})
    cfg["search"]["fidelity"]["kind"] = "none"
    cfg["search"]["fit"]["epochs"] = 1
    cfg["compress"]["auto"].update(e2e.COMPRESS_TINY["auto"])  # its search: two trials
    cfg["nas"].update(budget=2, final_fit={"epochs": 1, "early_stopping_patience": 0})
    cfg["nas"]["fit"]["epochs"] = 1
    cfg["nas"]["enas"].update(updates=10, warmup_steps=10, candidates=5)


def test_tabular_npz_runs_the_whole_pipeline_on_default_params(tmp_path):
    from sklearn.datasets import load_wine

    root = e2e.make_project(tmp_path / "project")
    wine = load_wine()
    np.savez(root / "inputs" / "wine.npz", x=wine.data, y=wine.target)
    _set_params(root, _tabular)
    _set_params(root, _two_models)
    assert yaml.safe_load((root / "params.yaml").read_text())["nas"]["space"]["kinds"] == [
        "dense",
        "conv",
    ]  # the default: conv is asked for, and must be left out here

    log = tmp_path / "pipeline.log"
    code = e2e.start_pipeline(root, "1", log).wait(timeout=900)
    out = log.read_text()
    assert code == 0, out[-6000:]

    stages = {"prepare", "train", "nas_metadata", "compress_report", "search_report"}
    stages |= {"nas_report", "evaluate"}
    for family in ("compress", "search", "nas"):
        stages |= {f"{family}@{m}" for m in members(family)}
    assert set(re.findall(r"^(\S+): [0-9.]+ s$", out, re.M)) == stages  # each ran, exit 0
    e2e.sh(root, "dvc", "commit", "-f", "-q")  # fails on any declared output missing
    assert "up to date" in e2e.sh(root, "dvc", "status")
    card = json.loads((root / "data/prepared/card.json").read_text())
    assert card["input_shape"] == [13]
    for family in ("search", "nas"):
        for item in members(family):
            assert json.loads((root / f"reports/{family}/{item}/metrics.json").read_text())
            assert (root / f"models/{family}/{item}/best.keras").stat().st_size > 0
    for method in members("compress"):
        assert json.loads((root / f"reports/compress/{method}/metrics.json").read_text())
        assert any((root / f"models/compress/{method}").iterdir())
    # conv left out of every NAS stage's space, said once per stage, recorded with the winner
    notice = (
        "nas: the data is not images (samples of shape (13,)): conv layers left out of the "
        "space; kinds: [dense]"
    )
    assert out.count(notice) == len(members("nas"))
    for strategy in members("nas"):
        best = json.loads((root / f"reports/nas/{strategy}/best.json").read_text())
        assert best["space_kinds"] == ["dense"] and "conv" not in best["architecture"]
    with (root / "reports/evaluate/leaderboard.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {r["family"] for r in rows} == {"train", "compress", "search", "nas"}
    # no third-party warning wall (ConvergenceWarning, UserWarning, TensorFlow's retracing
    # notice ...) and no traceback in what the stages printed
    walls = re.findall(r"\w+Warning\b|retracing|Traceback", out)
    assert not walls, f"{walls[:5]} in:\n{out[-4000:]}"

    # conv alone on this data stays an error, before TensorFlow is imported
    _set_params(root, lambda cfg: cfg["nas"]["space"].update(kinds=["conv"]))
    done = subprocess.run(
        [sys.executable, "stages/nas.py", "random"],
        cwd=root,
        capture_output=True,
        text=True,
        env=project_env({"LEANML_ROOT": str(root), "PYTHONPATH": str(root)}),
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "nas.space.kinds: 'conv' needs image data" in done.stderr
    assert "(13,): use kinds: [dense]" in done.stderr
