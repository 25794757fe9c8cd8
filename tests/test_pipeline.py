"""End to end: `dvc repro` and `dvc exp run` in a temporary copy of the project, real MLflow."""

import json
import re

import pytest
import yaml

from leanml.tracking import run_name
from tests import e2e
from tests.e2e import COMPRESS, NAS, SEARCH

pytestmark = pytest.mark.slow


_sh = e2e.sh
# the experiment of the `experiment` fixture
EXP = e2e.EXP


@pytest.fixture(scope="module")
def project(e2e_pipeline):
    """The project copy after its first `dvc repro` (tests/e2e.py, shared with the determinism
    test, which compares a second run of the same params with it)."""
    return e2e_pipeline.root


@pytest.fixture(scope="module")
def experiment(e2e_pipeline):
    """One named DVC experiment (compress.combined.epochs=2) on top of the first `dvc repro`,
    shared by the exp-run test and the `make study` reader in test_evaluate_stage: the output
    of `dvc exp run` and the bytes of compress@combined's models before it. Run by
    tests/e2e.py in the background, right after that `dvc repro` (it was this fixture's own
    `git commit` and `dvc exp run`)."""
    return e2e_pipeline.experiment


def _runs(root):
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{root}/mlflow.db")
    experiment = client.get_experiment_by_name("leanml")
    return client, client.search_runs([experiment.experiment_id])


def test_repro_then_exp_run(project, e2e_pipeline, experiment):
    out = e2e_pipeline.first_repro  # the fixture's `dvc repro`
    assert "Running stage 'prepare'" in out and "Running stage 'train'" in out

    card = json.loads((project / "data/prepared/card.json").read_text())
    assert card["dataset"] == "digits" and card["input_shape"] == [8, 8, 1]
    metrics = json.loads((project / "reports/train/metrics.json").read_text())
    assert metrics["epochs_run"] == 2
    assert metrics["n_params"] == 64 * 32 + 32 + 32 * 10 + 10
    assert metrics["file_bytes"] == (project / "models/train/model.keras").stat().st_size
    assert 0.3 < metrics["val_accuracy"] <= 1.0 and 0.3 < metrics["test_accuracy"] <= 1.0
    timings = json.loads((project / "reports/train/timings.json").read_text())
    assert timings == {"fit_seconds": timings["fit_seconds"]} and timings["fit_seconds"] > 0
    assert "fit_seconds" not in metrics  # wall clock: timings only; latency: the evaluate stage
    history = (project / "reports/train/history.csv").read_text().splitlines()
    assert history[0] == "epoch,loss,accuracy,val_loss,val_accuracy" and len(history) == 3
    assert (project / "reports/train/history.png").read_bytes()[:4] == b"\x89PNG"
    assert "train.epochs" not in _sh(project, "dvc", "status")  # up to date

    client, runs = _runs(project)
    # two pipeline runs: the first `dvc repro`'s, and the experiment fixture's
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert sorted(r.info.run_name == EXP for r in parents) == [False, True]
    first = next(r for r in parents if r.info.run_name != EXP)
    children = {
        r.info.run_name: r
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == first.info.run_id
    }
    assert {"prepare", "train"} | {run_name(f"compress@{m}") for m in COMPRESS} <= set(children)
    train = children["train"]
    assert train.data.params["train.epochs"] == "2"
    assert train.data.tags["seed"] == "42"
    assert train.data.tags["dataset.sha256"] == card["sha256"]
    assert [m.step for m in client.get_metric_history(train.info.run_id, "epoch_val_loss")] == [
        1,
        2,
    ]
    assert train.data.metrics["val_accuracy"] == metrics["val_accuracy"]  # the kept model's
    # one vocabulary: every metric of every run of the store, and of every metrics file
    from leanml import glossary

    assert glossary.unknown({k for r in runs for k in r.data.metrics}) == []
    for path in project.glob("reports/**/*.json"):
        if path.name in ("metrics.json", "timings.json"):
            assert glossary.unknown(json.loads(path.read_text())) == [], path
    _check_winner_model(project, train, project / "models/train/model.keras", name="model")
    artifacts = {a.path for a in client.list_artifacts(train.info.run_id)}
    assert {"metrics.json", "history.csv", "history.png", "card.json"} <= artifacts

    # Which stages a train params change dirties (not prepare, not nas_metadata): train, and
    # every search@/nas@ stage, which read train's model and fit (the baseline trial, the
    # refit). `dvc status` shows it without paying for a rerun of most of the pipeline.
    def dirty():
        return set(json.loads(_sh(project, "dvc", "status", "--json").strip().splitlines()[-1]))

    params_file = project / "params.yaml"
    original = params_file.read_text()
    cfg = yaml.safe_load(original)
    cfg["train"]["epochs"] = 3
    already = dirty()  # nothing, unless a test before this one left a stage to rerun
    params_file.write_text(yaml.safe_dump(cfg, sort_keys=False))
    try:
        now = dirty()
    finally:
        params_file.write_text(original)
    assert now - already == {"train", *(f"search@{a}" for a in SEARCH), *(f"nas@{s}" for s in NAS)}
    assert "prepare" not in now and "nas_metadata" not in now

    # A params change, run as a named DVC experiment with its own parent run (the fixture),
    # reran only the stage that reads it and what is downstream of its outputs
    # (compress_report, evaluate), and its results changed. compress.combined.epochs: the
    # cheapest stage whose rerun shows all that (train.epochs would rerun train and every
    # compress, search and NAS stage: minutes, for the same proof).
    out, before = experiment
    ran = set(re.findall(r"Running stage '([^']+)'", out))
    assert ran == {"compress@combined", "compress_report", "evaluate"}, ran
    models = project / "models/compress/combined"
    after = {f.name: f.read_bytes() for f in models.iterdir() if f.is_file()}
    assert set(after) == set(before) and before
    assert all(after[name] != before[name] for name in before)  # one more fine-tuning epoch
    shown = json.loads(_sh(project, "dvc", "exp", "show", "--json"))
    text = json.dumps(shown)
    assert EXP in text and "test_accuracy" in text

    _, runs = _runs(project)
    exp_parent = next(r for r in runs if r.info.run_name == EXP)
    under = {
        r.info.run_name: r
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == exp_parent.info.run_id
    }
    assert {"combined · compress", "evaluate"} <= set(under)
    assert not {"prepare", "train"} & set(under)
    assert under["combined · compress"].data.params["compress.combined.epochs"] == "2"
    assert all(r.info.status == "FINISHED" for r in runs)


