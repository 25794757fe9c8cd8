"""Multi-fidelity trials: ASHA and asynchronous Hyperband rungs, decided the same on any worker.

A trial trains up to `max_epochs` and reports its val accuracy after every epoch. At each rung
(min_epochs·eta^k epochs, below max_epochs) it goes on only if its value is in the top 1/eta of
the values recorded at that rung (its own included); otherwise it stops there, `pruned`, and its
score is its val accuracy at that epoch — the score at the fidelity reached, which every
algorithm (BO, TPE, the RL controller, the meta surrogate) is told like any other score.

Determinism: trials start in waves of `wave` (default 1; an algorithm's batch — a GA
generation, a PSO swarm, random's samples — is cut into waves). The values a trial is compared
with are those of the trials of earlier waves (a snapshot handed to the trial, `RungStop`),
never those of trials running beside it. So the decisions depend on the trial order and `wave`
only, not on timing or on the number of workers (set `wave` to the number of workers to keep
them busy), and a resumed search replays them exactly (each trial's per-epoch curve is in the
checkpoint). With waves of one this is ASHA (Li et al., 2020) run sequentially.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from leanml.params import Fidelity, Fit
from leanml.trials.base import Trial


def trial_fit(fit: Fit, cfg: Fidelity) -> Fit:
    """A trial's fit settings: `fit`, trained up to `max_epochs` when rungs may stop it."""
    if cfg.kind == "none":
        return fit
    return Fit.model_validate({**fit.model_dump(), "epochs": cfg.max_epochs})


@dataclass(frozen=True)
class Plan:
    """Where the rungs are: `kind` none | asha | hyperband, epochs min/max, reduction eta."""

    kind: str = "none"
    min_epochs: int = 1
    max_epochs: int = 1
    eta: int = 3
    wave: int = 1  # trials started together: they do not see each other's rung values

    @classmethod
    def of(cls, cfg: Any, fit_epochs: int = 1) -> Plan:
        """From a `Fidelity` params section (None: no rungs). Without rungs every trial is
        expected to train `fit_epochs` (what an epoch budget counts before a trial runs)."""
        if cfg is None or cfg.kind == "none":
            return cls(min_epochs=fit_epochs, max_epochs=fit_epochs)
        return cls(cfg.kind, cfg.min_epochs, cfg.max_epochs, cfg.eta, cfg.wave)

    @property
    def active(self) -> bool:
        return self.kind != "none"

    @property
    def brackets(self) -> int:
        """Hyperband's brackets: one per rung a bracket can start at, plus one without rungs
        (every trial at max_epochs); ASHA: one."""
        if self.kind != "hyperband":
            return 1
        return len(self.rungs(0)) + 1

    def bracket(self, proposal: int) -> int:
        return proposal % self.brackets

    def rungs(self, bracket: int = 0) -> list[int]:
        """The epochs at which trials of `bracket` are compared (all below max_epochs)."""
        if not self.active:
            return []
        out, epochs = [], self.min_epochs * self.eta**bracket
        while epochs < self.max_epochs:
            out.append(epochs)
            epochs *= self.eta
        return out

    def stop_for(self, proposal: int, finished: Iterable[Trial]) -> RungStop | None:
        """The rule trial `proposal` runs under, from the trials finished before its batch."""
        if not self.active:
            return None
        bracket = self.bracket(proposal)
        rungs = self.rungs(bracket)
        seen: dict[int, list[float]] = {r: [] for r in rungs}
        for trial in finished:
            curve = trial.extra.get("val_curve") or []
            if trial.from_cache or self.bracket(trial.proposal) != bracket:
                continue
            for r in rungs:
                if len(curve) >= r:
                    seen[r].append(float(curve[r - 1]))
        return RungStop(self.eta, tuple((r, tuple(sorted(v))) for r, v in seen.items()))


@dataclass(frozen=True)
class RungStop:
    """One trial's stopping rule: its rungs and the values recorded there before it started.

    Plain data (picklable), so a Dask worker decides exactly as the driver would.
    """

    eta: int
    rungs: tuple[tuple[int, tuple[float, ...]], ...]  # (epoch, values of earlier trials)

    def keep_going(self, epoch: int, value: float) -> bool:
        """False if `value` after `epoch` epochs is not in the top 1/eta of its rung."""
        for rung, earlier in self.rungs:
            if rung == epoch:
                return promoted(value, earlier, self.eta)
        return True

    __call__ = keep_going  # a `train.StopRule`


def promoted(value: float, earlier: Iterable[float], eta: int) -> bool:
    """ASHA's rule: among the rung's n values (this one included) the top max(1, n // eta) go on.

    Ties with the cut-off value go on. A NaN value never does.
    """
    if not math.isfinite(value):
        return False
    values = sorted([*earlier, value], reverse=True)
    keep = max(1, len(values) // eta)
    return value >= values[keep - 1]
