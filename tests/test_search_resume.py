"""Real search and NAS processes interrupted mid-run (SIGINT, SIGKILL) resume from their checkpoint;
the stage's fingerprint keeps it across a tracking change and drops it on a params change."""

import json
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from leanml.tracking import run_name
from tests.conftest import copy_project, project_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A copy of the project on small params with its data prepared, made once: each test
    works on its own copy of it (below), without paying for the prepare stage again."""
    root = copy_project(tmp_path_factory.mktemp("prepared"))
    cfg = yaml.safe_load((root / "params.yaml").read_text())
    cfg["search"]["budget"] = 4
    cfg["search"]["ga"]["population"] = 2
    cfg["search"]["pso"]["particles"] = 2
    cfg["search"]["bayes"]["initial_points"] = 2
    cfg["search"]["fit"].update({"epochs": 2, "early_stopping_patience": 0})
    # ASHA with one rung (1 epoch, else 2): the killed and resumed searches replay the rungs
    cfg["search"]["fidelity"] = {"kind": "asha", "min_epochs": 1, "max_epochs": 2, "eta": 3}
    # no train stage here: no baseline trial and no baseline model to compare the winner with
    cfg["search"]["include_baseline"] = False
    cfg["nas"]["include_baseline"] = False
    # the winner's refit at one epoch (null would be train's 30): these tests are about the
    # trials and their checkpoint, and a refit runs after every finished search or NAS
    cfg["search"]["final_fit"] = {"epochs": 1, "early_stopping_patience": 0}
    cfg["nas"]["budget"] = 4
    cfg["nas"]["fit"].update({"epochs": 1, "early_stopping_patience": 0})
    cfg["nas"]["final_fit"] = {"epochs": 1, "early_stopping_patience": 0}
    cfg["nas"]["space"]["max_layers"] = 2
    cfg["nas"]["enas"]["children"] = 4  # enas trains its 4 best candidates (the budget)
    (root / "params.yaml").write_text(yaml.safe_dump(cfg))
    env = project_env({"LEANML_ROOT": str(root), "LEANML_PIPELINE": "resume-test"})
    subprocess.run(
        [sys.executable, "stages/prepare.py"],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return root


def _copy(prepared, root):
    """Code, params and prepared data; not prepare's MLflow store: each copy starts its own."""
    for name in ("stages", "leanml", "params.yaml", "data"):
        src = prepared / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, root / name)
    return root, project_env({"LEANML_ROOT": str(root), "LEANML_PIPELINE": "resume-test"})


def _start(project, env, stage="search", item="random"):
    return subprocess.Popen(
        [sys.executable, f"stages/{stage}.py", item],
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


@pytest.fixture(scope="module")
def interrupted(prepared, tmp_path_factory):
    """A search interrupted (SIGINT), then SIGKILLed, then resumed to its end, in a project of
    its own: what each step returned and left. test_interrupt_then_kill_then_resume checks it;
    the tracking-change test goes on from a copy of the finished project (so the search
    that both need runs once)."""
    root, env = _copy(prepared, tmp_path_factory.mktemp("interrupted"))
    checkpoint = root / "models/search/random/checkpoint.jsonl"
    steps = {}

    proc = _start(root, env)
    _wait_for_trials(checkpoint, 1, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    half_results = (root / "reports/search/random/metrics.json").exists()
    steps["sigint"] = (proc.returncode, err, half_results)

    proc = _start(root, env)
    _wait_for_trials(checkpoint, 2, proc)
    proc.kill()  # SIGKILL: no chance to clean up
    proc.wait(timeout=60)
    steps["sigkill"] = (proc.pid, len(checkpoint.read_text().splitlines()) - 1)

    proc = _start(root, env)
    _, err = proc.communicate(timeout=600)
    steps["resume"] = (proc.returncode, err)
    return root, env, steps


def test_interrupt_then_kill_then_resume(interrupted):
    root, _, steps = interrupted
    code, err, half_results = steps["sigint"]
    assert code == 130 and "interrupted" in err and "Traceback" not in err, (code, err[-3000:])
    assert not half_results  # no metrics.json right after the interrupted run

    killed_pid, done_before = steps["sigkill"]
    code, err = steps["resume"]
    assert code == 0, err
    assert err.count("[replayed") == done_before  # finished trials were not retrained
    metrics = json.loads((root / "reports/search/random/metrics.json").read_text())
    assert metrics["evaluations"] == 4

    assert "tracking: closed" in err  # the SIGKILLed process's runs, by the resumed stage

    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{root}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("leanml").experiment_id])
    assert [r.info.run_name for r in runs if r.info.status == "RUNNING"] == []
    stage_runs = [r for r in runs if r.info.run_name == run_name("search@random")]
    # SIGINT: closed KILLED by the process itself; SIGKILL: left RUNNING, closed KILLED on resume
    assert sorted(r.info.status for r in stage_runs) == ["FINISHED", "KILLED", "KILLED"]
    sigkilled = next(r for r in stage_runs if r.data.tags["leanml.pid"] == str(killed_pid))
    assert sigkilled.info.status == "KILLED"


