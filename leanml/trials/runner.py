"""Drive any ask/tell algorithm against an objective with one budget, a cache and a checkpoint.

- The budget counts trained evaluations and is never exceeded; a configuration seen before is
  answered from the cache (its row says so) and costs nothing. An optional `epoch_budget`
  counts training epochs too: no trial starts once the epochs spent reach it (the trials of the
  last batch may finish past it; `epochs` on every row says what each used).
- With a multi-fidelity plan (`trials.fidelity`: ASHA or Hyperband) each trial gets the rung
  rule from the trials finished before its batch and may stop early, `pruned`.
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

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from leanml import deadline
from leanml.report.pareto import non_dominated
from leanml.stage import raise_if_interrupted
from leanml.trials.base import Algorithm, Config, Trial, key
from leanml.trials.checkpoint import Checkpoint
from leanml.trials.execution import SerialExecutor, WorkerLost
from leanml.trials.fidelity import Plan

# Objective: (config, trial seed) -> {"val_accuracy", "params", "file_bytes", "status"}.
Objective = Callable[[Config, int], dict[str, Any]]
# Score: a finished (or failed) trial -> the number maximised.
ScoreFn = Callable[[Trial], float]


def accuracy(trial: Trial) -> float:
    """The default score: val accuracy; a failed trial scores below any finished one."""
    return trial.val_accuracy if trial.ok else -1.0


def pareto_score(trial: Trial) -> tuple[float, float]:
    return (trial.val_accuracy, float(trial.params)) if trial.ok else (0.0, 1e12)


def trial_seed(seed: int, proposal: int) -> int:
    """Per-trial seed from the base seed and the trial index (independent of timing/workers)."""
    return (seed * 1_000_003 + proposal) % (2**31 - 1)


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
    seed: int = 0,
    score: ScoreFn = accuracy,
    checkpoint: Checkpoint | None = None,
    on_trial: Callable[[Trial], None] | None = None,
    label: str = "search",
    progress: bool = True,
    executor: Any = None,
    trial_timeout: float | None = None,
    trial_kwargs: Callable[[Config], dict[str, Any]] | None = None,
    epoch_budget: int | None = None,
    fidelity: Plan | None = None,
) -> list[Trial]:
    """Run `algorithm` until `budget` trained evaluations (or it stops); return every row.

    `score` turns a trial into the number maximised (failed trials included). The new
    configurations of one `ask` are trained concurrently on `executor` (default: one after
    another in this process) and consumed in trial order, so the rows, checkpoint and
    algorithm state do not depend on the executor. `trial_kwargs`
    computes extra objective arguments here, in the driver, from a configuration. With an
    active `fidelity` plan the objective also gets `stop=` (a `fidelity.RungStop`).
    """
    fidelity = fidelity or Plan()
    executor = executor or SerialExecutor()
    executor.share(objective)
    checkpoint = checkpoint or Checkpoint(None, "")
    replay = checkpoint.load()
    checkpoint.start(replay)
    max_proposals = 20 * budget  # an algorithm that only re-proposes seen configs must end
    bar = Progress(label, budget, progress)
    trials: list[Trial] = []
    cache: dict[str, Trial] = {}
    used, best, epochs_used = 0, -math.inf, 0

    def epochs_left(planned: int) -> bool:
        # each trial planned in this batch will run at least its first rung (or one epoch)
        return epoch_budget is None or epochs_used + planned * fidelity.min_epochs < epoch_budget

    def score_of(trial: Trial):
        if algorithm.pareto:
            return pareto_score(trial)
        return trial.score

    while used < budget and epochs_left(0) and len(trials) < max_proposals:
        batch = algorithm.ask()
        if not batch:
            break
        # Under rungs a batch runs in waves of `fidelity.wave` trials, each wave deciding on the
        # rungs of the waves before it; otherwise the whole batch is one wave.
        size = fidelity.wave if fidelity.active else len(batch)
        scores: list[Any] = []
        for wave in [batch[i : i + size] for i in range(0, len(batch), size)]:
            # Plan the whole wave first (which rows replay, hit the cache or train), submit the
            # new ones together, then consume every row in order.
            plan: list[tuple[str, Any]] = []
            planned: set[str] = set()
            fresh = 0  # trainings planned in this wave (replayed ones included)
            for config in wave:
                index = len(trials) + len(plan)
                if used >= budget or index >= max_proposals or not epochs_left(fresh):
                    break
                config_key = key(config)
                if index < len(replay) and key(replay[index].config) == config_key:
                    plan.append(("replay", replay[index]))
                    used = replay[index].evaluation
                    fresh += not replay[index].from_cache
                elif config_key in cache or config_key in planned:
                    plan.append(("cache", (config_key, index, used)))
                else:
                    if index < len(replay):  # the replay diverged: drop the stale rest
                        replay = replay[:index]
                        checkpoint.start(replay)
                    used += 1
                    fresh += 1
                    extra = trial_kwargs(config) if trial_kwargs else {}
                    if fidelity.active:  # the rungs as recorded by the waves before
                        extra["stop"] = fidelity.stop_for(index, trials)
                    args = (config, index, used, seed, trial_timeout, extra)
                    plan.append(("train", (config, index, used, executor.submit(_evaluate, *args))))
                planned.add(config_key)
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
                                "epochs": 0,
                                "from_cache": True,
                            }
                        )
                    else:
                        config, index, evaluation, result = item
                        try:
                            trial = result()
                        except WorkerLost as exc:
                            trial = _failed(config, index, evaluation, seed, str(exc))
                        trial.score = score(trial)
                    cache.setdefault(key(trial.config), trial)
                    trials.append(trial)
                    epochs_used += trial.epochs
                    if how != "replay":
                        checkpoint.append(trial)
                        if on_trial:
                            on_trial(trial)
                    best = max(best, trial.score)
                    bar.update(trial, best, how == "replay")
                    scores.append(score_of(trial))
                    raise_if_interrupted()  # between trials: never lose a Ctrl-C or SIGTERM
            except BaseException:
                executor.cancel()  # interrupted: stop the trials still running elsewhere
                raise
            if len(plan) < len(wave):
                break  # budget spent part-way through a wave
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
    started_ms = int(time.time() * 1000)  # when it began training, for its MLflow run's span
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
        val_accuracy=val if status in ("ok", "pruned") else 0.0,
        params=int(out.get("params", 0)),
        file_bytes=int(out.get("file_bytes", 0)),
        seconds=time.perf_counter() - start,
        status=status,
        from_cache=False,
        seed=s,
        error=error or ("loss became NaN/inf" if status == "diverged" else ""),
        extra={
            **{
                k: v
                for k, v in out.items()
                if k not in {"val_accuracy", "params", "file_bytes", "status", "error"}
            },
            "started_ms": started_ms,
        },
        epochs=int(out.get("epochs_run", 0)),
    )


def convergence(trials: list[Trial]) -> list[dict[str, Any]]:
    """Best score and val accuracy so far after each trained evaluation, and the epochs spent."""
    rows, best, best_acc, epochs = [], -math.inf, 0.0, 0
    for trial in trials:
        if trial.score > best:
            best = trial.score
        best_acc = max(best_acc, trial.val_accuracy)
        epochs += trial.epochs
        if not trial.from_cache:
            rows.append(
                {
                    "evaluation": trial.evaluation,
                    "epochs": epochs,
                    "best_score": best,
                    "best_val_accuracy": best_acc,
                }
            )
    return rows


def pareto_front(trials: list[Trial]) -> list[Trial]:
    """Finished trials that no other beats on both val accuracy (↑) and parameters (↓)."""
    done = {key(t.config): t for t in trials if t.ok and not t.from_cache}
    points = list(done.values())
    flags = non_dominated([(t.val_accuracy, t.params) for t in points])
    front = [t for t, keep in zip(points, flags, strict=True) if keep]
    return sorted(front, key=lambda t: (t.params, -t.val_accuracy))


def best_trial(trials: list[Trial]) -> Trial | None:
    """Highest score among the trials trained to the end (pruned ones only if none was: their
    scores are at a lower fidelity); ties broken by fewer parameters, then by earlier trial."""
    done = [t for t in trials if t.ok]
    if not done:
        return None
    return max(done, key=lambda t: (not t.pruned, t.score, t.val_accuracy, -t.params, -t.proposal))
