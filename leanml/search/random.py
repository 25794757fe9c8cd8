"""Random search: uniform samples over the space, the baseline every comparison must report."""

from __future__ import annotations

import numpy as np

from leanml.trials.base import Algorithm, Config


class RandomSearch(Algorithm):
    """Independent samples, log dimensions log-uniform unless told otherwise.

    One ask returns `budget` samples so parallel workers get them all at once; the sequence of
    samples does not depend on the batch size (nothing is learned between asks).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rng = np.random.default_rng(self.seed)

    def ask(self) -> list[Config]:
        log_uniform = self.cfg.random.log_uniform
        first = self.take_initial()  # the baseline, if given, is the first "sample"
        n = max(self.budget - len(first), 1)
        return first + [self.space.sample(self.rng, log_uniform=log_uniform) for _ in range(n)]

    def tell(self, configs, scores) -> None:
        pass  # random search learns nothing
