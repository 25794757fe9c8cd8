"""params `prepare`: how the dataset is split into train, validation and test."""

from __future__ import annotations

from pydantic import model_validator

from leanml.params.schema import Float, KeyError_, Section


class Prepare(Section):
    val_fraction: float = Float(0.15, gt=0, lt=1)
    test_fraction: float = Float(0.15, gt=0, lt=1)

    @model_validator(mode="after")
    def _leave_room_to_train(self) -> Prepare:
        total = self.val_fraction + self.test_fraction
        if total > 0.8:
            raise KeyError_(
                "test_fraction",
                "prepare.val_fraction + prepare.test_fraction must be ≤ 0.8 so that at least 20% "
                f"is left to train on, got {self.val_fraction} + {self.test_fraction} = {total:g}",
            )
        return self