def test_compress_stages(project):
    """After test_repro_then_exp_run: every compress@<method> wrote its table, metrics, figure,
    models and one MLflow child run per variant; editing one method's params dirties only it."""
    import csv

    _sh(project, "dvc", "repro", "compress_report")  # runs every compress@<method> upstream
    client, runs = _runs(project)
    for method in COMPRESS:
        reports = project / "reports/compress" / method
        rows = list(csv.DictReader((reports / "results.csv").open()))
        assert rows and all(r["method"] == method for r in rows)
        metrics = json.loads((reports / "metrics.json").read_text())
        baseline_bytes = (project / "models/train/model.keras").stat().st_size
        assert metrics["baseline.file_bytes"] == baseline_bytes
        for row in rows:
            assert float(metrics[f"{row['variant']}.test_accuracy"]) == float(row["test_accuracy"])
            files = list((project / "models/compress" / method).glob(f"{row['variant']}.*"))
            assert files and all(f.stat().st_size > 0 for f in files)
        assert (reports / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
        stage = next(r for r in runs if r.info.run_name == run_name(f"compress@{method}"))
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == stage.info.run_id]
        # compress@auto's search: its trials and full-fidelity finalists beside the variant
        searched = [r for r in children if r.info.run_name.startswith(("trial-", "finalist-"))]
        variants = [r for r in children if r not in searched]
        assert sorted(r.info.run_name for r in variants) == sorted(r["variant"] for r in rows)
        if method == "auto":
            trials = list(csv.DictReader((project / "models/compress/auto/trials.csv").open()))
            # one run per proposal, a cache hit too (tagged from_cache, no training span)
            assert sorted(
                r.info.run_name for r in searched if r.info.run_name.startswith("trial-")
            ) == sorted(f"trial-{int(r['proposal']):03d}" for r in trials)
            assert metrics["search.evaluations"] == 2 and rows[0]["policy"]
            assert all(r.data.tags["stage"] == "compress@auto" for r in searched)
        else:
            assert not searched
        for run in variants:
            assert "test_accuracy" in run.data.metrics and run.data.tags["method"] == method
            assert client.list_artifacts(run.info.run_id, "model")
        _check_variant_models(project, stage, variants, rows)
    quantize_rows = list(csv.DictReader((project / "reports/compress/quantize/results.csv").open()))
    assert {r["kind"] for r in quantize_rows} == {"tflite", "ptq", "qat"}
    summary = json.loads((project / "reports/compress/summary.json").read_text())
    assert set(summary) == {"baseline", *COMPRESS}
    assert summary["quantize"]["most_accurate"]["variant"] in {r["variant"] for r in quantize_rows}
    assert (project / "reports/compress/accuracy_vs_bytes.png").read_bytes()[:4] == b"\x89PNG"

    params_file = project / "params.yaml"
    original = params_file.read_text()
    cfg = yaml.safe_load(original)
    cfg["compress"]["lowrank"]["epochs"] = 2
    params_file.write_text(yaml.safe_dump(cfg, sort_keys=False))
    try:
        status = json.loads(_sh(project, "dvc", "status", "--json").strip().splitlines()[-1])
    finally:
        params_file.write_text(original)
    dirty = {name for name in status if name.startswith("compress")}
    assert dirty == {"compress@lowrank"}


