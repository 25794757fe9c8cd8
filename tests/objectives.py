"""Cheap, picklable objectives for the search and execution tests.

Only the standard library here: Dask workers import this module to unpickle the functions, and
importing TensorFlow there would cost seconds per worker.
"""

import hashlib
import json
import math
import os
from pathlib import Path


def synthetic(config, seed):
    """Peak 1.0 at 180 units, 2 layers, lr 3e-3, dropout 0.1, tanh, adam, batch 32."""
    c = config
    value = (
        1.0
        - ((c["hidden_units"] - 180) / 248) ** 2
        - 0.1 * abs(c["n_layers"] - 2)
        - 0.3 * (math.log10(c["learning_rate"]) + 2.5) ** 2 / 2.25
        - (c["dropout"] - 0.1) ** 2
        - 0.1 * (c["activation"] != "tanh")
        - 0.1 * (c["optimizer"] != "adam")
        - 0.05 * (c["batch_size"] != 32)
    )
    return {
        "val_accuracy": value,
        "params": c["hidden_units"] * c["n_layers"],
        "file_bytes": 1,
        "status": "ok",
    }


def dies_on_trial(config, seed, *, victim_seed, marker: Path | None):
    """Kill the worker process on one trial: always, or only the first time (marker file)."""
    if seed == victim_seed and (marker is None or not marker.exists()):
        if marker is not None:
            marker.touch()
        os._exit(1)
    return synthetic(config, seed)


def nas_synthetic(arch, seed):
    """A deterministic stand-in for training a child: a score from the architecture's text."""
    digest = hashlib.sha256(json.dumps(arch, sort_keys=True).encode()).digest()
    return {"val_accuracy": digest[0] / 255, "params": digest[1] * 100, "file_bytes": 1}


def with_curve(final, stop, max_epochs):
    """Train 'epoch by epoch' towards `final` (val accuracy after e epochs: final − 0.5·0.6^e,
    so configurations keep their order at every epoch), stopping where the rung rule says."""
    curve = []
    for epoch in range(1, max_epochs + 1):
        curve.append(round(final - 0.5 * 0.6**epoch, 6))
        if stop is not None and not stop.keep_going(epoch, curve[-1]):
            return curve, "pruned"
    return curve, "ok"


def _curved(out, stop, max_epochs):
    """`out` (an objective's result) reached epoch by epoch: see `with_curve`."""
    curve, status = with_curve(out["val_accuracy"], stop, max_epochs)
    return {
        **out,
        "val_accuracy": curve[-1],
        "status": status,
        "val_curve": curve,
        "epochs_run": len(curve),
    }


def synthetic_curves(config, seed, stop=None, max_epochs=9):
    """`synthetic` reached after up to `max_epochs` epochs, with a per-epoch val curve."""
    return _curved(synthetic(config, seed), stop, max_epochs)


def nas_synthetic_curves(arch, seed, stop=None, max_epochs=9):
    """`nas_synthetic` reached after up to `max_epochs` epochs, with a per-epoch val curve."""
    return _curved(nas_synthetic(arch, seed), stop, max_epochs)