def _edit_params(root, section, key, value):
    cfg = yaml.safe_load((root / "params.yaml").read_text())
    cfg[section][key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(cfg))


def _finish(root, env, stage="search", item="random"):
    proc = _start(root, env, stage, item)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return err


def test_tracking_change_keeps_the_checkpoint_and_params_change_drops_it(interrupted, tmp_path):
    # two copies of the finished search of the fixture above (its 4 trials in the checkpoint),
    # one change in each, the two stages run side by side
    finished, _, steps = interrupted
    assert steps["resume"][0] == 0, steps["resume"][1]
    changes = {
        # another MLflow experiment: where runs are recorded changes no trial, nothing retrains
        "tracking": ("base", "tracking", {"uri": None, "experiment": "moved"}),
        "params": ("search", "objective", {"kind": "tradeoff", "size_weight": 0.05}),
    }
    procs = {}
    for name, (section, key, value) in changes.items():
        root = tmp_path / name
        shutil.copytree(finished, root)
        env = project_env({"LEANML_ROOT": str(root), "LEANML_PIPELINE": "resume-test"})
        _edit_params(root, section, key, value)
        procs[name] = _start(root, env)
    with ThreadPoolExecutor(len(procs)) as pool:  # both pipes drained at once
        outs = {name: pool.submit(proc.communicate, timeout=600) for name, proc in procs.items()}
    err = {name: out.result()[1] for name, out in outs.items()}
    for name, proc in procs.items():
        assert proc.returncode == 0, err[name]
    assert err["tracking"].count("[replayed") == 4
    assert err["params"].count("[replayed") == 0


def _table(path):
    # every column but the wall-clock seconds
    rows = [line.split(",") for line in path.read_text().splitlines()]
    drop = rows[0].index("seconds")
    return [row[:drop] + row[drop + 1 :] for row in rows]


@pytest.mark.parametrize("strategy", ["rl", "enas"])
def test_nas_killed_mid_run_resumes_to_the_uninterrupted_result(prepared, tmp_path, strategy):
    # the uninterrupted run, in a copy of its own, alongside the run that gets killed (the two
    # processes share the two cores instead of running one after the other)
    reference, ref_env = _copy(prepared, tmp_path / "reference")
    root, env = _copy(prepared, tmp_path / "killed")
    uninterrupted = _start(reference, ref_env, "nas", strategy)
    out, models = root / f"reports/nas/{strategy}", root / f"models/nas/{strategy}"

    proc = _start(root, env, "nas", strategy)
    # rl: mid-way through update 2; enas: after its supernet phase, 3 of its 4 children
    _wait_for_trials(models / "checkpoint.jsonl", 3, proc)
    proc.kill()
    proc.wait(timeout=60)
    done_before = len((models / "checkpoint.jsonl").read_text().splitlines()) - 1
    assert done_before < 4, "killed after the last child: nothing left to resume"
    _, ref_err = uninterrupted.communicate(timeout=600)
    assert uninterrupted.returncode == 0, ref_err
    err = _finish(root, env, "nas", strategy)
    assert err.count("[replayed") == done_before  # finished children were not retrained
    ref_out = reference / f"reports/nas/{strategy}"
    assert _table(out / "trials.csv") == _table(ref_out / "trials.csv")
    # the controller's log, too (enas: its supernet phase, redone by the resumed run)
    assert (out / "strategy.json").read_text() == (ref_out / "strategy.json").read_text()
    if strategy == "enas":
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["controller_updates"] == 100 and metrics["evaluations"] == 4
        assert (out / "metrics.json").read_text() == (ref_out / "metrics.json").read_text()
        assert json.loads((out / "timings.json").read_text())["supernet_seconds"] > 0