def _check_variant_models(project, stage, variants, rows):
    """Each variant run has a logged model (signature: the input and class-probability shapes)
    that loads with pyfunc and scores on the test split what the results table says."""
    import mlflow
    import numpy as np

    from leanml import data, paths

    mlflow.set_tracking_uri(f"sqlite:///{project}/mlflow.db")
    test = data.load_prepared(paths.load(project).prepare).test
    by_variant = {r["variant"]: r for r in rows}
    for run in variants:
        (logged,) = mlflow.search_logged_models(
            experiment_ids=[stage.info.experiment_id],
            filter_string=f"source_run_id = '{run.info.run_id}'",
            output_format="list",
        )
        assert logged.name == "candidate"
        uri = f"models:/{logged.model_id}"
        signature = mlflow.models.get_model_info(uri).signature
        assert list(signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == [
            -1,
            *test.x.shape[1:],
        ]
        assert list(signature.outputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 10]
        probs = mlflow.pyfunc.load_model(uri).predict(test.x)
        accuracy = float(np.mean(np.argmax(probs, axis=1) == test.y))
        expected = float(by_variant[run.info.run_name]["test_accuracy"])
        assert abs(accuracy - expected) <= 1 / len(test.y) + 1e-9, run.info.run_name


def _check_winner_model(project, stage, model_file, name="best_model"):
    """The stage run's logged Keras model (its winner) predicts what the saved file does."""
    import keras
    import mlflow
    import numpy as np

    from leanml import data, paths

    mlflow.set_tracking_uri(f"sqlite:///{project}/mlflow.db")
    test = data.load_prepared(paths.load(project).prepare).test
    (logged,) = mlflow.search_logged_models(
        experiment_ids=[stage.info.experiment_id],
        filter_string=f"source_run_id = '{stage.info.run_id}'",
        output_format="list",
    )
    assert logged.name == name
    assert mlflow.models.get_model_info(f"models:/{logged.model_id}").signature is not None
    probs = mlflow.pyfunc.load_model(f"models:/{logged.model_id}").predict(test.x)
    expected = keras.saving.load_model(model_file).predict(test.x, verbose=0)
    assert np.allclose(np.asarray(probs), expected, atol=1e-6)


def test_search_stages(project):
    """Every search@<algo> ran within its budget, wrote its tables and model, logged its trials
    as nested runs; the overlay figure covers them all; same params give the same trials."""
    import csv

    _sh(project, "dvc", "repro", "search_report")
    client, runs = _runs(project)
    base_val = json.loads((project / "reports/train/metrics.json").read_text())["val_accuracy"]
    for algo in SEARCH:
        reports = project / "reports/search" / algo
        trials = list(csv.DictReader((reports / "trials.csv").open()))
        trained = [t for t in trials if t["from_cache"] == "False"]
        assert len(trained) == 3
        assert all(8 <= int(t["hidden_units"]) <= 256 for t in trials)
        # the baseline (train: one hidden layer of 32, adam 1e-3, batch 32) is the first trial
        first = {k: trials[0][k] for k in ("hidden_units", "n_layers", "optimizer", "batch_size")}
        assert first == {
            "hidden_units": "32",
            "n_layers": "1",
            "optimizer": "adam",
            "batch_size": "32",
        }
        assert float(trials[0]["learning_rate"]) == 0.001
        metrics = json.loads((reports / "metrics.json").read_text())
        best = json.loads((reports / "best.json").read_text())
        assert metrics["evaluations"] == 3
        assert metrics["best_trial.score"] == max(float(t["score"]) for t in trials)
        # the refit (final_fit equals the trials' full fit here) reproduces its trial exactly
        assert metrics["refit.val_accuracy"] == best["refit_val_accuracy"] == best["score"]
        assert metrics["best_trial.val_accuracy"] == best["trial_val_accuracy"] == best["score"]
        assert metrics["refit.epochs_run"] == 2
        # the kept model: the baseline's (train stage) only when strictly higher on val
        assert best["source"] == ("baseline" if base_val > best["score"] else "refit")
        assert metrics["best.val_accuracy"] == best["val_accuracy"] == max(base_val, best["score"])
        assert metrics["winner_is_baseline"] == int(best["source"] == "baseline")
        # ASHA (rung at 1 epoch): the trials stopped there ran one epoch, the others two
        for t in trained:
            assert int(t["epochs"]) == (1 if t["status"] == "pruned" else 2)
        model = project / "models/search" / algo / "best.keras"
        assert metrics["best.file_bytes"] == model.stat().st_size
        curve = list(csv.DictReader((reports / "convergence.csv").open()))
        assert [int(r["evaluation"]) for r in curve] == [1, 2, 3]
        stage = next(r for r in runs if r.info.run_name == run_name(f"search@{algo}"))
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == stage.info.run_id]
        assert len(children) == len(trials)
        assert sum(r.data.tags.get("best") == "true" for r in children) == 1
        _check_winner_model(project, stage, model)
    summary = json.loads((project / "reports/search/summary.json").read_text())
    assert set(summary) == set(SEARCH)
    assert (project / "reports/search/convergence.png").read_bytes()[:4] == b"\x89PNG"

    # Same params, forced rerun: the checkpoint is replayed, nothing retrained, same numbers.
    before = (project / "reports/search/random/trials.csv").read_text()
    out = _sh(project, "dvc", "repro", "-f", "-s", "search@random")
    assert "replayed" in out
    assert (project / "reports/search/random/trials.csv").read_text() == before


