"""Build a Keras model from a small spec: `mlp` (dense layers) or `cnn` (LeNet-5 style)."""

from __future__ import annotations

import keras

from leanml.errors import LeanmlError
from leanml.params import CNN, MLP, ModelSpec
from leanml.registry import Registry

# `train.model.kind` -> its builder; a new architecture is one function plus one line here.
BUILDERS = Registry(
    "train.model.kind", {"mlp": "leanml.models:build_mlp", "cnn": "leanml.models:build_cnn"}
)


def build_mlp(spec: MLP, input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    """Flatten → Dense(units, activation) [→ Dropout] … → Dense(n_classes, softmax)."""
    # Every layer is named: Keras's automatic names count the layers built before in the process
    # (`flatten_3`), which would make the saved file depend on what ran earlier (a resumed search).
    layers: list[keras.layers.Layer] = [
        keras.Input(shape=input_shape, name="input"),
        keras.layers.Flatten(name="flatten"),
    ]
    for i, units in enumerate(spec.hidden_units):
        layers.append(keras.layers.Dense(units, activation=spec.activation, name=f"dense_{i}"))
        if spec.dropout > 0:
            layers.append(keras.layers.Dropout(spec.dropout, name=f"dropout_{i}"))
    layers.append(keras.layers.Dense(n_classes, activation="softmax", name="output"))
    return keras.Sequential(layers, name="mlp")


def build_cnn(spec: CNN, input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    """LeNet-5 style: [Conv → MaxPool] per filter count, Flatten, Dense layers, softmax."""
    if len(input_shape) != 3:
        raise LeanmlError(
            "train.model.kind: 'cnn' needs image data of shape (H, W, C); this dataset's "
            f"samples have shape {input_shape}, use 'mlp'"
        )
    layers: list[keras.layers.Layer] = [keras.Input(shape=input_shape, name="input")]
    side = min(input_shape[:2])
    for i, filters in enumerate(spec.filters):
        layers.append(
            keras.layers.Conv2D(
                filters,
                spec.kernel_size,
                padding="same",
                activation=spec.activation,
                name=f"conv_{i}",
            )
        )
        # Pool only while the feature map is still big enough; 8×8 digits allow two 2×2 pools.
        if side // spec.pool_size >= 1 and spec.pool_size > 1:
            layers.append(keras.layers.MaxPooling2D(spec.pool_size, name=f"pool_{i}"))
            side //= spec.pool_size
    layers.append(keras.layers.Flatten(name="flatten"))
    for i, units in enumerate(spec.dense_units):
        layers.append(keras.layers.Dense(units, activation=spec.activation, name=f"dense_{i}"))
        if spec.dropout > 0:
            layers.append(keras.layers.Dropout(spec.dropout, name=f"dropout_{i}"))
    layers.append(keras.layers.Dense(n_classes, activation="softmax", name="output"))
    return keras.Sequential(layers, name="cnn")


def build(spec: ModelSpec, input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    """Build the model named by `spec.kind` with its own sub-spec."""
    builder = BUILDERS.get(spec.kind)  # an unknown kind: a LeanmlError naming the allowed ones
    return builder(getattr(spec, spec.kind), tuple(input_shape), n_classes)


def load(path, stage: str = "train") -> keras.Model:
    """Load a saved `.keras` model safely (`safe_mode=True`: no arbitrary code such as Lambda
    layers); a missing or corrupt file is a `LeanmlError` naming the stage that writes it."""
    from pathlib import Path

    from leanml.paths import project_root

    path = Path(path)
    try:  # shown relative to the project, as in dvc.yaml
        shown = path.resolve().relative_to(project_root())
    except ValueError:
        shown = path
    if not path.is_file():
        raise LeanmlError(
            f"{shown}: missing; it is written by the {stage} stage: run `dvc repro {stage}` first"
        )
    import zipfile

    if not zipfile.is_zipfile(path):  # keras would say "File not found" of a corrupt file
        raise LeanmlError(
            f"{shown}: corrupt or truncated (not a .keras zip archive); rerun the {stage} stage "
            f"that writes it: `dvc repro -f {stage}`"
        )
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:
        text = " ".join(str(exc).split())
        if "arbitrary code" in text:
            reason = "refused by safe_mode: it holds Python code, e.g. a Lambda layer"
        else:
            reason = f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
        raise LeanmlError(
            f"{shown}: not a loadable Keras model ({reason}); rerun the {stage} stage that "
            f"writes it: `dvc repro -f {stage}`"
        ) from None
