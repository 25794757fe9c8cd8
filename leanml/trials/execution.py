"""Where trials run: in this process (`serial`) or on Dask workers (`dask`), per `execution`.

The runner hands every executor the same thing: `share(obj)` once for the objective (with its
data), then `submit(fn, *args)` per trial, which runs `fn(obj, *args)`, and reads results back
in trial order. Executors never
change what is computed: per-trial seeds come from the trial index, so a search gives the same
trials on 1, 2 or 64 workers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from leanml.errors import LeanmlError

# What each Dask worker process gets: one thread for TensorFlow's pools and for BLAS, so two
# workers on two cores do not fight over them.
WORKER_ENV = {
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_ENABLE_ONEDNN_OPTS": "0",
}
CONNECT_TIMEOUT = "15s"  # to reach an existing scheduler (`execution.address`)


class SerialExecutor:
    """Run each trial in this process when its result is read (the default)."""

    description = "serial (this process)"
    obj: Any = None

    def share(self, obj: Any) -> None:
        self.obj = obj

    def submit(self, fn: Callable, *args: Any) -> Callable[[], Any]:
        return lambda: fn(self.obj, *args)

    def cancel(self) -> None:
        pass

    def close(self) -> None:
        pass


class WorkerLost(Exception):
    """The worker running a trial died (twice: Dask retries it once elsewhere)."""


class DaskExecutor:
    """Trials as Dask tasks: a `LocalCluster` of processes, or an existing scheduler."""

    def __init__(self, workers: int, address: str | None = None):
        import dask
        from dask.distributed import Client, LocalCluster

        logging.getLogger("distributed").setLevel(logging.ERROR)
        self.cluster = None
        self.futures: list[Any] = []
        # a task whose worker dies is retried once, then fails as KilledWorker
        with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
            if address is None:
                self.cluster = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address="127.0.0.1:0",  # loopback only, any free port
                    silence_logs=logging.ERROR,
                    env=WORKER_ENV,
                )
                self.client = Client(self.cluster)
                self.description = f"dask LocalCluster, {workers} worker processes"
            else:
                try:
                    self.client = Client(address, timeout=CONNECT_TIMEOUT)
                except OSError as exc:
                    raise LeanmlError(
                        f"execution.address: cannot reach a Dask scheduler at {address!r} ({exc}); "
                        "start one (`dask scheduler`, then `dask worker <address>` per machine) "
                        "or set execution.address: null for a local cluster"
                    ) from None
                n = len(self.client.scheduler_info().get("workers", {}))
                self.description = f"dask scheduler {address}, {n} workers"

    def share(self, obj: Any) -> None:
        """Send `obj` (the objective and its data) to every worker once, when first needed."""
        self.obj, self.handle = obj, None

    def _shared(self) -> Any:
        if self.handle is None:  # first use, or the copies went down with their workers
            self.handle = self.client.scatter(self.obj, broadcast=True, hash=False)
        return self.handle

    def submit(self, fn: Callable, *args: Any) -> Callable[[], Any]:
        from dask.distributed import KilledWorker

        def start() -> Any:
            future = self.client.submit(fn, self._shared(), *args, pure=False)
            self.futures.append(future)
            return future

        future = start()

        def result() -> Any:
            nonlocal future
            for attempt in (1, 2):
                try:
                    return future.result()
                except KilledWorker as exc:  # Dask already retried it once on another worker
                    self.handle = None
                    raise WorkerLost(
                        f"worker died running this trial (retried once): {exc}"
                    ) from None
                except (Exception, asyncio.CancelledError) as exc:
                    # `fn` never raises for a trial: the task could not run (e.g. its copy of
                    # the objective was lost with a worker). Send the objective again, retry once.
                    self.handle = None
                    if attempt == 2:
                        raise WorkerLost(
                            f"worker lost while running this trial (retried once): {exc!r}"
                        ) from None
                    future = start()

        return result

    def cancel(self) -> None:
        if self.futures:
            self.client.cancel(self.futures, force=True)
            self.futures = []

    def close(self) -> None:
        self.cancel()
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def create(cfg: Any) -> SerialExecutor | DaskExecutor:
    """The executor `execution` params ask for."""
    if cfg is None or cfg.backend == "serial":
        return SerialExecutor()
    return DaskExecutor(cfg.workers, cfg.address)