def test_evaluate_stage(project, experiment):
    """evaluate scored every upstream candidate on the test split, its headline numbers show in
    `dvc metrics show`, and its files and leaderboard table are on the parent MLflow run."""
    import csv

    # The evaluate run to inspect: the experiment fixture's, after compress@combined changed
    # (test_search_stages's forced rerun of search@random, if it ran in between, rewrote the
    # same models; rerunning evaluate here would only repeat the same numbers)
    out, _ = experiment
    assert "Running stage 'evaluate'" in out
    reports = project / "reports/evaluate"
    rows = list(csv.DictReader((reports / "leaderboard.csv").open()))
    by = {r["name"]: r for r in rows}
    assert "train" in by and {f"search/{a}" for a in SEARCH} <= set(by)
    assert {f"nas/{strategy}" for strategy in ("rl", "meta", "random")} <= set(by)
    n_test = json.loads((project / "reports/prepare/metrics.json").read_text())["n_test"]
    for method in COMPRESS:
        results = project / "reports/compress" / method / "results.csv"
        for variant in csv.DictReader(results.open()):
            row = by[f"compress/{method}/{variant['variant']}"]  # every variant was scored
            # the same model on the same test split: the compress stage's own number agrees
            assert abs(float(row["accuracy"]) - float(variant["test_accuracy"])) <= 1 / n_test
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    metrics = json.loads((reports / "metrics.json").read_text())
    assert metrics["candidates"] == len(rows)
    assert metrics["baseline.test_accuracy"] == float(by["train"]["accuracy"])
    # a compressed variant, really smaller than the baseline, is within the margin (here the
    # TFLite dynamic-int8 twin qualifies by itself: it predicts as the baseline does)
    assert metrics["smallest_within_pp.name"].startswith("compress/")
    assert metrics["smallest_within_pp.compression_ratio"] > 1.0
    # raw_decode: _sh appends stderr, where DVC notes metrics files of stages not run yet
    shown, _ = json.JSONDecoder().raw_decode(_sh(project, "dvc", "metrics", "show", "--json"))
    assert "smallest_within_pp.compression_ratio" in json.dumps(shown)
    assert "reports/evaluate/metrics.json" in json.dumps(shown)
    for name in ("summary.md", "pareto.csv", "tables/leaderboard.tex", "figures/pareto.png"):
        assert (reports / name).stat().st_size > 0

    client, runs = _runs(project)
    stage = max((r for r in runs if r.info.run_name == "evaluate"), key=lambda r: r.info.start_time)
    assert stage.info.status == "FINISHED"
    parent = client.get_run(stage.data.tags["mlflow.parentRunId"])
    assert parent.data.metrics["evaluate.candidates"] == len(rows)
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "evaluate")}
    assert {
        "evaluate/leaderboard.csv",
        "evaluate/leaderboard.json",
        "evaluate/summary.md",
    } <= logged

    # What `make study` reads: an experiment's evaluate metrics from `dvc exp show --json`:
    # the experiment fixture's, whose results the workspace holds.
    from leanml import study

    shown, _ = json.JSONDecoder().raw_decode(_sh(project, "dvc", "exp", "show", "--json"))
    records = study.records_from_exp_show(shown, "reports/evaluate/metrics.json", [EXP])
    assert [(r["name"], r["seed"]) for r in records] == [(EXP, 42)]
    assert records[0]["metrics"] == metrics
    assert any(key.startswith("by_method.search/") for key in records[0]["metrics"])


