"""End to end: `dvc repro` and `dvc exp run` in a temporary copy of the project, real MLflow."""

import json
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import ROOT, project_env

pytestmark = pytest.mark.slow

COPY = [
    "stages",
    "leanml",
    "inputs",
    "params.yaml",
    "dvc.yaml",
    ".dvc/config",
    ".dvcignore",
    ".gitignore",
]


def _sh(cwd, *cmd, timeout=600):
    done = subprocess.run(
        list(cmd),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=project_env({"LEANML_ROOT": str(cwd)}),
    )
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    for name in COPY:
        src, dst = ROOT / name, root / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dst)
    cfg = yaml.safe_load((root / "params.yaml").read_text())
    cfg["train"]["epochs"] = 2
    cfg["train"]["model"]["mlp"]["hidden_units"] = [32]
    cfg["base"]["measure"] = {"warmup": 2, "runs": 10, "batch_size": 64}
    (root / "params.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    _sh(root, "git", "init", "-q")
    _sh(
        root,
        "git",
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "init",
    )
    return root


def _runs(root):
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{root}/mlflow.db")
    experiment = client.get_experiment_by_name("leanml")
    return client, client.search_runs([experiment.experiment_id])


def test_repro_then_exp_run(project):
    out = _sh(project, "dvc", "repro")
    assert "Running stage 'prepare'" in out and "Running stage 'train'" in out

    card = json.loads((project / "data/prepared/card.json").read_text())
    assert card["dataset"] == "digits" and card["input_shape"] == [8, 8, 1]
    metrics = json.loads((project / "reports/train/metrics.json").read_text())
    assert metrics["epochs_run"] == 2
    assert metrics["params"] == 64 * 32 + 32 + 32 * 10 + 10
    assert metrics["file_bytes"] == (project / "models/train/model.keras").stat().st_size
    assert 0.3 < metrics["val_accuracy"] <= 1.0 and 0.3 < metrics["test_accuracy"] <= 1.0
    assert metrics["latency_ms_p50"] > 0
    history = (project / "reports/train/history.csv").read_text().splitlines()
    assert history[0] == "epoch,loss,accuracy,val_loss,val_accuracy" and len(history) == 3
    assert (project / "reports/train/history.png").read_bytes()[:4] == b"\x89PNG"
    assert "train.epochs" not in _sh(project, "dvc", "status")  # up to date

    client, runs = _runs(project)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    children = {r.info.run_name: r for r in runs if r not in parents}
    assert set(children) == {"prepare", "train"}
    train = children["train"]
    assert train.data.params["train.epochs"] == "2"
    assert train.data.tags["seed"] == "42"
    assert train.data.tags["dataset.sha256"] == card["sha256"]
    assert [m.step for m in client.get_metric_history(train.info.run_id, "val_loss")] == [1, 2]
    artifacts = {a.path for a in client.list_artifacts(train.info.run_id)}
    assert {"metrics.json", "history.csv", "history.png", "card.json"} <= artifacts

    # A params change reruns train only, as a named DVC experiment with its own parent run.
    _sh(project, "git", "add", "-A")
    _sh(project, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "base")
    out = _sh(project, "dvc", "exp", "run", "-n", "three-epochs", "-S", "train.epochs=3")
    assert "Running stage 'train'" in out and "Running stage 'prepare'" not in out
    assert json.loads((project / "reports/train/metrics.json").read_text())["epochs_run"] == 3
    shown = json.loads(_sh(project, "dvc", "exp", "show", "--json"))
    text = json.dumps(shown)
    assert "three-epochs" in text and "test_accuracy" in text

    _, runs = _runs(project)
    exp_parent = next(r for r in runs if r.info.run_name == "three-epochs")
    under = [
        r.info.run_name
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == exp_parent.info.run_id
    ]
    assert under == ["train"]
    assert all(r.info.status == "FINISHED" for r in runs)
