"""Runs left RUNNING by a killed process: tag each run with its process, close the dead ones.

A process killed with SIGKILL cannot end its own MLflow runs; the next stage that starts on the
same host finds them by the process tags below and ends them as KILLED.
"""

from __future__ import annotations

import socket
import sys

# The process that owns a RUNNING run: a run whose process died (kill -9) is closed as KILLED by
# the next stage that starts on the same host (`close_stale_runs`).
PID_TAG, HOST_TAG, STARTED_TAG = "leanml.pid", "leanml.host", "leanml.pid_started"
PARENT_TAG = "mlflow.parentRunId"


def process_tags() -> dict[str, str]:
    """Tags naming this process, so a run it leaves RUNNING can be recognised once it died."""
    import psutil

    me = psutil.Process()
    return {
        PID_TAG: str(me.pid),
        HOST_TAG: socket.gethostname(),
        STARTED_TAG: f"{me.create_time():.3f}",
    }


def _alive(pid: str, started: str | None) -> bool:
    """Whether process `pid` (created at `started`, when known) still runs on this host."""
    import psutil

    try:
        process = psutil.Process(int(pid))
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        if started and abs(process.create_time() - float(started)) > 1.0:
            return False  # the pid was reused by another process
    except (ValueError, psutil.NoSuchProcess):
        return False
    except psutil.Error:  # e.g. AccessDenied: it exists
        return True
    return True


def close_stale_runs(experiment_id: str) -> list[str]:
    """End as KILLED every RUNNING run whose process on this host is gone, and its RUNNING
    descendants (nested trial runs). A process killed with SIGKILL cannot close its own runs;
    runs of other hosts and of live processes are left alone. Returns the closed run ids."""
    import mlflow

    client = mlflow.MlflowClient()
    running = client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000
    )
    host = socket.gethostname()
    stale = {
        r.info.run_id
        for r in running
        if r.data.tags.get(HOST_TAG) == host
        and PID_TAG in r.data.tags
        and not _alive(r.data.tags[PID_TAG], r.data.tags.get(STARTED_TAG))
    }
    children: dict[str | None, list[str]] = {}
    for r in running:
        children.setdefault(r.data.tags.get(PARENT_TAG), []).append(r.info.run_id)
    # Orphans: a nested run still RUNNING under a parent that has ended (a stage interrupted
    # while it was opening a trial's run closes itself, not the half-opened child).
    ids = {r.info.run_id for r in running}
    for parent_id in set(children) - ids - {None}:
        try:
            parent = client.get_run(parent_id)
        except Exception:  # deleted or unreadable: leave its children alone
            continue
        if parent.data.tags.get(HOST_TAG) == host:
            stale.update(children[parent_id])
    todo = list(stale)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in stale:
                stale.add(child)
                todo.append(child)
    names = {r.info.run_id: r.info.run_name for r in running}
    for run_id in stale:
        client.set_terminated(run_id, "KILLED")
    if stale:
        shown = ", ".join(sorted(names[i] or i for i in stale))
        print(
            f"tracking: closed {len(stale)} run(s) left RUNNING by a killed process as KILLED "
            f"({shown})",
            file=sys.stderr,
        )
    return sorted(stale)
