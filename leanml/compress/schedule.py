"""Sparsity schedules: which sparsity the masks should have at a training step, and when to update.

Small classes that round-trip through a config dict, as in TF Model Optimization.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar


class Schedule(ABC):
    kind: ClassVar[str]

    @abstractmethod
    def __call__(self, step: int) -> tuple[bool, float]:
        """(update the masks at this step?, the sparsity they should have)."""

    @property
    @abstractmethod
    def final_step(self) -> int:
        """The step at which the target sparsity is reached."""

    def get_config(self) -> dict[str, Any]:
        return {"kind": self.kind, **vars(self)}

    @staticmethod
    def from_config(config: dict[str, Any]) -> Schedule:
        config = dict(config)
        return SCHEDULES[config.pop("kind")](**config)


class ConstantSparsity(Schedule):
    """One-shot: the target sparsity from `begin_step` on, masks refreshed every `frequency`."""

    kind = "constant"

    def __init__(self, target: float, begin_step: int = 0, frequency: int = 100):
        self.target, self.begin_step, self.frequency = target, begin_step, frequency

    def __call__(self, step: int) -> tuple[bool, float]:
        due = step >= self.begin_step and (step - self.begin_step) % self.frequency == 0
        return due, self.target if step >= self.begin_step else 0.0

    @property
    def final_step(self) -> int:
        return self.begin_step


class PolynomialDecay(Schedule):
    """Zhu & Gupta (2017): s_t = s_f + (s_i - s_f)(1 - (t - t_0) / (t_end - t_0))^power.

    Masks are updated every `frequency` steps between `begin_step` and `end_step`, and always
    exactly at `end_step`, so the final sparsity is reached whatever the frequency.
    """

    kind = "polynomial"

    def __init__(
        self,
        initial: float,
        target: float,
        begin_step: int,
        end_step: int,
        power: float = 3.0,
        frequency: int = 10,
    ):
        if end_step <= begin_step:
            raise ValueError(f"end_step {end_step} must be after begin_step {begin_step}")
        self.initial, self.target = initial, target
        self.begin_step, self.end_step = begin_step, end_step
        self.power, self.frequency = power, frequency

    def sparsity(self, step: int) -> float:
        progress = min(max((step - self.begin_step) / (self.end_step - self.begin_step), 0.0), 1.0)
        return self.target + (self.initial - self.target) * (1.0 - progress) ** self.power

    def __call__(self, step: int) -> tuple[bool, float]:
        inside = self.begin_step <= step <= self.end_step
        due = inside and ((step - self.begin_step) % self.frequency == 0 or step == self.end_step)
        return due, self.sparsity(step)

    @property
    def final_step(self) -> int:
        return self.end_step


SCHEDULES: dict[str, type[Schedule]] = {
    ConstantSparsity.kind: ConstantSparsity,
    PolynomialDecay.kind: PolynomialDecay,
}