def test_nas_stages(project):
    """Every nas@<strategy> trained its children within budget and wrote its outputs; the
    meta-dataset stage is cached; the controller's updates were logged."""
    import csv

    _sh(project, "dvc", "repro", "nas_report")
    client, runs = _runs(project)
    for strategy in NAS:
        reports = project / "reports/nas" / strategy
        trials = list(csv.DictReader((reports / "trials.csv").open()))
        assert len([t for t in trials if t["from_cache"] == "False"]) == 2
        # the baseline architecture (one dense layer of 32 units) is the first child
        assert (trials[0]["layers"], trials[0]["l0.kind"], trials[0]["l0.width"]) == (
            "1",
            "dense",
            "32",
        )
        metrics = json.loads((reports / "metrics.json").read_text())
        best = json.loads((reports / "best.json").read_text())
        assert metrics["evaluations"] == 2 and best["architecture"]
        assert metrics["refit.val_accuracy"] == best["trial_val_accuracy"]  # the same fit
        assert metrics["best.val_accuracy"] == best["val_accuracy"] >= best["refit_val_accuracy"]
        assert (project / "models/nas" / strategy / "best.keras").stat().st_size > 0
        # every child trained is a nested run of the stage run that trained it (a later rerun
        # that replays the whole checkpoint, e.g. after a train params change, trains nothing
        # and logs no children)
        stages = [r for r in runs if r.info.run_name == run_name(f"nas@{strategy}")]
        counts = [
            sum(r.data.tags.get("mlflow.parentRunId") == stage.info.run_id for r in runs)
            for stage in stages
        ]
        assert len(trials) in counts, counts
        latest = max(stages, key=lambda r: r.info.start_time)  # wrote the current best.keras
        _check_winner_model(project, latest, project / "models/nas" / strategy / "best.keras")
    rl = next(r for r in runs if r.info.run_name == run_name("nas@rl"))
    assert client.get_metric_history(rl.info.run_id, "controller_entropy")
    strategy = json.loads((project / "reports/nas/meta/strategy.json").read_text())
    assert strategy["log"][0]["nearest"]  # the nearest source tasks were recorded
    assert set(json.loads((project / "reports/nas/summary.json").read_text())) == set(NAS)
    assert "nas_metadata" not in _sh(project, "dvc", "status", "nas_metadata")  # cached
    out = _sh(project, "dvc", "repro", "nas_metadata")
    assert "didn't change, skipping" in out
