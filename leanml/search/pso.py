"""Particle swarm optimisation with PySwarms (`GlobalBestPSO`, or `LocalBestPSO` on a ring).

PySwarms drives its own loop through `optimize(f, iters)`; here its swarm is stepped one
iteration per ask/tell with the same backend calls, so the runner keeps control of the budget,
the cache and checkpoints. Particles live in the unit cube and are decoded into the space.
PySwarms draws from NumPy's global RNG, so that stream is kept separate from everything else
(training reseeds NumPy) to make runs and resumed runs identical.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from leanml.trials.base import Algorithm, Config

LOGGING_CONFIG = Path(__file__).with_name("pyswarms_logging.yaml")


class PSOSearch(Algorithm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        cfg = self.cfg.pso
        d = len(self.space)
        bounds = (np.zeros(d), np.ones(d))
        options = {"c1": cfg.c1, "c2": cfg.c2, "w": cfg.w}
        saved, saved_log_cfg = np.random.get_state(), os.environ.get("LOG_CFG")
        np.random.seed(self.seed)
        os.environ["LOG_CFG"] = str(LOGGING_CONFIG)
        try:
            import pyswarms as ps  # its import builds a reporter too

            if cfg.topology == "ring":
                options.update({"k": cfg.neighbours, "p": cfg.p})
                self.opt = ps.single.LocalBestPSO(cfg.particles, d, options, bounds=bounds)
                self._gbest_kwargs = {"p": cfg.p, "k": cfg.neighbours}
            else:
                self.opt = ps.single.GlobalBestPSO(cfg.particles, d, options, bounds=bounds)
                self._gbest_kwargs = {}
        finally:
            if saved_log_cfg is None:
                os.environ.pop("LOG_CFG", None)
            else:
                os.environ["LOG_CFG"] = saved_log_cfg
        self._state = np.random.get_state()
        np.random.set_state(saved)
        swarm = self.opt.swarm
        # the initial configs (the baseline) are the first particles' starting positions
        self.first = self.take_initial(cfg.particles)
        for i, config in enumerate(self.first):
            swarm.position[i] = self.space.to_unit(config)
        swarm.pbest_cost = np.full(cfg.particles, np.inf)
        self.opt.bh.memory = swarm.position
        self.opt.vh.memory = swarm.position
        self.iteration = 0

    @contextmanager
    def _own_rng(self):
        saved = np.random.get_state()
        np.random.set_state(self._state)
        try:
            yield
        finally:
            self._state = np.random.get_state()
            np.random.set_state(saved)

    def ask(self) -> list[Config]:
        configs = [self.space.from_unit(p) for p in self.opt.swarm.position]
        if self.iteration == 0:  # exactly the initial configs (decoding could round a real)
            configs[: len(self.first)] = [dict(c) for c in self.first]
        return configs

    def tell(self, configs, scores) -> None:
        from pyswarms.backend.operators import compute_pbest

        opt, swarm = self.opt, self.opt.swarm
        with self._own_rng():
            swarm.current_cost = -np.asarray(scores, dtype=float)  # PySwarms minimises
            swarm.pbest_pos, swarm.pbest_cost = compute_pbest(swarm)
            swarm.best_pos, swarm.best_cost = opt.top.compute_gbest(swarm, **self._gbest_kwargs)
            swarm.velocity = opt.top.compute_velocity(swarm, opt.velocity_clamp, opt.vh, opt.bounds)
            swarm.position = opt.top.compute_position(swarm, opt.bounds, opt.bh)
        self.iteration += 1
