"""Drive any ask/tell algorithm against an objective with one budget, a cache and a checkpoint.

- The budget counts trained evaluations and is never exceeded; a configuration seen before is
  answered from the cache (its row says so) and costs nothing.
- Every finished trial is appended to a JSONL checkpoint at once. After an interruption the
  search restarts from the same seed and replays the checkpoint instead of training, which
  rebuilds the algorithm's exact state, then continues live: the final result equals that of
  an uninterrupted run.
- A trial that raises, diverges, runs past `execution.trial_timeout` or loses its worker is
  recorded as failed with its reason and the worst score; the search goes on.
- The new configurations of one `ask` run concurrently on an executor (serial or Dask) and are
  consumed in trial order, so results do not depend on the number of workers.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from leanml import deadline
from leanml.search.base import Algorithm
from leanml.search.execution import SerialExecutor, WorkerLost
from leanml.search.space import Config, key

# Objective: (config, trial seed) -> {"val_accuracy", "params", "file_bytes", "status"}.
Objective = Callable[[Config, int], dict[str, Any]]


@dataclass
class Trial:
    """One row of the trials table."""

    proposal: int  # row number, from 0
    evaluation: int  # trained evaluations used so far, including this row
    config: Config
    val_accuracy: float
    params: int
    file_bytes: int
    seconds: float
    status: str  # ok | failed | diverged
    from_cache: bool
    seed: int
    score: float = 0.0
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def scalar_score(trial: Trial, kind: str, size_weight: float) -> float:
    """The one objective, maximised: val accuracy, or accuracy − w·log10(parameters)."""
    if not trial.ok:
        return -1.0 - 10.0 * size_weight  # below anything a finished trial can score
    if kind == "accuracy":
        return trial.val_accuracy
    return trial.val_accuracy - size_weight * math.log10(max(trial.params, 1))


def pareto_score(trial: Trial) -> tuple[float, float]:
    return (trial.val_accuracy, float(trial.params)) if trial.ok else (0.0, 1e12)


def trial_seed(seed: int, proposal: int) -> int:
    """Per-trial seed from the base seed and the trial index (independent of timing/workers)."""
    return (seed * 1_000_003 + proposal) % (2**31 - 1)


class Checkpoint:
    """Append-only JSONL: a header line with the fingerprint, then one finished trial per line."""

    def __init__(self, path: Path | None, fingerprint: str):
        self.path, self.fingerprint = path, fingerprint

    def load(self) -> list[Trial]:
        if self.path is None or not self.path.is_file():
            return []
        lines = self.path.read_text().splitlines()
        try:
            header = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            return []
        if header.get("fingerprint") != self.fingerprint:
            return []  # params or data changed: start over
        trials = []
        for line in lines[1:]:
            try:
                trials.append(Trial(**json.loads(line)))
            except (json.JSONDecodeError, TypeError):
                break  # a line cut short by a kill: everything before it is good
        return trials

    def start(self, kept: list[Trial]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as handle:
            handle.write(json.dumps({"fingerprint": self.fingerprint}) + "\n")
            for trial in kept:
                handle.write(json.dumps(asdict(trial)) + "\n")
        os.replace(tmp, self.path)

    def append(self, trial: Trial) -> None:
        if self.path is None:
            return
        with open(self.path, "a") as handle:
            handle.write(json.dumps(asdict(trial)) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


class Progress:
    """One line per trial on stderr: evaluations done, best so far, ETA."""

    def __init__(self, label: str, budget: int, show: bool):
        self.label, self.budget, self.show = label, budget, show
        self.start = time.perf_counter()
        self.trained_seconds: list[float] = []

    def update(self, trial: Trial, best: float, replayed: bool) -> None:
        if not trial.from_cache and not replayed:
            self.trained_seconds.append(trial.seconds)
        if not self.show:
            return
        left = self.budget - trial.evaluation
        per = sum(self.trained_seconds) / len(self.trained_seconds) if self.trained_seconds else 0
        how = "replayed" if replayed else ("cached" if trial.from_cache else trial.status)
        print(
            f"{self.label}: {trial.evaluation}/{self.budget} evaluations "
            f"[{how} {trial.val_accuracy:.4f}] best {best:.4f} eta {left * per:.0f}s",
            file=sys.stderr,
        )


def run(
    algorithm: Algorithm,
    objective: Objective,
    *,
    budget: int,
    kind: str = "accuracy",
    size_weight: float = 0.0,
    seed: int = 0,
    checkpoint: Checkpoint | None = None,
    on_trial: Callable[[Trial], None] | None = None,
    score: Callable[[Trial], float] | None = None,
    label: str = "search",
    progress: bool = True,
    max_proposals: int | None = None,
    executor: Any = None,
    trial_timeout: float | None = None,
    trial_kwargs: Callable[[Config], dict[str, Any]] | None = None,
) -> list[Trial]:
    """Run `algorithm` until `budget` trained evaluations (or it stops); return every row.

    `score` turns a finished trial into the number maximised (default: `scalar_score` with
    `kind` and `size_weight`). The new configurations of one `ask` are trained concurrently on
    `executor` (default: one after another in this process) and consumed in trial order, so
    the rows, checkpoint and algorithm state do not depend on the executor. `trial_kwargs`
    computes extra objective arguments here, in the driver, from a configuration.
    """
    executor = executor or SerialExecutor()
    executor.share(objective)
    checkpoint = checkpoint or Checkpoint(None, "")
    replay = checkpoint.load()
    checkpoint.start(replay)
    max_proposals = max_proposals or 20 * budget
    bar = Progress(label, budget, progress)
    trials: list[Trial] = []
    cache: dict[str, Trial] = {}
    used, best = 0, -math.inf

    def score_of(trial: Trial):
        if algorithm.pareto:
            return pareto_score(trial)
        return trial.score

    while used < budget and len(trials) < max_proposals:
        batch = algorithm.ask()
        if not batch:
            break
        # Plan the whole batch first (which rows replay, hit the cache or train), submit the
        # new ones together, then consume every row in order.
        plan: list[tuple[str, Any]] = []
        planned: set[str] = set()
        for config in batch:
            index = len(trials) + len(plan)
            if used >= budget or index >= max_proposals:
                break
            config_key = key(config)
            if index < len(replay) and key(replay[index].config) == config_key:
                plan.append(("replay", replay[index]))
                used = replay[index].evaluation
            elif config_key in cache or config_key in planned:
                plan.append(("cache", (config_key, index, used)))
            else:
                if index < len(replay):  # the replay diverged: drop the stale rest
                    replay = replay[:index]
                    checkpoint.start(replay)
                used += 1
                extra = trial_kwargs(config) if trial_kwargs else {}
                args = (config, index, used, seed, trial_timeout, extra)
                plan.append(("train", (config, index, used, executor.submit(_evaluate, *args))))
            planned.add(config_key)
        scores = []
        try:
            for how, item in plan:
                if how == "replay":
                    trial = item
                elif how == "cache":
                    config_key, index, evaluation = item
                    trial = Trial(
                        **{
                            **asdict(cache[config_key]),
                            "proposal": index,
                            "evaluation": evaluation,
                            "seconds": 0.0,
                            "from_cache": True,
                        }
                    )
                else:
                    config, index, evaluation, result = item
                    try:
                        trial = result()
                    except WorkerLost as exc:
                        trial = _failed(config, index, evaluation, seed, str(exc))
                    trial.score = score(trial) if score else scalar_score(trial, kind, size_weight)
                cache.setdefault(key(trial.config), trial)
                trials.append(trial)
                if how != "replay":
                    checkpoint.append(trial)
                    if on_trial:
                        on_trial(trial)
                best = max(best, trial.score)
                bar.update(trial, best, how == "replay")
                scores.append(score_of(trial))
        except BaseException:
            executor.cancel()  # interrupted: stop the trials still running elsewhere
            raise
        if len(scores) < len(batch):
            break  # budget spent part-way through a batch: nothing more to tell
        algorithm.tell(batch, scores)
    return trials


def _failed(config: Config, index: int, evaluation: int, seed: int, error: str) -> Trial:
    return Trial(
        proposal=index,
        evaluation=evaluation,
        config=dict(config),
        val_accuracy=0.0,
        params=0,
        file_bytes=0,
        seconds=0.0,
        status="failed",
        from_cache=False,
        seed=trial_seed(seed, index),
        error=error[:500],
    )


def _evaluate(
    objective: Objective,
    config: Config,
    index: int,
    evaluation: int,
    seed: int,
    timeout: float | None = None,
    extra: dict[str, Any] | None = None,
) -> Trial:
    """Train one trial (here or on a worker); never raises for a broken trial."""
    s = trial_seed(seed, index)
    start = time.perf_counter()
    try:
        with deadline.limit(timeout):
            out = objective(config, s, **(extra or {}))
        status, error = out.get("status", "ok"), out.get("error", "")
    except Exception as exc:  # a broken trial must not end the search
        out, status, error = {}, "failed", f"{type(exc).__name__}: {exc}"[:500]
    val = float(out.get("val_accuracy", 0.0))
    if status == "timeout":
        status = "failed"
        error = error or f"exceeded execution.trial_timeout ({timeout:g} s); training was stopped"
    if not math.isfinite(val):
        val, status = 0.0, "diverged"
    return Trial(
        proposal=index,
        evaluation=evaluation,
        config=dict(config),
        val_accuracy=val if status == "ok" else 0.0,
        params=int(out.get("params", 0)),
        file_bytes=int(out.get("file_bytes", 0)),
        seconds=time.perf_counter() - start,
        status=status,
        from_cache=False,
        seed=s,
        error=error or ("loss became NaN/inf" if status == "diverged" else ""),
        extra={
            k: v
            for k, v in out.items()
            if k not in {"val_accuracy", "params", "file_bytes", "status", "error"}
        },
    )


def convergence(trials: list[Trial]) -> list[dict[str, Any]]:
    """Best score and val accuracy so far after each trained evaluation."""
    rows, best, best_acc = [], -math.inf, 0.0
    for trial in trials:
        if trial.score > best:
            best = trial.score
        best_acc = max(best_acc, trial.val_accuracy)
        if not trial.from_cache:
            rows.append(
                {"evaluation": trial.evaluation, "best_score": best, "best_val_accuracy": best_acc}
            )
    return rows


def pareto_front(trials: list[Trial]) -> list[Trial]:
    """Finished trials that no other beats on both val accuracy (↑) and parameters (↓)."""
    done = {key(t.config): t for t in trials if t.ok and not t.from_cache}
    points = list(done.values())
    front = [
        t
        for t in points
        if not any(
            o.val_accuracy >= t.val_accuracy
            and o.params <= t.params
            and (o.val_accuracy > t.val_accuracy or o.params < t.params)
            for o in points
        )
    ]
    return sorted(front, key=lambda t: (t.params, -t.val_accuracy))


def best_trial(trials: list[Trial]) -> Trial | None:
    """Highest score; ties broken by fewer parameters, then by earlier trial."""
    done = [t for t in trials if t.ok]
    if not done:
        return None
    return max(done, key=lambda t: (t.score, t.val_accuracy, -t.params, -t.proposal))
