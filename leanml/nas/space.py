"""The NAS architecture space: an architecture is a fixed-length sequence of categorical decisions.

Decisions: the number of layers, then for each of the `max_layers` slots its kind (dense or
conv), width (units for dense, filters for conv, both from their choice lists), kernel size,
activation, dropout, batch-norm and skip connection. Decisions of unused slots, and the
kernel size of dense layers, are fixed to their first choice (the canonical form), so that
decode(encode(a)) == a for every architecture and every decision vector decodes to a valid
network. Conv layers always come first: a conv slot after a dense layer decodes as dense.

Architectures travel as plain dicts `{decision name: value}` so the trial runner's trial
table, cache and checkpoint work for NAS unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from leanml.errors import LeanmlError
from leanml.params import ModelSpec, NasSpace

Arch = dict[str, object]


def _nearest(choices: tuple, value: object) -> object:
    """`value` if a choice (same type), else the numerically nearest choice, else the first."""
    if any(c == value and type(c) is type(value) for c in choices):
        return value
    numbers = [c for c in choices if isinstance(c, int | float) and not isinstance(c, bool)]
    if isinstance(value, int | float) and not isinstance(value, bool) and numbers:
        return min(numbers, key=lambda c: abs(c - value))
    return choices[0]


FIELDS = ("kind", "width", "kernel", "activation", "dropout", "batch_norm", "skip")


@dataclass(frozen=True)
class Decision:
    name: str
    choices: tuple


class ArchSpace:
    """Decisions, sampling, encode/decode and the Keras builder for one `nas.space`."""

    def __init__(self, cfg: NasSpace, image_input: bool):
        self.cfg = cfg
        kinds = tuple(k for k in cfg.kinds if image_input or k != "conv")
        if not kinds:  # stages check earlier (`nas.space_kinds`); a direct caller learns here
            raise LeanmlError("nas.space.kinds: 'conv' needs image data: use kinds: [dense]")
        self.kinds = kinds
        self.decisions: list[Decision] = [Decision("layers", tuple(range(1, cfg.max_layers + 1)))]
        for i in range(cfg.max_layers):
            widths = tuple(
                sorted(set(cfg.units) | (set(cfg.filters) if "conv" in kinds else set()))
            )
            self.decisions += [
                Decision(f"l{i}.kind", kinds),
                Decision(f"l{i}.width", widths),
                Decision(f"l{i}.kernel", tuple(cfg.kernel_sizes)),
                Decision(f"l{i}.activation", tuple(cfg.activations)),
                Decision(f"l{i}.dropout", tuple(cfg.dropouts)),
                Decision(f"l{i}.batch_norm", tuple(cfg.batch_norm)),
                Decision(f"l{i}.skip", tuple(cfg.skip)),
            ]
        self.names = [d.name for d in self.decisions]
        self.sizes = [len(d.choices) for d in self.decisions]

    def __len__(self) -> int:
        return len(self.decisions)

    # decisions (indices) <-> architecture (values)
    def decode(self, indices) -> Arch:
        """Any index vector → a canonical, buildable architecture."""
        raw = {
            d.name: d.choices[int(i) % len(d.choices)]
            for d, i in zip(self.decisions, indices, strict=True)
        }
        return self.canonical(raw)

    def encode(self, arch: Arch) -> list[int]:
        return [d.choices.index(arch[d.name]) for d in self.decisions]

    def canonical(self, arch: Arch) -> Arch:
        out = dict(arch)
        n = int(out["layers"])
        dense_seen = False
        for i in range(self.cfg.max_layers):
            p = f"l{i}."
            if i >= n:
                for f in FIELDS:
                    out[p + f] = self._choices(p + f)[0]
                continue
            if out[p + "kind"] == "conv" and dense_seen:
                out[p + "kind"] = "dense"
            dense_seen = dense_seen or out[p + "kind"] == "dense"
            allowed = self.cfg.filters if out[p + "kind"] == "conv" else self.cfg.units
            if out[p + "width"] not in allowed:  # nearest allowed width of the layer's kind
                out[p + "width"] = min(allowed, key=lambda w: (abs(w - out[p + "width"]), w))
            if out[p + "kind"] == "dense":
                out[p + "kernel"] = self._choices(p + "kernel")[0]
        return out

    def project(self, layers: list[dict]) -> Arch:
        """The architecture nearest to `layers` (dicts of FIELDS; a missing field takes its
        first choice): the first `max_layers` layers are kept, a kind the space lacks becomes
        dense, widths and other numbers take the nearest choice (widths among the layer kind's
        own list), any other value not among the choices takes the first choice."""
        arch: Arch = {"layers": min(max(len(layers), 1), self.cfg.max_layers)}
        for i in range(self.cfg.max_layers):
            layer = layers[i] if i < len(layers) else {}
            for f in FIELDS:
                name = f"l{i}.{f}"
                choices = self._choices(name)
                value = layer.get(f, choices[0])
                if f == "kind" and value not in choices:
                    value = "dense" if "dense" in choices else choices[0]
                arch[name] = value if f == "width" else _nearest(choices, value)
        return self.canonical(arch)

    def baseline(self, model: ModelSpec) -> Arch:
        """The train stage's model (`train.model`) projected into the space (see `project`):
        an MLP's hidden layers as dense layers; a CNN's conv layers then its dense head."""
        if model.kind == "mlp":
            m = model.mlp
            layers = [
                {"kind": "dense", "width": w, "activation": m.activation, "dropout": m.dropout}
                for w in m.hidden_units
            ]
        else:
            c = model.cnn
            common = {"activation": c.activation, "dropout": c.dropout}
            layers = [
                {"kind": "conv", "width": f, "kernel": c.kernel_size, **common} for f in c.filters
            ]
            layers += [{"kind": "dense", "width": w, **common} for w in c.dense_units]
        defaults = {"batch_norm": False, "skip": False}
        return self.project([{**defaults, **layer} for layer in layers])

    def _choices(self, name: str) -> tuple:
        return self.decisions[self.names.index(name)].choices

    def sample(self, rng: np.random.Generator) -> Arch:
        return self.decode([rng.integers(n) for n in self.sizes])

    def contains(self, arch: Arch) -> bool:
        try:
            return self.canonical(arch) == arch and len(self.encode(arch)) == len(self)
        except (KeyError, ValueError):
            return False

    def layers(self, arch: Arch) -> list[dict]:
        return [{f: arch[f"l{i}.{f}"] for f in FIELDS} for i in range(int(arch["layers"]))]

    def describe(self, arch: Arch) -> str:
        parts = []
        for layer in self.layers(arch):
            kind = "conv" if layer["kind"] == "conv" else "dense"
            text = f"{kind}{layer['width']}"
            if kind == "conv":
                text += f"k{layer['kernel']}"
            text += f"-{layer['activation']}"
            if layer["dropout"]:
                text += f"-d{layer['dropout']}"
            if layer["batch_norm"]:
                text += "-bn"
            if layer["skip"]:
                text += "-skip"
            parts.append(text)
        return " > ".join(parts)

    def build(self, arch: Arch, input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
        """The Keras model for an architecture (functional, so skips can join)."""
        inputs = keras.Input(shape=input_shape, name="input")  # named: see models.build_mlp
        x = inputs
        for i, layer in enumerate(self.layers(arch)):
            is_conv = layer["kind"] == "conv"
            if is_conv and len(x.shape) != 4:
                raise LeanmlError(f"layer {i}: conv needs image input, got shape {x.shape}")
            if not is_conv and len(x.shape) > 2:
                x = keras.layers.Flatten(name=f"l{i}_flatten")(x)
            block_in = x
            if is_conv:
                x = keras.layers.Conv2D(
                    layer["width"], layer["kernel"], padding="same", name=f"l{i}_conv"
                )(x)
            else:
                x = keras.layers.Dense(layer["width"], name=f"l{i}_dense")(x)
            if layer["batch_norm"]:
                x = keras.layers.BatchNormalization(name=f"l{i}_bn")(x)
            x = keras.layers.Activation(layer["activation"], name=f"l{i}_act")(x)
            if layer["skip"]:
                if block_in.shape[-1] != x.shape[-1]:
                    project = (
                        keras.layers.Conv2D(layer["width"], 1, name=f"l{i}_proj")
                        if is_conv
                        else keras.layers.Dense(layer["width"], name=f"l{i}_proj")
                    )
                    block_in = project(block_in)
                x = keras.layers.Add(name=f"l{i}_skip")([x, block_in])
            if layer["dropout"]:
                x = keras.layers.Dropout(layer["dropout"], name=f"l{i}_dropout")(x)
            if is_conv and min(x.shape[1], x.shape[2]) >= 2:
                x = keras.layers.MaxPooling2D(2, name=f"l{i}_pool")(x)
        if len(x.shape) > 2:
            x = keras.layers.Flatten(name="flatten")(x)
        outputs = keras.layers.Dense(n_classes, activation="softmax", name="output")(x)
        return keras.Model(inputs, outputs, name="nas_child")
