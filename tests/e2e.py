"""The end-to-end project shared by test_pipeline.py and test_determinism.py.

One temporary copy of the project on tiny params runs the whole pipeline with `dvc repro`
(`first`); a second copy with the same params (`twin`) runs the whole pipeline again, at the same
time, in the background, so that the determinism test costs one extra pipeline run that
overlaps the first instead of two more. `first`'s outputs are kept in a snapshot right after its
`dvc repro`; then test_pipeline.py's named DVC experiment runs on top of it.

All of it runs in the background from the start of the test session (`start`, called by
tests/conftest.py, which also moves the tests that use it to the end of the session): the
pipeline's minutes overlap the rest of the suite, whose tests mostly keep one of the two cores
busy, instead of running alone. `Background.result` waits for it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import yaml

from leanml.paths import members
from tests.conftest import copy_project, project_env

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


# One or two variants per compress method, one fine-tune epoch: the stages stay cheap here.
COMPRESS_TINY = {
    "prune": {"sparsities": [0.5], "epochs": 1, "structured": {"fractions": [0.5], "epochs": 1}},
    "quantize": {
        "tflite": {"modes": ["dynamic_int8"], "calibration_samples": 20},
        "ptq": {"bits": [4], "granularities": ["per_channel"], "schemes": ["symmetric"]},
        "qat": {"bits": [4], "epochs": 1},
    },
    "lowrank": {"values": [0.5], "epochs": 1},
    "combined": {"sparsities": [0.8], "bits": [4], "epochs": 1},
    "cluster": {"bits": [3], "epochs": 1},
    "auto": {
        "budget": 2,
        "trial_epochs": 1,
        "finalists": 1,
        "epochs": 1,
        "start_bits": [2],
        "algorithm_settings": {"n_startup_trials": 1},
    },
}
COMPRESS = members("compress")

# Two trained models per search algorithm, one epoch each.
SEARCH_TINY = {
    "budget": 3,
    "fit": {"epochs": 1, "early_stopping_patience": 0},
    # ASHA with one rung: a trial stops after 1 epoch or trains 2
    "fidelity": {"kind": "asha", "min_epochs": 1, "max_epochs": 2, "eta": 3},
    # the refit at the trials' own full fidelity: the pipeline test stays fast, and the refit
    # must then reproduce its trial exactly
    "final_fit": {"epochs": 2, "early_stopping_patience": 0},
    "ga": {"population": 2},
    "pso": {"particles": 2},
    "bayes": {"initial_points": 2, "acq_points": 100},
    "tpe": {"n_startup_trials": 2},
}
SEARCH = members("search")

# Two children per NAS strategy; a meta-dataset of one architecture per source task.
NAS_TINY = {
    "budget": 2,
    "fit": {"epochs": 1, "early_stopping_patience": 0},
    # as nas.fit (learning rate 0.003 in params.yaml): the refit reproduces its child
    "final_fit": {"epochs": 1, "early_stopping_patience": 0, "learning_rate": 0.003},
    "space": {"max_layers": 2},
    "rl": {"children_per_update": 1},
    "meta": {"source_architectures": 1, "source_epochs": 1, "synthetic_tasks": 0, "warm_start": 1},
}
NAS = members("nas")

# The folders of DVC outputs that the determinism test compares.
OUTPUTS = ("data", "models", "reports")
# test_pipeline.py's named DVC experiment on top of `first`'s `dvc repro`: one params change,
# compress.combined.epochs, the cheapest stage whose rerun shows what a change reruns
EXP = "combined-2"
EXP_SET = "compress.combined.epochs=2"


def sh(cwd, *cmd, timeout=600, env=None):
    done = subprocess.run(
        list(cmd),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=project_env({"LEANML_ROOT": str(cwd), **(env or {})}),
    )
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def make_project(root: Path) -> Path:
    """A copy of the project on the tiny params above, in a fresh git repository."""
    root = copy_project(root, COPY)
    cfg = yaml.safe_load((root / "params.yaml").read_text())
    cfg["train"]["epochs"] = 2
    cfg["train"]["model"]["mlp"]["hidden_units"] = [32]
    cfg["evaluate"]["measure"] = {"warmup": 1, "runs": 5, "batch_size": 32}
    cfg["compress"].update(COMPRESS_TINY)
    for family, tiny in (("nas", NAS_TINY), ("search", SEARCH_TINY)):
        for section, values in tiny.items():
            if isinstance(values, dict) and isinstance(cfg[family].get(section), dict):
                cfg[family][section].update(values)
            else:
                cfg[family][section] = values
    (root / "params.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    sh(root, "git", "init", "-q")
    sh(root, *"git -c user.name=t -c user.email=t@t commit -q --allow-empty -m init".split())
    return root


# The twin runs every stage of its dvc.yaml, in DVC's own order and with DVC's own commands,
# each in a forked child of one process that imported TensorFlow, Keras and MLflow once: the
# same stage code as under `dvc repro`, without ~6 s of imports per stage. A different way of
# running the same stages, with another PYTHONHASHSEED: results must not depend on either.
PRELOAD = [
    "tensorflow",
    "keras",
    "matplotlib.pyplot",
    "pandas",
    "git",
    "sqlalchemy",
    "alembic.command",
    "mlflow",
    "mlflow.keras",
    "mlflow.pyfunc",
    "mlflow.store.tracking.sqlalchemy_store",
    "sklearn.gaussian_process",
    "sklearn.ensemble",
    "skopt",
    "optuna",
    "deap.base",
    "pyswarms",
    *(
        f"leanml.{name}"
        for name in (
            "stage tracking train models report measure data compress evaluate report.evaluate "
            "report.leaderboard search search.ga search.pso search.bayes search.random search.tpe trials trials.study trials.runner "
            "nas nas.rl nas.meta nas.random nas.objective"
        ).split()
    ),
    # the compress registry imports a method on first use: preload every member's module
    *(f"leanml.compress.{name}" for name in COMPRESS),
]
DRIVER = """
import importlib, os, runpy, shlex, sys, time
import networkx as nx
from dvc.repo import Repo
import matplotlib
matplotlib.use("Agg")
for name in PRELOAD:  # what the stages import; a module that no longer exists is skipped
    try:
        importlib.import_module(name)
    except ImportError:
        pass

