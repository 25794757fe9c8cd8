"""Where a run comes from: the git commit (and whether the work tree differs from it, leaving
out what `dvc repro` itself writes), the stage, the DVC experiment, a hash of the params the stage
read, its seed. Every stage run and every run nested under it carries these tags (`tracking`);
and the datasets a stage reads, as MLflow dataset inputs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import warnings
from typing import Any

from leanml.params.util import flatten
from leanml.paths import project_root


def git_tags() -> dict[str, str]:
    def git(*args: str) -> str:
        try:
            out = subprocess.run(
                ["git", *args], capture_output=True, text=True, timeout=10, cwd=project_root()
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    # "XY path" or "R  old -> new" per line (the output's leading blank is stripped)
    status = git("status", "--porcelain", "--untracked-files=no").splitlines()
    changed = [line.split(maxsplit=1)[-1].split(" -> ")[-1].strip('"') for line in status]
    dirty = any(not written_by_dvc(path) for path in changed)
    return {"git.commit": commit or "unknown", "git.dirty": str(dirty).lower()}


# What `dvc repro` itself rewrites in git-tracked files: the lock file and the `cache: false`
# outputs under reports/ (metrics, tables). A change there is the run, not a dirty work tree.
DVC_WRITTEN = ("dvc.lock", "reports/")


def written_by_dvc(path: str) -> bool:
    return path == DVC_WRITTEN[0] or path.startswith(DVC_WRITTEN[1:])


def provenance(stage: str, params: Any, tags: dict | None) -> dict[str, str]:
    """The tags every run of a stage carries, nested runs included: where the code came from,
    which stage, which DVC experiment, a hash of the params the stage read, and its seed."""
    flat = json.dumps({k: str(v) for k, v in flatten(params or {}).items()}, sort_keys=True)
    out = {
        "stage": stage,
        **git_tags(),
        "params.sha256": hashlib.sha256(flat.encode()).hexdigest(),
    }
    if os.environ.get("DVC_EXP_NAME"):
        out["dvc.experiment"] = os.environ["DVC_EXP_NAME"]
    if tags and "seed" in tags:
        out["seed"] = str(tags["seed"])
    return out


def log_datasets(splits: Any, card: dict[str, Any], names: tuple[str, ...]) -> None:
    """The prepared splits `names` as dataset inputs of the active run (the runs table's Dataset
    column): name `<dataset>/<split>`, digest = the prepared data's checksum."""
    import mlflow
    import mlflow.data

    source = str(project_root() / "data" / "prepared")
    for name in names:
        split = getattr(splits, name)
        with warnings.catch_warnings():  # "source can be interpreted in multiple ways"
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_numpy(
                split.x,
                targets=split.y,
                source=source,
                name=f"{card['dataset']}/{name}",
                digest=card["sha256"][:16],
            )
        mlflow.log_input(dataset, context=name)
