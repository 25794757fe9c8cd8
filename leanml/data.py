"""Dataset registry (embedded digits, Keras MNIST loaders, a user's .npz) and seeded splits."""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leanml.errors import LeanmlError
from leanml.registry import Registry

# `base.dataset` -> its loader (arrays x, y); a new dataset is one function plus one line here.
LOADERS = Registry(
    "base.dataset",
    {
        "digits": "leanml.data:load_digits",
        "mnist": "leanml.data:load_mnist",
        "fashion_mnist": "leanml.data:load_fashion_mnist",
        "npz": "leanml.data:load_npz",
    },
)


def load_digits(**_: object) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8×8 digits (1797 images, 10 classes); needs no network."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = bunch.images.astype(np.float32)[..., None] / 16.0
    return x, bunch.target.astype(np.int64)


def _keras_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    import keras

    try:
        (x_tr, y_tr), (x_te, y_te) = getattr(keras.datasets, name).load_data()
    except Exception as exc:  # offline: urllib raises various errors wrapped by keras
        raise LeanmlError(
            f"base.dataset: could not load {name!r} through Keras ({type(exc).__name__}: {exc}). "
            "It is downloaded on first use and this machine may be offline; use "
            "base.dataset: digits (embedded) or npz (your own file) instead"
        ) from None
    x = np.concatenate([x_tr, x_te]).astype(np.float32)[..., None] / 255.0
    return x, np.concatenate([y_tr, y_te]).astype(np.int64)


def load_mnist(**_: object) -> tuple[np.ndarray, np.ndarray]:
    """MNIST 28×28 through keras.datasets (downloads once into ~/.keras)."""
    return _keras_dataset("mnist")


def load_fashion_mnist(**_: object) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST 28×28 through keras.datasets (downloads once into ~/.keras)."""
    return _keras_dataset("fashion_mnist")


def load_npz(npz_path: str | Path | None = None, **_: object) -> tuple[np.ndarray, np.ndarray]:
    """A user's own `.npz` with arrays `x` (n, features) or (n, H, W[, C]) and `y` (n,)."""
    path = Path(str(npz_path))
    if not path.is_file():
        raise LeanmlError(f"base.npz_path: file not found: {path}")
    with open(path, "rb") as handle:
        if handle.read(4) != b"PK\x03\x04":  # an .npz is a zip archive
            raise LeanmlError(
                f"{path}: not a readable .npz file (not a zip archive); "
                "save one with np.savez(path, x=x, y=y)"
            )
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"x", "y"} - set(archive.files)
            if missing:
                raise LeanmlError(
                    f"{path}: needs arrays 'x' and 'y', missing {sorted(missing)} "
                    f"(found {sorted(archive.files)})"
                )
            x, y = archive["x"], archive["y"]
    except LeanmlError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise LeanmlError(
                f"{path}: holds pickled Python objects, which are refused for safety; "
                "save plain numeric arrays with np.savez(path, x=x, y=y)"
            ) from None
        raise LeanmlError(f"{path}: not a readable .npz file ({exc})") from None
    except Exception as exc:  # zipfile.BadZipFile, OSError, EOFError on truncated files
        raise LeanmlError(
            f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})"
        ) from None
    return _check_arrays(x, y, str(path))


def _check_arrays(x: np.ndarray, y: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray]:
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise LeanmlError(f"{source}: x must be a real numeric array, got dtype {x.dtype}")
    if x.ndim not in (2, 3, 4):
        raise LeanmlError(
            f"{source}: x must have shape (n, features), (n, H, W) or (n, H, W, C), got {x.shape}"
        )
    if x.ndim == 4 and x.shape[-1] not in (1, 3):
        raise LeanmlError(f"{source}: image x must have 1 or 3 channels, got shape {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise LeanmlError(
            f"{source}: y must have shape (n,) with n = len(x) = {len(x)}, got {y.shape}"
        )
    if len(x) == 0:
        raise LeanmlError(f"{source}: holds no samples (x has shape {x.shape})")
    if not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise LeanmlError(f"{source}: x contains {bad} NaN or infinite value(s)")
    if not np.issubdtype(y.dtype, np.number) or np.issubdtype(y.dtype, np.complexfloating):
        raise LeanmlError(f"{source}: y must hold integer class labels 0..K-1, got dtype {y.dtype}")
    if not np.all(np.isfinite(y)):
        bad = int(np.size(y) - np.count_nonzero(np.isfinite(y)))
        raise LeanmlError(
            f"{source}: y must hold integer class labels 0..K-1, found {bad} NaN or infinite"
        )
    if not np.all(np.equal(np.mod(y, 1), 0)):
        raise LeanmlError(f"{source}: y must hold integer class labels 0..K-1, found non-integers")
    y = y.astype(np.int64)
    labels = np.unique(y)
    if labels[0] != 0 or len(labels) != labels[-1] + 1 or len(labels) < 2:
        raise LeanmlError(
            f"{source}: y must use every label 0..K-1 with K ≥ 2, found labels {labels.tolist()}"
        )
    if x.ndim == 3:
        x = x[..., None]
    return x.astype(np.float32), y


