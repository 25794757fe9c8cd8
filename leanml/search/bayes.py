"""Bayesian optimisation with scikit-optimize's ask/tell `Optimizer` (GP, RF or ET surrogate)."""

from __future__ import annotations

from leanml.search.space import Dim
from leanml.trials.base import Algorithm, Config


def _skopt_dim(d: Dim):
    from skopt.space import Categorical, Integer, Real

    if d.type == "categorical":
        return Categorical(list(d.choices), name=d.name)
    if d.type == "int":
        return Integer(int(d.low), int(d.high), name=d.name)
    return Real(d.low, d.high, prior="log-uniform" if d.log else "uniform", name=d.name)


def _native(d: Dim, value) -> object:
    if d.type == "categorical":  # skopt may hand back numpy scalars; map to the exact choice
        return next(c for c in d.choices if c == value or str(c) == str(value))
    return int(value) if d.type == "int" else float(value)


class BayesSearch(Algorithm):
    """skopt `Optimizer`: `initial_points` random points, then the surrogate's acquisition.

    `initial` configs (the baseline) are asked first in place of skopt's first random points:
    told like any point, they count among the `initial_points`.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from skopt import Optimizer

        cfg = self.cfg.bayes
        self.opt = Optimizer(
            [_skopt_dim(d) for d in self.space.dims],
            base_estimator=cfg.estimator,
            acq_func=cfg.acquisition,
            n_initial_points=cfg.initial_points,
            random_state=self.seed,
            # candidates scored by the acquisition function per ask (skopt's n_points)
            acq_optimizer="sampling",
            acq_optimizer_kwargs={"n_points": cfg.acq_points},
        )

    def ask(self) -> list[Config]:
        n = self.cfg.bayes.batch
        first = self.take_initial(n)  # the baseline: told like any point, one of the initial
        if first:
            return first
        # a batch for parallel workers: constant liar (each pending point scored as the best
        # seen so far while the next is chosen), skopt's ask(n_points=...)
        points = self.opt.ask(n_points=n, strategy="cl_min") if n > 1 else [self.opt.ask()]
        return [
            {d.name: _native(d, v) for d, v in zip(self.space.dims, point, strict=True)}
            for point in points
        ]

    def tell(self, configs, scores) -> None:
        for config, score in zip(configs, scores, strict=True):
            point = [config[d.name] for d in self.space.dims]
            self.opt.tell(point, -float(score))  # skopt minimises
