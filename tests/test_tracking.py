"""Tracking against a real temporary sqlite MLflow store: parent/child runs and their contents."""

import json
import os

import pytest

from leanml import tracking, tracking_reap
from leanml.errors import LeanmlError
from leanml.params import Params, Tracking
from tests import mlflow_helpers


def _by_name(runs):
    return {r["name"]: r for r in runs}


def test_stages_share_one_parent_per_pipeline(tracking_cfg, tmp_path):
    cfg = Params()
    artifact = tmp_path / "metrics.json"
    artifact.write_text(json.dumps({"a": 1}))
    with tracking.stage_run("prepare", tracking_cfg, {"base": cfg.base}, {"seed": 42}) as run:
        run.log_metrics({"n_train": 10, "status": "ok"})
        run.log_artifact(artifact)
    with tracking.stage_run("train", tracking_cfg, {"train": cfg.train}) as run:
        for step in (1, 2, 3):
            run.log_metrics({"val_accuracy": 0.5 + step / 10}, step=step)
    runs = mlflow_helpers.runs(tracking_cfg)
    assert len(runs) == 3
    parents = [r for r in runs if r["parent"] is None]
    assert len(parents) == 1
    parent = parents[0]
    assert parent["status"] == "FINISHED"
    assert parent["tags"][tracking.PIPELINE_TAG] == os.environ["LEANML_PIPELINE"]
    children = _by_name(r for r in runs if r["parent"] == parent["run_id"])
    assert set(children) == {"prepare", "train"}
    prepare, train = children["prepare"], children["train"]
    assert prepare["params"]["base.seed"] == "42"
    assert prepare["params"]["base.tracking.experiment"] == "leanml"
    assert prepare["tags"]["seed"] == "42" and prepare["tags"]["stage"] == "prepare"
    assert "git.commit" in prepare["tags"]
    assert prepare["metrics"] == {"n_train": 10.0}
    assert prepare["artifacts"] == ["metrics.json"]
    assert train["params"]["train.epochs"] == "30"
    history = mlflow_helpers.metric_history(train["run_id"], "val_accuracy")
    assert [step for step, _ in history] == [1, 2, 3]
    assert (tmp_path / "mlflow.db").is_file()


def test_a_new_pipeline_gets_a_new_parent(tracking_cfg, monkeypatch):
    with tracking.stage_run("train", tracking_cfg):
        pass
    monkeypatch.setenv("LEANML_PIPELINE", "another")
    with tracking.stage_run("train", tracking_cfg):
        pass
    runs = mlflow_helpers.runs(tracking_cfg)
    assert len([r for r in runs if r["parent"] is None]) == 2


def test_dvc_exp_name_keys_the_parent(tracking_cfg, monkeypatch):
    monkeypatch.delenv("LEANML_PIPELINE")
    monkeypatch.setenv("DVC_EXP_NAME", "lucky-kite")
    with tracking.stage_run("prepare", tracking_cfg):
        pass
    with tracking.stage_run("train", tracking_cfg):
        pass
    runs = mlflow_helpers.runs(tracking_cfg)
    parent = next(r for r in runs if r["parent"] is None)
    assert parent["name"] == "lucky-kite"
    assert sum(r["parent"] == parent["run_id"] for r in runs) == 2


def test_failure_and_interrupt_close_the_runs(tracking_cfg):
    with pytest.raises(ValueError), tracking.stage_run("train", tracking_cfg):
        raise ValueError("boom")
    with pytest.raises(KeyboardInterrupt), tracking.stage_run("search", tracking_cfg):
        raise KeyboardInterrupt
    statuses = {r["name"]: r["status"] for r in mlflow_helpers.runs(tracking_cfg) if r["parent"]}
    assert statuses == {"train": "FAILED", "search": "KILLED"}


def test_keras_model_is_logged(tracking_cfg, tiny_splits):
    from leanml import models
    from leanml.params import ModelSpec

    model = models.build(ModelSpec(), tiny_splits.input_shape, 10)
    with tracking.stage_run("train", tracking_cfg) as run:
        run.log_keras_model(model, tiny_splits.val.x[:2])
    import mlflow

    train = next(r for r in mlflow_helpers.runs(tracking_cfg) if r["name"] == "train")
    logged = mlflow.search_logged_models(
        experiment_ids=[mlflow.get_experiment_by_name("test").experiment_id], output_format="list"
    )
    assert [m.source_run_id for m in logged] == [train["run_id"]]
    loaded = mlflow.keras.load_model(logged[0].model_uri)
    assert loaded.predict(tiny_splits.val.x[:2], verbose=0).shape == (2, 10)