@dataclass
class Split:
    """One split of the prepared data."""

    x: np.ndarray
    y: np.ndarray


@dataclass
class Splits:
    """The prepared train/val/test splits plus what a model needs to know about them."""

    train: Split
    val: Split
    test: Split

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    @property
    def n_classes(self) -> int:
        return int(
            max(part.y.max() for part in (self.train, self.val, self.test) if len(part.y)) + 1
        )


def load(name: str, npz_path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load a dataset by registry name."""
    return LOADERS.get(name)(npz_path=npz_path)  # an unknown name: LeanmlError naming the allowed


def split(
    x: np.ndarray, y: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> Splits:
    """Seeded stratified train/val/test split, then scale features to [0, 1] using train only."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    need = max(3, math.ceil(2 / min(val_fraction, test_fraction)))
    if counts.min() < need:
        worst = int(counts.argmin())
        raise LeanmlError(
            f"data: class {worst} has {counts.min()} sample(s); with val_fraction {val_fraction} "
            f"and test_fraction {test_fraction} every class needs at least {need} "
            "to appear in every split"
        )
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest,
        y_rest,
        test_size=val_fraction / (1 - test_fraction),
        stratify=y_rest,
        random_state=seed,
    )
    lo, hi = _scale_bounds(x_train)
    scale = np.where(hi > lo, hi - lo, 1.0).astype(np.float32)

    def scaled(a: np.ndarray) -> np.ndarray:
        return np.clip((a - lo) / scale, 0.0, 1.0).astype(np.float32)

    return Splits(
        Split(scaled(x_train), y_train), Split(scaled(x_val), y_val), Split(scaled(x_test), y_test)
    )


def _scale_bounds(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Images share one intensity range; tabular features are scaled column by column.
    if x_train.ndim == 2:
        return x_train.min(axis=0), x_train.max(axis=0)
    return np.asarray(x_train.min(), np.float32), np.asarray(x_train.max(), np.float32)


def checksum(splits: Splits) -> str:
    """sha256 over every array of every split, in a fixed order."""
    digest = hashlib.sha256()
    for part in (splits.train, splits.val, splits.test):
        for array in (part.x, part.y):
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def card(splits: Splits, dataset: str, seed: int) -> dict:
    """A dataset card: counts per split and class, input shape, checksum."""
    return {
        "dataset": dataset,
        "seed": seed,
        "input_shape": list(splits.input_shape),
        "n_classes": splits.n_classes,
        "counts": {
            name: {"total": len(part.y), "per_class": np.bincount(part.y).tolist()}
            for name, part in (("train", splits.train), ("val", splits.val), ("test", splits.test))
        },
        "sha256": checksum(splits),
    }


def save(splits: Splits, paths, card_data: dict) -> None:
    """Write the three splits and the card atomically."""
    from leanml.io import atomic_write_bytes, reproducible_zip, write_json

    for name in ("train", "val", "test"):
        part = getattr(splits, name)
        buffer = io.BytesIO()
        np.savez(buffer, x=part.x, y=part.y)
        # np.savez stamps each entry with the current time: fixed, so the bytes are reproducible
        atomic_write_bytes(getattr(paths, name), reproducible_zip(buffer.getvalue()))
    write_json(paths.card, card_data)


def load_prepared(paths) -> Splits:
    """Read the prepared splits; a missing or corrupt file names the stage that makes it."""
    parts = []
    for name in ("train", "val", "test"):
        path = getattr(paths, name)
        try:
            with np.load(path, allow_pickle=False) as archive:
                parts.append(Split(archive["x"], archive["y"]))
        except FileNotFoundError:
            raise LeanmlError(
                f"{path}: missing; it is written by the prepare stage (run `dvc repro prepare`)"
            ) from None
        except Exception as exc:
            raise LeanmlError(
                f"{path}: unreadable ({type(exc).__name__}); rerun the prepare stage "
                "(`dvc repro -f prepare`)"
            ) from None
    return Splits(*parts)


def describe(card_data: dict) -> str:
    """One line for logs."""
    return json.dumps({k: card_data[k] for k in ("dataset", "input_shape", "n_classes")})
