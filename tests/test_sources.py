"""compress.sources: the search/NAS winners compressed too (the seed document's §9.4 chain).

Fast: the params check, the val-only choice of a family's best on hand-made best.json files,
chain names in discovery, the DVC wiring of the compress_winner matrix, and a missing source
named by its stage. Slow: one end-to-end run on tiny sizes (train, search@random, quantize at
8 bits on the baseline and on search/random, evaluate) checking the chain on the leaderboard and
that a new source model makes only its own compress stage stale.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from leanml import params, paths, sources
from leanml.discover import discover
from leanml.errors import LeanmlError
from leanml.evaluate import producer
from tests.conftest import ROOT, copy_project, project_env


@pytest.mark.parametrize(
    ("listed", "expected"),
    [
        (
            ["nas/rl", "nas/foo"],
            "compress.sources[1]: must be 'search/<algo>' (ga, pso, bayes, random, tpe), "
            "'nas/<strategy>' (rl, meta, random, enas), or 'search' or 'nas' (the family's member "
            "whose kept model has the highest val accuracy), got 'nas/foo'",
        ),
        (["train"], "compress.sources[0]: 'train' is always compressed (the compress@<method>"),
        (["best_nas"], "compress.sources[0]: write 'nas' for the val-best of nas"),
        (["search", "search/ga", "search"], "compress.sources[2]: 'search' is listed twice"),
        (["search/rl"], "got 'search/rl'"),  # a NAS strategy is not a search algorithm
        ("nas", "compress.sources: "),  # a list, not one name
    ],
)
def test_a_bad_source_is_one_line_naming_the_key(listed, expected):
    with pytest.raises(LeanmlError) as err:
        params.parse({"compress": {"sources": listed}})
    text = str(err.value)
    assert expected in text and len(text.splitlines()) == 1, text


def test_the_listed_sources_are_kept_in_order():
    listed = ["nas", "search/tpe", "nas/meta", "search"]
    assert params.parse({"compress": {"sources": listed}}).compress.sources == listed
    assert params.Params().compress.sources == []  # default: the baseline only, no new stage


def _member(root: Path, member: str, best: dict | None, model: bool = True) -> None:
    family, _, item = member.partition("/")
    if best is not None:
        (root / "reports" / family / item).mkdir(parents=True)
        (root / "reports" / family / item / "best.json").write_text(json.dumps(best))
    if model:
        (root / "models" / family / item).mkdir(parents=True)
        (root / "models" / family / item / "best.keras").write_bytes(b"not read here")


def test_the_family_best_is_chosen_on_val_only_ties_by_name(tmp_path):
    """Higher val wins though the other member's test accuracy (a key the choice must never
    read) is higher; equal val goes to the first name in alphabetical order."""
    root = paths.load(tmp_path)
    _member(tmp_path, "nas/rl", {"val_accuracy": 0.90, "test_accuracy": 0.99})
    _member(tmp_path, "nas/meta", {"val_accuracy": 0.93, "test_accuracy": 0.50})
    _member(tmp_path, "nas/random", {"val_accuracy": 0.93})
    _member(tmp_path, "nas/enas", {"val_accuracy": 0.91})
    best = sources.resolve("nas", root)
    assert (best.member, best.val_accuracy) == ("nas/meta", 0.93)
    assert best.model == tmp_path / "models/nas/meta/best.keras"
    assert best.label == "nas/meta (best nas)"
    assert best.chain("prune/magnitude_s90") == "nas/meta (best nas) → prune/magnitude_s90"
    named = sources.resolve("nas/rl", root)
    assert (named.member, named.label, named.val_accuracy) == ("nas/rl", "nas/rl", 0.90)
    assert named.chain("prune") == "nas/rl → prune"
    # the baseline: its candidates keep their names (compress/prune/...), no chain
    assert sources.resolve("train", root).chain("prune/s50") == "prune/s50"

    (tmp_path / "reports/nas/random/best.json").write_text(json.dumps({"val_accuracy": 0.95}))
    assert sources.resolve("nas", root).member == "nas/random"


@pytest.mark.parametrize(
    ("listed", "missing", "stage"),
    [
        ("search/pso", "best.json", "search@pso"),  # never run
        ("search", "best.keras", "search@tpe"),  # one member of the family without its model
    ],
)
def test_a_missing_source_names_the_stage_that_writes_it(tmp_path, listed, missing, stage):
    for algo in paths.members("search"):
        if f"search@{algo}" != stage:
            _member(tmp_path, f"search/{algo}", {"val_accuracy": 0.5})
        elif missing == "best.keras":
            _member(tmp_path, f"search/{algo}", {"val_accuracy": 0.5}, model=False)
    with pytest.raises(LeanmlError) as err:
        sources.resolve(listed, paths.load(tmp_path))
    assert f"has no {missing}" in str(err.value)
    assert f"written by the {stage} stage: run `dvc repro {stage}` first" in str(err.value)


def test_discovery_names_a_compressed_winner_by_its_chain(tmp_path):
    for folder in ("train", "compress/prune", "compress/nas/prune", "compress/search/ga/prune"):
        (tmp_path / "models" / folder).mkdir(parents=True)
    (tmp_path / "models/train/model.keras").write_bytes(b"k")
    for folder in ("compress/prune", "compress/nas/prune", "compress/search/ga/prune"):
        (tmp_path / "models" / folder / "s50.keras").write_bytes(b"k")
        (tmp_path / "models" / folder / "s50.packed").write_bytes(b"")  # its smaller artifact
        (tmp_path / "reports" / folder).mkdir(parents=True)
        settings = {"columns": ["sparsity"], "variants": {"s50": {"sparsity": 0.5}}}
        (tmp_path / "reports" / folder / "settings.json").write_text(json.dumps(settings))
    label = {"label": "nas/rl (best nas)"}
    (tmp_path / "reports/compress/nas/prune/source.json").write_text(json.dumps(label))

    found = discover(tmp_path / "models", tmp_path / "reports", ["train", "compress"])
    by = {c.name: c for c in found.candidates}
    assert list(by) == [
        "train",
        "nas/rl (best nas) → prune/s50",
        "compress/prune/s50",  # the baseline's: named as before
        "search/ga → prune/s50",  # no source.json: the folder path names the source
    ]
    winner = by["nas/rl (best nas) → prune/s50"]
    assert (winner.family, winner.method, winner.variant, winner.source) == (
        "compress",
        "prune",
        "s50",
        "nas",
    )
    assert winner.setting == {"sparsity": 0.5} and winner.artifact.suffix == ".packed"
    assert producer(winner) == "compress_winner@nas-prune"  # the dvc.yaml stage name
    assert producer(by["compress/prune/s50"]) == "compress@prune"
    assert not found.size_only  # nothing below a source folder is mistaken for a lone file


def test_a_nas_chain_becomes_sequential_and_a_skip_stays_functional(tiny_splits):
    """NAS children are functional models; the compress methods take Sequential ones. A chain
    of layers is rebuilt as one (same layers, same weights, same predictions); a model with a
    skip connection is left as it is, for the methods to refuse by name."""
    import numpy as np
    from keras import Sequential

    from leanml.compress.base import as_sequential
    from leanml.nas.space import ArchSpace

    space = ArchSpace(params.Params().nas.space, image_input=True)
    layer = {"kind": "conv", "width": 8, "kernel": 3, "activation": "relu", "dropout": 0.2}
    arch = space.project([{**layer, "batch_norm": True, "skip": False}, {**layer, "kind": "dense"}])
    x = tiny_splits.test.x[:16]
    chain = space.build(arch, x.shape[1:], 10)
    sequential = as_sequential(chain)
    assert isinstance(sequential, Sequential) and not isinstance(chain, Sequential)
    assert [type(a) for a in sequential.layers] == [type(b) for b in chain.layers[1:]]
    np.testing.assert_array_equal(sequential.predict(x, verbose=0), chain.predict(x, verbose=0))
    assert as_sequential(sequential) is sequential  # the baseline: untouched

    skip = space.build(
        space.project([{**layer, "batch_norm": False, "skip": True}]), x.shape[1:], 10
    )
    assert as_sequential(skip) is skip


def _project_with_sources(tmp_path: Path, listed: list[str]) -> Path:
    root = copy_project(tmp_path, ["stages", "leanml", "params.yaml", "dvc.yaml"])
    cfg = yaml.safe_load((root / "params.yaml").read_text())
    cfg["compress"]["sources"] = listed
    (root / "params.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return root


def test_dvc_runs_every_method_on_every_listed_source_with_its_own_inputs(tmp_path):
    """The matrix: one stage per (source, method); deps are that source's folders only, so a
    change to another source's model leaves it alone; the code deps cover what it imports."""
    from dvc.repo import Repo

    from tests.test_deps import misses

    root = _project_with_sources(tmp_path, ["nas/rl", "search"])
    Repo.init(str(root), no_scm=True).close()
    repo = Repo(str(root))
    try:
        stages = {s.addressing.split(":")[-1]: s for s in repo.index.stages}
    finally:
        repo.close()
    methods = paths.members("compress")
    winners = sorted(name for name in stages if name.startswith("compress_winner@"))
    assert winners == sorted(
        f"compress_winner@{s}-{m}" for s in ("nas/rl", "search") for m in methods
    )
    assert {f"compress@{m}" for m in methods} <= set(stages)  # the baseline's, as before
    rl = stages["compress_winner@nas/rl-prune"]
    deps = {str(d.def_path) for d in rl.deps}
    assert {"models/nas/rl", "reports/nas/rl", "data/prepared", "leanml/sources.py"} <= deps
    assert not any(d.startswith(("models/search", "models/train")) for d in deps)
    assert {str(d.def_path) for d in stages["compress_winner@search-lowrank"].deps} >= {
        "models/search",  # the val-best of the family: every algorithm's model and best.json
        "reports/search",
    }
    assert {k for p in rl.params for k in p.params} == {
        "base.seed",
        "compress.fine_tune",
        "compress.prune",
    }
    outs = {str(o.def_path) for o in rl.outs}
    assert "models/compress/nas/rl/prune" in outs
    assert "reports/compress/nas/rl/prune/source.json" in outs
    assert rl.cmd == "python stages/compress.py prune nas/rl"
    assert [m for m in misses(root) if "compress_winner@" in m] == []