stages = list(reversed(list(nx.topological_sort(Repo(".").index.graph))))
print("stages:", " ".join(s.addressing for s in stages), flush=True)
for stage in stages:
    argv = shlex.split(stage.cmd)
    assert argv[0] == "python", stage.cmd
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            sys.argv = argv[1:]
            runpy.run_path(argv[1], run_name="__main__")
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
    print(f"{stage.addressing}: {time.perf_counter() - start:.1f} s", flush=True)
    if status != 0:
        sys.exit(f"{stage.addressing} failed ({status})")
"""


def start_pipeline(root: Path, hash_seed: str, log: Path) -> subprocess.Popen:
    """Run every stage of `root` in the background (see DRIVER); output goes to `log`."""
    env = project_env(
        {"LEANML_ROOT": str(root), "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(root)}
    )
    with open(log, "w") as handle:
        return subprocess.Popen(
            [sys.executable, "-c", f"PRELOAD = {PRELOAD!r}\n{DRIVER}"],
            cwd=root,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: cleanup stops its forked stages too
        )


def snapshot(root: Path, target: Path) -> Path:
    """Copy `root`'s output folders to `target` (DVC's .gitignore files left out)."""
    for name in OUTPUTS:
        if (root / name).is_dir():
            shutil.copytree(root / name, target / name, ignore=shutil.ignore_patterns(".gitignore"))
    return target


@dataclass
class Pipeline:
    root: Path  # `first`: test_pipeline.py keeps working in it
    first_repro: str  # the output of its `dvc repro`
    first_outputs: Path  # its outputs right after that `dvc repro`
    twin: Path
    twin_process: subprocess.Popen
    twin_log: Path
    # `dvc exp run -n EXP -S EXP_SET` on top of that `dvc repro`: its output, and the bytes of
    # compress@combined's models before it
    experiment: tuple[str, dict[str, bytes]]

    def wait_twin(self, timeout: float = 900) -> None:
        code = self.twin_process.wait(timeout=timeout)
        assert code == 0, f"the twin pipeline run failed:\n{self.twin_log.read_text()[-6000:]}"


class Background:
    """`first`'s `dvc repro`, snapshot and experiment in a thread, the twin alongside."""

    def __init__(self, base: Path) -> None:
        self.first = make_project(base / "project")
        self.twin = base / "twin"
        shutil.copytree(self.first, self.twin)
        self.base = base
        # the environment as the session started: tests change os.environ meanwhile
        # (monkeypatch), and the background commands must not see it
        self.env = project_env(
            {"LEANML_ROOT": str(self.first), "PYTHONHASHSEED": "1", "PYTHONPATH": str(self.first)}
        )
        self.twin_log = base / "twin.log"
        self.twin_process = start_pipeline(self.twin, "2", self.twin_log)
        self.current: subprocess.Popen | None = None
        self.stopped = False
        self.pipeline: Pipeline | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._first, name="e2e-first", daemon=True)
        self.thread.start()

    def _sh(self, *cmd: str, timeout: float = 3600) -> str:
        """`sh` for the background thread: the session's environment; `cleanup` can stop it."""
        log = self.base / "command.log"
        with open(log, "w") as handle:
            if self.stopped:
                raise RuntimeError("stopped")
            # its own process group: cleanup stops dvc and the stage it runs together
            self.current = subprocess.Popen(
                list(cmd),
                cwd=self.first,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
            code = self.current.wait(timeout=timeout)
        out = log.read_text()
        assert code == 0, f"{' '.join(cmd)} failed:\n{out}"
        return out

    def _first(self) -> None:
        try:
            # PYTHONPATH: both copies run their own copy of the code, not the editable install
            out = self._sh("dvc", "repro")
            outputs = snapshot(self.first, self.base / "first_outputs")
            self._sh("git", "add", "-A")
            self._sh(*"git -c user.name=t -c user.email=t@t commit -q -m base".split())
            models = self.first / "models/compress/combined"
            before = {f.name: f.read_bytes() for f in models.iterdir() if f.is_file()}
            exp = self._sh("dvc", "exp", "run", "-n", EXP, "-S", EXP_SET)
            self.pipeline = Pipeline(
                self.first,
                out,
                outputs,
                self.twin,
                self.twin_process,
                self.twin_log,
                (exp, before),
            )
        except BaseException as exc:  # shown by `result`, in the tests that need the run
            self.error = exc

    def result(self, timeout: float = 3600) -> Pipeline:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the end-to-end run took over {timeout} s"
        if self.error is not None:
            raise self.error
        assert self.pipeline is not None
        return self.pipeline


def start(base: Path) -> Background:
    """`first` runs `dvc repro` (then the experiment) while `twin` (same params) runs the same
    stages alongside; both in the background."""
    return Background(base)


def cleanup(run: Background) -> None:
    run.stopped = True
    if run.current is not None and run.current.poll() is None:
        os.killpg(run.current.pid, signal.SIGKILL)
        run.current.wait()
    if run.twin_process.poll() is None:
        os.killpg(run.twin_process.pid, signal.SIGKILL)
        run.twin_process.wait()
    run.thread.join(60)
