"""Reinforcement-learning NAS (Zoph & Le 2017): a controller samples decisions, REINFORCE learns.

The controller is written in TensorFlow: an LSTM over the decision sequence (each step sees
the embedding of the previous choice and has its own softmax head) or, as a simpler variant,
independent softmax policies per decision. It is updated once per `children_per_update`
children with REINFORCE: loss = −Σ (R − b) · log π(a) − β · H(π), b an exponential moving
average of rewards. Sampling draws from a seeded NumPy generator, so the controller's choices do
not depend on (and are not disturbed by) the seeding of child training.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from leanml.nas.space import Arch
from leanml.trials.base import Algorithm, Report


class Policy:
    """Distribution over decision sequences with `sample` and a differentiable `log_prob`."""

    def __init__(self, sizes: list[int], kind: str, hidden: int, learning_rate: float, seed: int):
        self.sizes, self.kind = sizes, kind
        init = keras.initializers.RandomUniform(-0.1, 0.1, seed=seed)
        if kind == "independent":
            self.logits = [tf.Variable(tf.zeros([n])) for n in sizes]
            self.variables = list(self.logits)
        else:
            self.cell = keras.layers.LSTMCell(
                hidden, kernel_initializer=init, recurrent_initializer=init
            )
            self.embed = tf.Variable(init([sum(sizes) + 1, hidden]))
            self.heads = [
                keras.layers.Dense(n, kernel_initializer=init, bias_initializer="zeros")
                for n in sizes
            ]
            self.offsets = np.concatenate([[0], np.cumsum(sizes)])[:-1] + 1
            self.cell.build((1, hidden))
            for head in self.heads:
                head.build((1, hidden))
            self.variables = [self.embed, *self.cell.trainable_variables]
            for head in self.heads:
                self.variables += head.trainable_variables
        self.optimizer = keras.optimizers.Adam(learning_rate)

    def _step_logits(self, choices: list[int] | None, rng: np.random.Generator | None):
        """Logits of every step; with `rng`, sample the choices as it goes."""
        picked, all_logits = [], []
        if self.kind == "independent":
            for t, logits in enumerate(self.logits):
                all_logits.append(logits)
                picked.append(self._pick(logits, rng) if rng is not None else choices[t])
            return all_logits, picked
        hidden = self.cell.units
        state = [tf.zeros([1, hidden]), tf.zeros([1, hidden])]
        previous = 0  # index 0 of the embedding is the start token
        for t, head in enumerate(self.heads):
            x = tf.gather(self.embed, [previous])
            out, state = self.cell(x, state)
            logits = head(out)[0]
            all_logits.append(logits)
            choice = self._pick(logits, rng) if rng is not None else choices[t]
            picked.append(choice)
            previous = int(self.offsets[t] + choice)
        return all_logits, picked

    @staticmethod
    def _pick(logits, rng: np.random.Generator) -> int:
        p = tf.nn.softmax(logits).numpy().astype(np.float64)
        return int(rng.choice(len(p), p=p / p.sum()))

    def sample(self, rng: np.random.Generator) -> list[int]:
        return self._step_logits(None, rng)[1]

    def update(self, batch: list[list[int]], advantages: list[float], entropy_weight: float):
        """One REINFORCE step; returns the mean entropy per decision."""
        with tf.GradientTape() as tape:
            loss, entropy = 0.0, 0.0
            for choices, advantage in zip(batch, advantages, strict=True):
                logits, _ = self._step_logits(choices, None)
                for t, step in enumerate(logits):
                    logp = tf.nn.log_softmax(step)
                    loss -= advantage * logp[choices[t]]
                    entropy -= tf.reduce_sum(tf.exp(logp) * logp)
            n = len(batch) * len(self.sizes)
            entropy = entropy / n
            loss = loss / len(batch) - entropy_weight * entropy
        grads = tape.gradient(loss, self.variables)
        self.optimizer.apply_gradients(zip(grads, self.variables, strict=True))
        return float(entropy)

    def probabilities(self) -> list[np.ndarray]:
        logits, _ = self._step_logits([0] * len(self.sizes), None)
        return [tf.nn.softmax(step).numpy() for step in logits]


class RLNAS(Algorithm):
    """REINFORCE controller over the architecture space's decisions."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        cfg = self.cfg.rl
        tf.config.experimental.enable_op_determinism()
        self.policy = Policy(
            self.space.sizes, cfg.controller, cfg.hidden, cfg.learning_rate, self.seed
        )
        self.rng = np.random.default_rng(self.seed)
        self.baseline: float | None = None
        self.pending: list[list[int]] = []
        self.log: list[dict] = []

    def ask(self) -> list[Arch]:
        n = self.cfg.rl.children_per_update
        # the baseline heads the first batch; REINFORCE learns from it like from a sample
        first = [self.space.encode(arch) for arch in self.take_initial(n)]
        self.pending = first + [self.policy.sample(self.rng) for _ in range(n - len(first))]
        return [self.space.decode(choices) for choices in self.pending]

    def tell(self, configs, scores) -> None:
        rewards = [float(s) for s in scores]
        mean = float(np.mean(rewards))
        if self.baseline is None:
            self.baseline = mean
        advantages = [r - self.baseline for r in rewards]
        entropy = self.policy.update(self.pending, advantages, self.cfg.rl.entropy_weight)
        decay = self.cfg.rl.baseline_decay
        self.baseline = decay * self.baseline + (1 - decay) * mean
        self.log.append(
            {
                "update": len(self.log) + 1,
                "mean_reward": mean,
                "entropy": entropy,
                "baseline": self.baseline,
            }
        )

    def report(self) -> Report:
        """Its update log, and the mean reward and entropy per update as step metrics."""
        steps = [
            (
                entry["update"],
                {
                    "controller_mean_reward": entry["mean_reward"],
                    "controller_entropy": entry["entropy"],
                },
            )
            for entry in self.log
        ]
        return Report(log=list(self.log), steps=steps)
