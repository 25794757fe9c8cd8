"""Foundation benchmark: default `dvc repro` wall time, no-op `dvc repro`, train-stage overhead.

Run from the project root with the venv active (`make bench`). It forces a full rerun, so the
workspace's outputs are rebuilt with the current params.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    full = timed(["dvc", "repro", "-f"])
    noop = [timed(["dvc", "repro"]) for _ in range(3)]
    train_wall = timed([sys.executable, "stages/train.py"])
    fit = json.loads((ROOT / "reports/train/timings.json").read_text())["fit_seconds"]
    imports = timed(
        [sys.executable, "-c", "import leanml.train, leanml.measure, leanml.tracking, mlflow"]
    )
    figures = {
        "full_repro_s": round(full, 1),
        "noop_repro_s_median_of_3": round(statistics.median(noop), 2),
        "train_stage_wall_s": round(train_wall, 1),
        "train_fit_s": round(fit, 1),
        "train_non_fit_share": round(1 - fit / train_wall, 2),
        "python_start_and_imports_s": round(imports, 1),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
