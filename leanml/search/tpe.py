"""Tree-structured Parzen Estimator with Optuna's `TPESampler` over an in-memory ask/tell study."""

from __future__ import annotations

from typing import Any

from leanml.search.space import Dim
from leanml.trials.base import Algorithm, Config, Score


def _distribution(d: Dim) -> Any:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if d.type == "categorical":
        return CategoricalDistribution(list(d.choices))
    if d.type == "int":
        return IntDistribution(int(d.low), int(d.high))
    return FloatDistribution(float(d.low), float(d.high), log=d.log)


class TPESearch(Algorithm):
    """Optuna TPE: `n_startup_trials` random points, then the good/bad density ratio's best.

    The study lives in memory and is rebuilt from the seed: the runner's resume replays the
    checkpoint's scores through ask/tell, which reproduces the sampler's state exactly.
    Configurations in `initial` are enqueued, so they are the first trials TPE learns from.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        import optuna

        # Optuna logs every trial on stderr by default; the runner reports progress itself
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        cfg = self.cfg.tpe
        sampler = optuna.samplers.TPESampler(
            seed=self.seed,
            n_startup_trials=cfg.n_startup_trials,
            n_ei_candidates=cfg.n_ei_candidates,
            multivariate=cfg.multivariate,
            constant_liar=cfg.constant_liar,
        )
        # no storage: an in-memory study, nothing written to disk
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self.distributions = {d.name: _distribution(d) for d in self.space.dims}
        for config in self.take_initial():  # enqueued: TPE's first trials, in order
            if not self.space.contains(config):
                raise ValueError(f"initial configuration outside the search space: {config}")
            self.study.enqueue_trial(config)
        self.pending: list[Any] = []

    def ask(self) -> list[Config]:
        # a batch for parallel workers: with constant_liar the trials asked but not yet told
        # count as bad ones, so the batch's points spread out
        self.pending = [self.study.ask(self.distributions) for _ in range(self.cfg.tpe.batch)]
        return [
            {d.name: _native(d, trial.params[d.name]) for d in self.space.dims}
            for trial in self.pending
        ]

    def tell(self, configs: list[Config], scores: list[Score]) -> None:
        # failed trials arrive as the runner's worst score, so TPE learns to avoid them too
        for trial, score in zip(self.pending, scores, strict=True):
            self.study.tell(trial, float(score))
        self.pending = []


def _native(d: Dim, value: Any) -> Any:
    if d.type == "categorical":  # the choice object itself, as the other algorithms return it
        return d.choices[d.choices.index(value)]
    return int(value) if d.type == "int" else float(value)
