"""Knowledge distillation (Hinton et al., 2015): the model being compressed teaches its compressed
copy while it is fine-tuned.

Loss = (1 − α)·CE(y, student) + α·T²·KL(softmax(z_teacher/T) ‖ softmax(z_student/T)).

Our models end in a softmax, so the logits z are taken as log p (clipped at Keras's epsilon, the
floor Keras's own cross-entropy on probabilities uses): log p differs from the pre-softmax logits
by one constant per sample, which softmax(·/T) ignores. The teacher's tempered distribution is
computed once, in NumPy, before fine-tuning and travels with the labels as one target array
[label, soft targets...], so plain `model.fit` runs it with every callback the methods use.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from leanml.params import Distill

BATCH = 1024  # teacher forward pass: bounded memory on large datasets


def _tempered(log_probs: np.ndarray, temperature: float) -> np.ndarray:
    z = log_probs / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def soft_targets(teacher: keras.Model, x: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p_teacher(x) / T) per sample: one deterministic inference pass in batches."""
    eps = keras.config.epsilon()
    probs = [
        np.asarray(teacher(x[start : start + BATCH], training=False), np.float64)
        for start in range(0, len(x), BATCH)
    ]
    log_probs = np.log(np.clip(np.concatenate(probs), eps, 1.0))
    return _tempered(log_probs, temperature).astype(np.float32)


def targets(teacher: keras.Model, x: np.ndarray, y: np.ndarray, temperature: float) -> np.ndarray:
    """The fit target of a distilled fine-tune: column 0 the label, then the soft targets."""
    soft = soft_targets(teacher, x, temperature)
    # float32 holds every class index exactly (they are far below 2**24)
    return np.concatenate([y.reshape(-1, 1).astype(np.float32), soft], axis=1)


def loss(cfg: Distill) -> Callable:
    """The per-sample loss over `targets(...)` and the student's class probabilities."""
    alpha, temperature = float(cfg.alpha), float(cfg.temperature)
    eps = keras.config.epsilon()
    ops = keras.ops

    def distillation_loss(y_true, probs):
        labels = ops.cast(y_true[:, 0], "int32")
        soft = y_true[:, 1:]
        hard = keras.losses.sparse_categorical_crossentropy(labels, probs)
        log_student = ops.log_softmax(ops.log(ops.clip(probs, eps, 1.0)) / temperature, axis=-1)
        # KL, not cross-entropy: the same gradient, and 0 when the student matches the teacher
        kl = ops.sum(soft * (ops.log(ops.clip(soft, 1e-30, 1.0)) - log_student), axis=-1)
        # T² keeps the soft term's gradient on the hard term's scale as T changes (Hinton §2)
        return (1.0 - alpha) * hard + (alpha * temperature**2) * kl

    return distillation_loss
