"""The ENAS supernet (Pham et al. 2018): one set of weights every child of the space reads.

Each child of `ArchSpace` is a path through the supernet; which variables it reads:

- layer position i, kind conv: one kernel per kernel size, `l{i}.conv.k{k}` of shape
  (k, k, C_in, F_max), shared by every child whose i-th layer is a conv with that kernel size;
  one bias, one batch-norm (gamma, beta) and one 1x1 skip projection per position.
- layer position i, kind dense: one kernel per *input source*, `l{i}.dense.flat{i}` (the
  flattened input, or the flattened stack of the i conv layers before it) or `l{i}.dense.dense`
  (the dense layer before it), of shape (d_in, U_max); one bias, one batch-norm and one skip
  projection per position and source.
- width (units / filters): not a variable of its own: a child of width w uses the first w
  output units (channels) of the position's widest kernel; the rest are masked to zero.
- activation, dropout: no weights (the same kernel serves every activation and dropout rate);
  batch-norm normalises with the batch's statistics in training and in scoring alike (no
  moving averages: they would mix the statistics of different children).
- skip: the position's projection is read when the block's input and output widths differ,
  as in `ArchSpace.build` (and when a flattened conv stack meets a dense layer of equal true
  width: their zero-padded layouts differ); otherwise the input is added as is.
- output: one softmax kernel per source (`out.dense`, `out.flat{n}` after n conv layers).

So two children that pick the same kind, kernel size and source at a position read the same
variables there, whatever their widths, activations, dropouts and batch-norm flags. The
supernet is plain TensorFlow (eager; every child is a different graph) and only ranks
children: the final architectures are trained from scratch by the shared objective.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from leanml.nas.space import Arch, ArchSpace


class FusedAdam:
    """Adam (Keras' defaults), one fused TensorFlow op per variable, for eager loops.

    Keras' optimizer costs ~7 ms per variable and step in eager mode here: more than the
    supernet child's forward and backward pass, and 2/3 of a controller update. The step count
    is global (the bias correction of a variable a child rarely uses follows it, as in ENAS).
    """

    def __init__(self, learning_rate: float, variables: list[tf.Variable]):
        self.learning_rate, self.steps = learning_rate, 0
        self.slots = {
            id(var): (tf.Variable(tf.zeros_like(var)), tf.Variable(tf.zeros_like(var)))
            for var in variables
        }

    def apply_gradients(self, grads_and_vars) -> None:
        """Keras' signature: (gradient, variable) pairs; a None gradient is skipped."""
        self.steps += 1
        t, b1, b2 = self.steps, 0.9, 0.999
        for grad, var in grads_and_vars:
            if grad is None:
                continue
            m, v = self.slots[id(var)]
            tf.raw_ops.ResourceApplyAdam(
                var=var.handle, m=m.handle, v=v.handle, beta1_power=b1**t, beta2_power=b2**t,
                lr=self.learning_rate, beta1=b1, beta2=b2, epsilon=1e-7, grad=grad,
            )  # fmt: skip


class Supernet:
    """Shared weights over `space`, trained one sampled child per batch."""

    def __init__(
        self,
        space: ArchSpace,
        input_shape: tuple[int, ...],
        n_classes: int,
        seed: int,
        learning_rate: float,
    ):
        self.space, self.seed = space, seed
        cfg = space.cfg
        self.image = len(input_shape) == 3
        self.units = max(cfg.units)
        self.filters = max(cfg.filters) if "conv" in space.kinds and self.image else 0
        self.rng = np.random.default_rng([seed, 17])  # initial weights only
        self.vars: dict[str, tf.Variable] = {}
        flat = [int(np.prod(input_shape))]  # flattened sizes after 0, 1, ... conv layers
        if self.filters:
            h, w = input_shape[0], input_shape[1]
            for _ in range(cfg.max_layers):
                h, w = (h // 2, w // 2) if min(h, w) >= 2 else (h, w)
                flat.append(h * w * self.filters)
        self.flat = flat
        for i in range(cfg.max_layers):
            if self.filters:
                c_in = input_shape[-1] if i == 0 else self.filters
                for k in cfg.kernel_sizes:
                    self._weight(f"l{i}.conv.k{k}", (k, k, c_in, self.filters))
                self._norm(f"l{i}.conv", self.filters)
                self._weight(f"l{i}.conv.proj", (1, 1, c_in, self.filters))
            sources = []
            if i == 0 or self.filters:  # the flattened input or conv stack of i layers
                sources.append((f"flat{i}", flat[i]))
            if i > 0:
                sources.append(("dense", self.units))
            for name, d_in in sources:
                self._weight(f"l{i}.dense.{name}", (d_in, self.units))
                self._weight(f"l{i}.dense.{name}.proj", (d_in, self.units))
            self._norm(f"l{i}.dense", self.units)
        self._weight("out.dense", (self.units, n_classes))
        for n in range(1, cfg.max_layers + 1 if self.filters else 1):
            self._weight(f"out.flat{n}", (flat[n], n_classes))
        self.vars["out.b"] = tf.Variable(tf.zeros([n_classes]), name="out.b")
        self.optimizer = FusedAdam(learning_rate, list(self.vars.values()))

    def _weight(self, name: str, shape: tuple[int, ...]) -> None:
        """Glorot-uniform from the supernet's own generator (same seed, same weights)."""
        receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        value = self.rng.uniform(-limit, limit, shape).astype(np.float32)
        self.vars[name] = tf.Variable(value, name=name.replace(".", "_"))

    def _norm(self, prefix: str, n: int) -> None:
        """A layer's bias, batch-norm scale and shift, and its skip projection's bias."""
        for name, value in (("b", 0.0), ("gamma", 1.0), ("beta", 0.0), ("proj_b", 0.0)):
            self.vars[f"{prefix}.{name}"] = tf.Variable(
                tf.fill([n], value), name=f"{prefix}_{name}".replace(".", "_")
            )

    @functools.cache  # noqa: B019 (a handful of (width, size) pairs per supernet)
    def _mask(self, width: int, size: int) -> tf.Tensor:
        return tf.constant(np.arange(size) < width, tf.float32)

    def _block(self, h, block_in, prefix, proj, layer, width_in, training, seed):
        """Batch-norm, activation, skip and dropout after a layer's kernel, as `space.build`."""
        v, width = self.vars, layer["width"]
        mask = self._mask(width, h.shape[-1])
        if layer["batch_norm"]:
            axes = list(range(len(h.shape) - 1))
            mean, var = tf.nn.moments(h, axes)
            h = (h - mean) * tf.math.rsqrt(var + 1e-3) * v[prefix + ".gamma"] + v[prefix + ".beta"]
        else:
            h = h + v[prefix + ".b"]
        h = keras.activations.get(layer["activation"])(h) * mask
        if layer["skip"]:
            # Keras projects when the widths differ; here also when a flattened conv stack of
            # the same true width lies in a different (zero-padded) layout than the dense units
            if width_in != width or block_in.shape[-1] != h.shape[-1]:
                if len(h.shape) == 4:
                    block_in = tf.nn.conv2d(block_in, v[proj], 1, "SAME")
                else:
                    block_in = block_in @ v[proj]
                block_in = (block_in + v[prefix + ".proj_b"]) * mask
            h = h + block_in
        if training and layer["dropout"]:
            h = tf.nn.experimental.stateless_dropout(h, layer["dropout"], seed=seed)
        return h

    def logits(self, arch: Arch, x, training: bool = False, seed=(0, 0)) -> tf.Tensor:
        """The child's logits on `x` with the shared weights (dropout only when training)."""
        v = self.vars
        h = tf.convert_to_tensor(x, tf.float32)
        n_conv, width_in = 0, int(h.shape[-1])
        for i, layer in enumerate(self.space.layers(arch)):
            block_in = h
            if layer["kind"] == "conv":
                h = tf.nn.conv2d(h, v[f"l{i}.conv.k{layer['kernel']}"], 1, "SAME")
                h = self._block(h, block_in, f"l{i}.conv", f"l{i}.conv.proj", layer, width_in,
                                training, (seed[0], seed[1] * 8 + i))  # fmt: skip
                if min(h.shape[1], h.shape[2]) >= 2:
                    h = tf.nn.max_pool2d(h, 2, 2, "VALID")
                n_conv += 1
            else:
                source = "dense" if i > 0 and layer_is_dense(arch, i - 1) else f"flat{i}"
                if len(h.shape) > 2:  # the true flattened width: positions x used channels
                    width_in = int(np.prod(h.shape[1:-1])) * width_in
                    h = tf.reshape(h, [tf.shape(h)[0], -1])
                block_in = h
                h = h @ v[f"l{i}.dense.{source}"]
                h = self._block(h, block_in, f"l{i}.dense", f"l{i}.dense.{source}.proj", layer,
                                width_in, training, (seed[0], seed[1] * 8 + i))  # fmt: skip
            width_in = layer["width"]
        if len(h.shape) > 2:
            h = tf.reshape(h, [tf.shape(h)[0], -1])
        out = "out.dense" if layer_is_dense(arch, int(arch["layers"]) - 1) else f"out.flat{n_conv}"
        return h @ v[out] + v["out.b"]

    def read(self, arch: Arch, x) -> list[str]:
        """The names of the variables the child reads (what it shares with others)."""
        with tf.GradientTape() as tape:
            self.logits(arch, x[:2])
        ids = {id(var) for var in tape.watched_variables()}
        return sorted(name for name, var in self.vars.items() if id(var) in ids)

    def train_step(self, arch: Arch, x, y, step: int) -> float:
        """One Adam step on the variables the child reads; returns its batch loss."""
        with tf.GradientTape() as tape:
            logits = self.logits(arch, x, training=True, seed=(self.seed, step))
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(y, tf.int32), logits)
            )
        used = tape.watched_variables()
        self.optimizer.apply_gradients(zip(tape.gradient(loss, used), used, strict=True))
        return float(loss)

    def accuracy(self, arch: Arch, x, y) -> float:
        """The child's accuracy on (x, y) with the shared weights: its ENAS reward."""
        predicted = tf.argmax(self.logits(arch, x), axis=-1).numpy()
        return float(np.mean(predicted == np.asarray(y)))


def layer_is_dense(arch: Arch, i: int) -> bool:
    return arch[f"l{i}.kind"] != "conv"
