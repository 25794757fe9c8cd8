"""`make server` is a real MLflow tracking server: a parallel search logs every trial to it.

Starts the exact command of `make server` (sqlite store, artifacts under the project, bound to
127.0.0.1) on port 0, so the server binds a free port itself (no pick-then-bind race) and the
test reads it from uvicorn's log, then runs `dvc repro search@random` with trials on two Dask
workers against it over HTTP, and checks that every trial run arrived, nested under its stage
run and the pipeline run.
"""

import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from leanml.tracking import run_name
from tests import e2e
from tests.conftest import ROOT, project_env

pytestmark = pytest.mark.slow


def _server_command(port: int) -> list[str]:
    out = subprocess.run(
        ["make", "-n", "--no-print-directory", "server", f"SERVER_PORT={port}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if " server " in x and "mlflow" in x)
    argv = shlex.split(line)
    argv[0] = str(Path(sys.executable).parent / "mlflow")  # this venv's mlflow
    return argv


@pytest.fixture
def server(tmp_path):
    argv = _server_command(0)  # port 0: the OS gives uvicorn a free port when it binds
    assert argv[argv.index("--host") + 1] == "127.0.0.1"  # loopback only
    log = tmp_path / "server.log"  # a file, not a pipe: a full pipe would block the server
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(
            argv, cwd=tmp_path, env=project_env(), stdout=subprocess.DEVNULL, stderr=stderr
        )
    url = None
    deadline = time.time() + 120
    while True:
        if url is None:
            bound = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", log.read_text())
            url = bound and bound.group(1)
        if url is not None:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"mlflow server did not start: {log.read_text()[-2000:]}")
        time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    assert (tmp_path / "mlflow.db").is_file()  # the store is the project's sqlite file


def test_parallel_search_logs_every_trial_to_the_server(server, tmp_path):
    project = e2e.make_project(tmp_path / "project")  # tiny params, git + DVC
    cfg = yaml.safe_load((project / "params.yaml").read_text())
    cfg["search"]["budget"] = 4
    cfg["execution"].update({"backend": "dask", "workers": 2})
    cfg["search"]["fidelity"]["wave"] = 2  # ASHA's trials two at a time, one per worker
    (project / "params.yaml").write_text(yaml.safe_dump(cfg))
    env = {"MLFLOW_TRACKING_URI": server, "LEANML_PIPELINE": "srv"}
    out = e2e.sh(project, "dvc", "repro", "search@random", env=env)
    assert "trials run on dask LocalCluster, 2 worker processes" in out
    assert not (project / "mlflow.db").exists()  # nothing bypassed the server
    trials_csv = (project / "reports/search/random/trials.csv").read_text().splitlines()
    # every trial finished: trained to the end or stopped at ASHA's rung, none failed
    assert len(trials_csv) == 5
    assert all(",ok," in row or ",pruned," in row for row in trials_csv[1:])

    # where trials run is not a DVC param of the stage: changing it reruns nothing
    cfg["execution"].update({"backend": "serial", "workers": 1})
    (project / "params.yaml").write_text(yaml.safe_dump(cfg))
    assert "search@random" not in e2e.sh(project, "dvc", "status", env=env)

    import mlflow

    client = mlflow.MlflowClient(server)
    experiment = client.get_experiment_by_name("leanml")
    runs = client.search_runs([experiment.experiment_id])
    by_id = {r.info.run_id: r for r in runs}
    stage = next(r for r in runs if r.info.run_name == run_name("search@random"))
    trials = [r for r in runs if r.info.run_name.startswith("trial-")]
    assert sorted(r.info.run_name for r in trials) == [f"trial-{i:03d}" for i in range(4)]
    assert all(r.data.tags["mlflow.parentRunId"] == stage.info.run_id for r in trials)
    assert all(r.info.status == "FINISHED" for r in trials)
    assert "val_accuracy" in trials[0].data.metrics
    for r in trials:  # dated when its worker trained it (the driver logs on the result)
        seconds = r.data.metrics["seconds"]
        assert seconds > 0 and abs((r.info.end_time - r.info.start_time) / 1000 - seconds) < 0.01
        assert client.get_metric_history(r.info.run_id, "epoch_val_accuracy")  # its curve
    parent = by_id[stage.data.tags["mlflow.parentRunId"]]  # the pipeline run
    assert parent.data.tags.get("mlflow.parentRunId") is None
    assert stage.data.tags["execution"] == "dask LocalCluster, 2 worker processes"
