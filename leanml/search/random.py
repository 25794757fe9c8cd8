"""Random search: uniform samples over the space, the baseline every comparison must report."""

from __future__ import annotations

import numpy as np

from leanml.search.base import Algorithm
from leanml.search.space import Config


class RandomSearch(Algorithm):
    """One independent sample per ask; log dimensions log-uniform unless told otherwise."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rng = np.random.default_rng(self.seed)

    def ask(self) -> list[Config]:
        return [self.space.sample(self.rng, log_uniform=self.cfg.random.log_uniform)]

    def tell(self, configs, scores) -> None:
        pass  # random search learns nothing
