"""A real search process interrupted mid-run (SIGINT, then SIGKILL) resumes from its checkpoint."""

import json
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.conftest import copy_project, project_env

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path):
    copy_project(tmp_path)
    cfg = yaml.safe_load((tmp_path / "params.yaml").read_text())
    cfg["search"]["budget"] = 4
    cfg["search"]["ga"]["population"] = 2
    cfg["search"]["pso"]["particles"] = 2
    cfg["search"]["bayes"]["initial_points"] = 2
    cfg["search"]["fit"].update({"epochs": 2, "early_stopping_patience": 0})
    cfg["base"]["measure"] = {"warmup": 1, "runs": 5, "batch_size": 32}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(cfg))
    env = project_env({"LEANML_ROOT": str(tmp_path), "LEANML_PIPELINE": "resume-test"})
    subprocess.run(
        [sys.executable, "stages/prepare.py"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return tmp_path, env


def _start(project, env):
    return subprocess.Popen(
        [sys.executable, "stages/search.py", "random"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_trials(checkpoint, n, proc, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if checkpoint.is_file() and len(checkpoint.read_text().splitlines()) >= n + 1:
            return
        if proc.poll() is not None:
            pytest.fail(f"search ended early: {proc.stderr.read()}")
        time.sleep(0.2)
    pytest.fail("no progress")


def test_interrupt_then_kill_then_resume(project):
    root, env = project
    checkpoint = root / "models/search/random/checkpoint.jsonl"

    proc = _start(root, env)
    _wait_for_trials(checkpoint, 1, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert not (root / "reports/search/random/metrics.json").exists()  # no half results

    proc = _start(root, env)
    _wait_for_trials(checkpoint, 2, proc)
    proc.kill()  # SIGKILL: no chance to clean up
    proc.wait(timeout=60)
    killed_pid = proc.pid
    done_before = len(checkpoint.read_text().splitlines()) - 1

    proc = _start(root, env)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert err.count("[replayed") == done_before  # finished trials were not retrained
    metrics = json.loads((root / "reports/search/random/metrics.json").read_text())
    assert metrics["evaluations"] == 4

    assert "tracking: closed" in err  # the SIGKILLed process's runs, by the resumed stage

    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{root}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("leanml").experiment_id])
    assert [r.info.run_name for r in runs if r.info.status == "RUNNING"] == []
    stage_runs = [r for r in runs if r.info.run_name == "search@random"]
    # SIGINT: closed KILLED by the process itself; SIGKILL: left RUNNING, closed KILLED on resume
    assert sorted(r.info.status for r in stage_runs) == ["FINISHED", "KILLED", "KILLED"]
    sigkilled = next(r for r in stage_runs if r.data.tags["leanml.pid"] == str(killed_pid))
    assert sigkilled.info.status == "KILLED"
