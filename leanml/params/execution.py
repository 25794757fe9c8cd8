"""params `execution`: where search and NAS trials run (serially or on Dask workers)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from leanml.params.schema import Choice, Int, KeyError_, Section


class Execution(Section):
    """Where search and NAS trials run. Results depend on the params, never on the workers."""

    backend: Literal["serial", "dask"] = Choice("serial", ("serial", "dask"))
    workers: int = Int(2, ge=1)
    address: str | None = Field(
        None,
        description="null (start a local Dask cluster) or a scheduler address like "
        "'tcp://10.0.0.5:8786'",
    )
    trial_timeout: float | None = Field(
        None,
        gt=0,
        strict=True,
        allow_inf_nan=False,
        description="null (no limit) or seconds > 0 a trial may train before it is stopped "
        "and recorded as failed",
    )

    @model_validator(mode="after")
    def _address(self) -> Execution:
        if self.address is None:
            return self
        if self.backend != "dask":
            raise KeyError_(
                "address",
                f"is only used with execution.backend 'dask' (backend is {self.backend!r}); "
                f"set backend: dask or address: null, got {self.address!r}",
            )
        scheme, _, rest = self.address.partition("://")
        host, _, port = rest.rpartition(":")
        if scheme not in ("tcp", "tls", "ucx", "ws", "wss") or not host or not port.isdigit():
            raise KeyError_(
                "address",
                "must be a Dask scheduler address like 'tcp://host:8786' "
                f"(scheme tcp, tls, ucx, ws or wss), got {self.address!r}",
            )
        return self
