"""Random NAS (Li & Talwalkar 2019): uniform decisions, the baseline every strategy must beat."""

from __future__ import annotations

import numpy as np

from leanml.nas.space import Arch
from leanml.trials.base import Algorithm


class RandomNAS(Algorithm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rng = np.random.default_rng(self.seed)
        self.log: list[dict] = []

    def ask(self) -> list[Arch]:
        # `budget` samples per ask, for parallel workers; the sequence does not depend on it
        first = self.take_initial()  # the baseline architecture, if given
        n = max(self.budget - len(first), 1)
        return first + [self.space.sample(self.rng) for _ in range(n)]

    def tell(self, configs, scores) -> None:
        pass