def test_unwritable_store_fails_before_work(tmp_path):
    cfg = Tracking(uri=f"sqlite:///{tmp_path}/no/such/dir/mlflow.db")
    with pytest.raises(LeanmlError, match="cannot write the MLflow store"):
        tracking.connect(cfg)


def test_unreachable_server_fails_clearly():
    cfg = Tracking(uri="http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(LeanmlError, match="unreachable"):
        tracking.connect(cfg)


def test_uri_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("LEANML_ROOT", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5555")
    assert tracking.resolve_uri(Tracking(uri="sqlite:///x.db")) == "sqlite:///x.db"
    assert tracking.resolve_uri(Tracking()) == "http://127.0.0.1:5555"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking.resolve_uri(Tracking()) == f"sqlite:///{tmp_path}/mlflow.db"
    queued = tmp_path / ".dvc" / "tmp" / "exps" / "tmpabc"
    monkeypatch.setenv("LEANML_ROOT", str(queued))
    assert tracking.resolve_uri(Tracking()) == f"sqlite:///{tmp_path}/mlflow.db"
    assert "--host 127.0.0.1" in tracking.ui_command(Tracking())


def test_run_names_lead_with_what_differs():
    assert tracking.run_name("compress@combined") == "combined · compress"
    assert tracking.run_name("search@ga") == "ga · search"
    assert tracking.run_name("nas@rl") == "rl · nas"
    assert tracking.run_name("compress_winner@nas/rl-prune") == "nas/rl → prune · compress"
    assert tracking.run_name("compress_winner@best_search-quantize") == (
        "best_search → quantize · compress"
    )
    assert tracking.run_name("train") == "train"


def test_nested_child_runs(tracking_cfg):
    with tracking.stage_run("search", tracking_cfg) as run:
        for i in range(2):
            with run.child(f"trial-{i}", {"units": 32 * (i + 1)}, {"trial": i}) as trial:
                trial.log_metrics({"val_accuracy": 0.5 + i / 10})
        with pytest.raises(RuntimeError), run.child("trial-bad"):
            raise RuntimeError("trial failed")
        run.log_metrics({"best.val_accuracy": 0.6})
    runs = {r["name"]: r for r in mlflow_helpers.runs(tracking_cfg)}
    stage_id = runs["search"]["run_id"]
    assert runs["trial-0"]["parent"] == stage_id and runs["trial-1"]["parent"] == stage_id
    assert runs["trial-1"]["params"] == {"units": "64"}
    assert runs["trial-1"]["tags"]["trial"] == "1"
    assert runs["trial-bad"]["status"] == "FAILED"
    assert runs["search"]["metrics"] == {"best.val_accuracy": 0.6}
    assert runs["search"]["status"] == "FINISHED"


def _dead_pid() -> int:
    import subprocess
    import sys

    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def test_runs_of_killed_processes_are_closed_when_a_stage_starts(tracking_cfg):
    """kill -9 leaves a stage run (and its open trial run) RUNNING; the next stage closes them."""
    import socket

    import mlflow

    experiment_id = tracking.connect(tracking_cfg)
    client = mlflow.MlflowClient()
    host = socket.gethostname()

    def running(name, pid, host=host, parent=None):
        tags = {tracking_reap.PID_TAG: str(pid), tracking_reap.HOST_TAG: host} if pid else {}
        if parent:
            tags[tracking_reap.PARENT_TAG] = parent
        return client.create_run(experiment_id, run_name=name, tags=tags).info.run_id

    dead = _dead_pid()
    killed = running("search@random", dead)
    trial = running("trial-003", None, parent=killed)  # no pid tag: closed with its parent
    elsewhere = running("train", dead, host="another-host")  # maybe alive over there
    alive = running("nas@rl", os.getpid())
    reused = running("nas@meta", os.getpid())  # same pid, but another process's start time
    client.set_tag(reused, tracking_reap.STARTED_TAG, "12.0")
    # an interrupted stage closed itself (KILLED) but not the trial run it was opening
    ended = running("search@ga", dead)
    client.set_terminated(ended, "KILLED")
    orphan = running("trial-000", None, parent=ended)
    # under a parent of another host that ended: not ours to judge
    ended_elsewhere = running("search@pso", dead, host="another-host")
    client.set_terminated(ended_elsewhere, "KILLED")
    foreign = running("trial-001", None, parent=ended_elsewhere)
    with tracking.stage_run("search@random", tracking_cfg) as run:
        own = client.get_run(run.run_id).data.tags
        assert (
            own[tracking_reap.PID_TAG] == str(os.getpid()) and own[tracking_reap.HOST_TAG] == host
        )
    status = {r["run_id"]: r["status"] for r in mlflow_helpers.runs(tracking_cfg)}
    assert status[killed] == status[trial] == status[reused] == status[orphan] == "KILLED"
    assert status[elsewhere] == status[alive] == status[foreign] == "RUNNING"
    assert list(status.values()).count("FINISHED") == 2  # the new stage run and its parent


def test_credentials_are_never_logged_or_printed(tracking_cfg, monkeypatch):
    """A password in a tracking URI: refused in params.yaml (it would reach dvc.lock and git),
    masked in logged params and in error messages when it comes from the environment."""
    from leanml import params

    with pytest.raises(LeanmlError) as err:
        params.parse({"base": {"tracking": {"uri": "https://bob:hunter2@mlflow.example.org"}}})
    assert "base.tracking.uri: must not hold a password" in str(err.value)
    assert "hunter2" not in str(err.value) and "bob:***@" in str(err.value)

    with tracking.stage_run("train", tracking_cfg) as run:
        run.log_params({"remote": "postgresql://bob:hunter2@db:5432/mlflow"})
    train = next(r for r in mlflow_helpers.runs(tracking_cfg) if r["name"] == "train")
    assert train["params"] == {"remote": "postgresql://bob:***@db:5432/mlflow"}

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://bob:hunter2@127.0.0.1:9")
    with pytest.raises(LeanmlError) as err:
        tracking.connect(Tracking())
    assert "unreachable" in str(err.value) and "hunter2" not in str(err.value)
    assert "http://bob:***@127.0.0.1:9" in str(err.value)


def test_sigterm_ends_the_stage_with_130_and_its_run_killed(tracking_cfg, capsys):
    """SIGTERM (what `kill`, `timeout` and schedulers send) is handled like Ctrl-C."""
    import signal

    from leanml import stage

    def main():
        with tracking.stage_run("train", tracking_cfg) as run:
            with run.child("trial-000"):
                os.kill(os.getpid(), signal.SIGTERM)

    saved = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as done:
            stage.run(main, "train")
    finally:
        signal.signal(signal.SIGTERM, saved)
    assert done.value.code == 130
    assert "train: interrupted" in capsys.readouterr().err
    status = {r["name"]: r["status"] for r in mlflow_helpers.runs(tracking_cfg)}
    assert status["train"] == status["trial-000"] == "KILLED"
    assert "RUNNING" not in status.values()


def test_an_error_raised_by_an_interrupted_library_still_ends_the_stage_130(capsys):
    """A library that catches the KeyboardInterrupt and raises its own error turns Ctrl-C into
    a crash; once a signal arrived, the stage still ends 130 'interrupted', no traceback. Without
    a signal, the same error is a crash (exit 1 with its traceback) as before."""
    import signal

    from leanml import stage

    def library_swallows_the_interrupt():
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:
            raise RuntimeError("database is locked") from None

    saved = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit) as done:
            stage.run(library_swallows_the_interrupt, "search@random")
        assert done.value.code == 130
        assert "search@random: interrupted" in capsys.readouterr().err

        def crashes():
            raise RuntimeError("a bug")

        with pytest.raises(RuntimeError, match="a bug"):
            stage.run(crashes, "search@random")
    finally:
        signal.signal(signal.SIGINT, saved)


def test_every_nested_run_carries_the_stage_provenance(tracking_cfg, monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", "lucky-kite")
    params = {"base": Params().base}
    with tracking.stage_run("search@ga", tracking_cfg, params, {"seed": 7}) as run:
        with run.child("trial-000", {"lr": 0.1}, {"status": "ok"}) as trial:
            with trial.child("epoch-curve"):
                pass
    runs = _by_name(mlflow_helpers.runs(tracking_cfg))
    stage = runs["ga · search"]["tags"]  # named by what differs; the tag keeps the stage name
    for name in ("ga · search", "trial-000", "epoch-curve"):
        tags = runs[name]["tags"]
        assert tags["stage"] == "search@ga" and tags["seed"] == "7"
        assert tags["dvc.experiment"] == "lucky-kite"
        assert tags["git.commit"] == stage["git.commit"] and "git.dirty" in tags
        assert tags["params.sha256"] == stage["params.sha256"] and len(tags["params.sha256"]) == 64
    assert runs["trial-000"]["tags"]["status"] == "ok"
    # another params value, another hash
    with tracking.stage_run("search@ga", tracking_cfg, {"base": {"seed": 8}}, {"seed": 8}) as run:
        other = run.inherited["params.sha256"]
    assert other != stage["params.sha256"]


def test_git_dirty_ignores_what_dvc_repro_writes(tmp_path, monkeypatch):
    import subprocess

    monkeypatch.setenv("LEANML_ROOT", str(tmp_path))

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (tmp_path / "reports/train").mkdir(parents=True)
    for name in ("dvc.lock", "params.yaml", "reports/train/metrics.json"):
        (tmp_path / name).write_text("a: 1\n")
    git("add", ".")
    git("commit", "-qm", "x")
    assert tracking.git_tags()["git.dirty"] == "false"
    (tmp_path / "dvc.lock").write_text("a: 2\n")  # dvc repro rewrites the lock and metrics
    (tmp_path / "reports/train/metrics.json").write_text("a: 2\n")
    assert tracking.git_tags()["git.dirty"] == "false"
    (tmp_path / "params.yaml").write_text("a: 2\n")  # a person edited the params
    assert tracking.git_tags()["git.dirty"] == "true"


def test_datasets_and_the_parent_description_are_logged(tracking_cfg, tiny_splits):
    import mlflow

    card = {"dataset": "digits", "sha256": "ab" * 32}
    with tracking.stage_run("evaluate", tracking_cfg, {"base": Params().base}) as run:
        run.log_data(tiny_splits, card, ("train", "test"))
        run.describe_parent("# Evaluation\n\nbest: x", Params().model_dump())
        run_id, parent_id = run.run_id, run.parent_id
    client = mlflow.MlflowClient()
    inputs = client.get_run(run_id).inputs.dataset_inputs
    got = {
        (
            i.dataset.name,
            i.dataset.digest,
            next(t.value for t in i.tags if t.key.endswith("context")),
        )
        for i in inputs
    }
    assert got == {("digits/train", "ab" * 8, "train"), ("digits/test", "ab" * 8, "test")}
    parent = client.get_run(parent_id).data
    assert parent.tags["mlflow.note.content"].startswith("# Evaluation")
    assert parent.params["train.epochs"] == "30" and parent.params["base.seed"] == "42"
    with tracking.stage_run("evaluate", tracking_cfg) as run:  # again: params stay, no error
        run.describe_parent("# Evaluation 2", {"train": {"epochs": 5}})
    parent = client.get_run(parent_id).data
    assert parent.params["train.epochs"] == "30"
    assert parent.tags["mlflow.note.content"] == "# Evaluation 2"


def test_the_evaluate_picks_are_registered_with_aliases(tracking_cfg, tmp_path, tiny_splits):
    import mlflow
    import numpy as np

    from leanml import measure, models
    from leanml.params import ModelSpec
    from leanml.tracking_registry import register_picks

    paths = {}
    for name, width in (("train", 8), ("compress/prune/s50", 4)):
        spec = ModelSpec.model_validate({"kind": "mlp", "mlp": {"hidden_units": [width]}})
        model = models.build(spec, tiny_splits.input_shape, tiny_splits.n_classes)
        paths[name] = measure.save_model(model, tmp_path / f"{width}.keras")
    from leanml.tflite import TFLiteRunner, convert

    tflite = tmp_path / "int8.tflite"  # a pick that is not a Keras model: registered as pyfunc
    tflite.write_bytes(convert(models.load(paths["train"], "train")))
    paths["compress/quantize/int8"] = tflite
    rows = [
        {"name": n, "family": n.split("/")[0], "path": p.name, "accuracy": 0.9 - i / 10}
        for i, (n, p) in enumerate(paths.items())
    ]
    picks = {"baseline": rows[0], "best": rows[0], "smallest_within_1.5pp": rows[1], "x": None}
    picks["fastest"] = rows[2]
    with tracking.stage_run("evaluate", tracking_cfg) as run:
        got = register_picks(run, picks, "digits", tmp_path, tiny_splits.test.x[:5])
    assert got == {"baseline": "1", "best": "1", "smallest_within_1_5pp": "2", "fastest": "3"}
    fastest = mlflow.pyfunc.load_model("models:/leanml-digits@fastest")
    expected = TFLiteRunner(tflite.read_bytes()).predict(tiny_splits.test.x[:5])
    assert np.allclose(fastest.predict(tiny_splits.test.x[:5]), expected, atol=1e-6)
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias("leanml-digits", "smallest_within_1_5pp")
    assert version.tags["candidate"] == "compress/prune/s50"
    assert float(version.tags["test_accuracy"]) == 0.8
    loaded = mlflow.pyfunc.load_model("models:/leanml-digits@smallest_within_1_5pp")
    direct = models.load(paths["compress/prune/s50"], "compress")(tiny_splits.test.x[:5])
    assert np.allclose(loaded.predict(tiny_splits.test.x[:5]), np.asarray(direct), atol=1e-6)