def test_the_default_adds_no_stage():
    from tests.test_deps import stages

    assert not [name for name in stages(ROOT) if name.startswith("compress_winner")]


def test_a_source_with_no_model_stops_the_stage_before_tensorflow(tmp_path):
    root = _project_with_sources(tmp_path, ["search/random"])
    done = subprocess.run(
        [sys.executable, "stages/compress.py", "quantize", "search/random"],
        cwd=root,
        capture_output=True,
        text=True,
        env=project_env({"LEANML_ROOT": str(root), "PYTHONPATH": str(root)}),
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("compress_winner@search/random-quantize: error: ")
    assert "written by the search@random stage: run `dvc repro search@random` first" in (
        done.stderr
    )
    # a source the params do not list is refused too (its stage would not exist)
    done = subprocess.run(
        [sys.executable, "stages/compress.py", "quantize", "nas/rl"],
        cwd=root,
        capture_output=True,
        text=True,
        env=project_env({"LEANML_ROOT": str(root), "PYTHONPATH": str(root)}),
        timeout=120,
    )
    assert done.returncode == 2 and "is not listed in compress.sources" in done.stderr


# Runs the given stage commands in forked children of one process that imported TensorFlow,
# Keras and MLflow once (as tests/e2e.py's DRIVER): the same stage code as under `dvc repro`.
DRIVER = """
import importlib, os, runpy, sys, time
import matplotlib
matplotlib.use("Agg")
for name in PRELOAD:
    importlib.import_module(name)
for argv in COMMANDS:
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            sys.argv = argv
            runpy.run_path(argv[0], run_name="__main__")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(f"{' '.join(argv)}: {time.perf_counter() - start:.1f} s", flush=True)
    if status != 0:
        sys.exit(f"{argv} failed ({status})")
"""
PRELOAD = ["tensorflow", "keras", "matplotlib.pyplot", "mlflow", "mlflow.keras", "leanml.compress"]
PRELOAD += ["leanml.compress.quantize", "leanml.search.random", "leanml.trials.study"]
PRELOAD += ["leanml.report.evaluate", "leanml.tracking"]


def _tiny(cfg: dict) -> None:
    """Seconds per stage: two one-epoch search models, 8-bit PTQ only, a short latency loop."""
    cfg["compress"]["sources"] = ["search/random"]
    cfg["compress"]["quantize"] = {
        "tflite": {"modes": []},
        "ptq": {"bits": [8], "granularities": ["per_channel"], "schemes": ["symmetric"]},
        "qat": {"bits": []},
    }
    cfg["search"].update(budget=2, final_fit={"epochs": 1, "early_stopping_patience": 0})
    cfg["search"]["fidelity"]["kind"] = "none"
    cfg["search"]["fit"]["epochs"] = 1


@pytest.mark.slow
def test_a_search_winner_is_compressed_and_its_chain_is_on_the_leaderboard(tmp_path):
    from tests import e2e

    start = time.perf_counter()
    root = e2e.make_project(tmp_path / "project")
    cfg = yaml.safe_load((root / "params.yaml").read_text())
    _tiny(cfg)
    (root / "params.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    winner = "compress_winner@search/random-quantize"
    ran = ["prepare", "train", "search@random", "compress@quantize", winner]
    commands = [
        ["stages/prepare.py"],
        ["stages/train.py"],
        ["stages/search.py", "random"],
        ["stages/compress.py", "quantize"],
        ["stages/compress.py", "quantize", "search/random"],
        ["stages/evaluate.py"],  # the families that ran (nas has no folder: skipped)
    ]
    env = project_env({"LEANML_ROOT": str(root), "PYTHONPATH": str(root)})
    done = subprocess.run(
        [sys.executable, "-c", f"PRELOAD = {PRELOAD!r}\nCOMMANDS = {commands!r}\n{DRIVER}"],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]

    # the winner's table compares every variant with its source model, not the baseline
    reports = root / "reports/compress/search/random/quantize"
    metrics = json.loads((reports / "metrics.json").read_text())
    source_bytes = (root / "models/search/random/best.keras").stat().st_size
    assert metrics["baseline.file_bytes"] == source_bytes
    assert source_bytes != (root / "models/train/model.keras").stat().st_size
    described = json.loads((reports / "source.json").read_text())
    assert described["label"] == "search/random" and described["selected_by"] == "named"
    assert not (
        root / "reports/compress/quantize/source.json"
    ).exists()  # the baseline's: as before

    with (root / "reports/evaluate/leaderboard.csv").open() as handle:
        rows = {r["name"]: r for r in csv.DictReader(handle)}
    chained = [name for name in rows if name.startswith("search/random → quantize/")]
    assert len(chained) == 1, sorted(rows)
    row = rows[chained[0]]
    assert (row["family"], row["method"]) == ("compress", "quantize")
    assert any(name.startswith("compress/quantize/") for name in rows)  # the baseline's variant
    assert {"train", "search/random"} <= set(rows)
    assert chained[0] in (root / "reports/evaluate/summary.md").read_text()

    # MLflow: the stage run and its variants carry the source and the chain
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    runs = client.search_runs(client.get_experiment_by_name("leanml").experiment_id.split())
    from leanml.tracking import run_name

    stage = next(r for r in runs if r.info.run_name == run_name(winner))
    assert stage.data.tags["source"] == "search/random"
    assert stage.data.tags["chain"] == "search/random → quantize"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == stage.info.run_id]
    assert [r.data.tags["chain"] for r in children] == [chained[0]]

    # DVC: record what ran, then give the source a new model: only its own compress stage (and
    # the stage that wrote the model) are stale, not the baseline's compress@quantize
    e2e.sh(root, "dvc", "commit", "-f", "-q", *ran)
    model = root / "models/search/random/best.keras"
    model.write_bytes(model.read_bytes() + b"\0")
    status = json.loads(e2e.sh(root, "dvc", "status", "--json", *ran).strip().splitlines()[-1])
    assert set(status) == {"search@random", winner}, status  # the rest is up to date
    print(f"end to end: {time.perf_counter() - start:.1f} s")
