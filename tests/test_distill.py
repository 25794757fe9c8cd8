"""Knowledge distillation in every fine-tune: off means the old fit bit for bit, on means the
student really learns from the teacher's soft targets, reproducibly, in every method."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from leanml import compress, measure, models
from leanml.compress import distill
from leanml.compress import run as sweep
from leanml.compress.base import clone, fine_tune
from leanml.errors import LeanmlError
from leanml.params import FineTune, Fit, ModelSpec, parse
from leanml.train import fit_model, make_optimizer, seed_everything
from tests.compress_helpers import prepare
from tests.test_compress import TINY

MLP = {"kind": "mlp", "mlp": {"hidden_units": [16]}}


def _tune(alpha: float, temperature: float = 4.0, learning_rate: float = 0.001) -> FineTune:
    return FineTune(
        learning_rate=learning_rate, distill={"alpha": alpha, "temperature": temperature}
    )


def _build(splits, seed: int) -> keras.Model:
    seed_everything(seed)
    return models.build(ModelSpec.model_validate(MLP), splits.input_shape, splits.n_classes)


@pytest.fixture(scope="module")
def teacher(tiny_splits):
    model = _build(tiny_splits, 0)
    fit_model(model, tiny_splits, Fit(epochs=15, early_stopping_patience=0), progress=False)
    return model


def _tuned(teacher, splits, cfg: FineTune, *, with_teacher=True, epochs=2) -> list[np.ndarray]:
    student = clone(teacher)
    seed_everything(3)
    fine_tune(student, splits, cfg, epochs, teacher=teacher if with_teacher else None)
    return student.get_weights()


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def off(teacher, tiny_splits) -> list[np.ndarray]:
    """The weights of a fine-tune with distillation off (alpha 0, a teacher given)."""
    return _tuned(teacher, tiny_splits, _tune(0.0))


def test_alpha_zero_is_the_plain_fine_tune_bit_for_bit(teacher, tiny_splits, off):
    cfg = _tune(0.0)
    # The fine-tune as it was before distillation existed, written out independently.
    plain = clone(teacher)
    seed_everything(3)
    plain.compile(
        optimizer=make_optimizer(cfg.optimizer, cfg.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    plain.fit(
        tiny_splits.train.x,
        tiny_splits.train.y,
        epochs=2,
        batch_size=cfg.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[keras.callbacks.TerminateOnNaN()],
    )
    assert _same(off, plain.get_weights())
    assert _same(off, _tuned(teacher, tiny_splits, cfg, with_teacher=False))
    assert not _same(off, teacher.get_weights())  # it did train


def test_alpha_changes_the_weights_and_the_temperature_matters(teacher, tiny_splits, off):
    half = _tuned(teacher, tiny_splits, _tune(0.5))
    assert not _same(off, half)
    assert not _same(half, _tuned(teacher, tiny_splits, _tune(0.5, temperature=1.0)))
    # no teacher (e.g. a bench fine-tuning without one): the plain fit whatever alpha says
    assert _same(off, _tuned(teacher, tiny_splits, _tune(0.5), with_teacher=False))


def test_loss_is_the_hinton_formula_on_true_logits():
    rng = np.random.default_rng(0)
    z_student, z_teacher = rng.normal(0, 3, (6, 5)), rng.normal(0, 3, (6, 5))
    labels = rng.integers(0, 5, 6)
    alpha, temperature = 0.3, 2.5

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    # The formula on the pre-softmax logits, which the models never expose.
    p_s, q_s, q_t = (
        softmax(z_student),
        softmax(z_student / temperature),
        softmax(z_teacher / temperature),
    )
    hard = -np.log(p_s[np.arange(6), labels])
    kl = np.sum(q_t * (np.log(q_t) - np.log(q_s)), axis=1)
    expected = (1 - alpha) * hard + alpha * temperature**2 * kl

    teacher = keras.Sequential([keras.Input((5,)), keras.layers.Activation("softmax")])
    y = distill.targets(teacher, z_teacher.astype(np.float32), labels, temperature)
    assert np.array_equal(y[:, 0], labels)
    cfg = _tune(alpha, temperature).distill
    got = distill.loss(cfg)(
        keras.ops.convert_to_tensor(y), keras.ops.convert_to_tensor(p_s.astype(np.float32))
    )
    assert np.allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-5)
    # a student equal to its teacher pays only the hard term
    same = distill.loss(cfg)(
        keras.ops.convert_to_tensor(y),
        keras.ops.convert_to_tensor(softmax(z_teacher).astype(np.float32)),
    )
    hard_teacher = -np.log(softmax(z_teacher)[np.arange(6), labels])
    assert np.allclose(np.asarray(same), (1 - alpha) * hard_teacher, rtol=1e-4, atol=1e-5)


def test_alpha_one_follows_the_teacher_not_the_labels(teacher, tiny_splits):
    from leanml.data import Split, Splits

    # Labels scrambled: only the soft term can carry what the teacher knows.
    scrambled = np.random.default_rng(1).permutation(tiny_splits.train.y)
    data = Splits(Split(tiny_splits.train.x, scrambled), tiny_splits.val, tiny_splits.test)
    x = tiny_splits.train.x
    taught = teacher.predict(x, verbose=0).argmax(axis=1)

    def agreement(alpha: float) -> tuple[float, float]:
        student = _build(tiny_splits, 5)  # fresh weights: nothing inherited from the teacher
        seed_everything(3)
        fine_tune(student, data, _tune(alpha, 2.0, 0.01), 15, teacher=teacher)
        pred = student.predict(x, verbose=0).argmax(axis=1)
        return float(np.mean(pred == taught)), float(np.mean(pred == scrambled))

    with_teacher, with_labels = agreement(1.0)
    assert with_teacher > 0.7 and with_labels < 0.2
    plain_teacher, plain_labels = agreement(0.0)  # the control: hard labels only
    assert plain_teacher < 0.3 and plain_labels > with_labels


def test_same_seed_gives_identical_variant_files(teacher, tiny_splits, tmp_path):
    baseline_file = measure.save_model(teacher, tmp_path / "model.keras")

    def files(alpha: float, where: str) -> list[bytes]:
        cfg = parse(
            {
                "base": {"seed": 7},
                "compress": {
                    "prune": {"sparsities": [0.5], "epochs": 1, "structured": {"fractions": []}},
                    "fine_tune": {"distill": {"alpha": alpha}},
                },
            }
        )
        out = tmp_path / where
        ref = sweep.reference(teacher, baseline_file, tiny_splits, out)
        ((variant, _),) = sweep.run(compress.get("prune", cfg), teacher, ref, tiny_splits, out)
        return [variant.model_file.read_bytes(), variant.artifact.read_bytes()]

    first = files(0.7, "a")
    assert first == files(0.7, "b")
    assert first[0] != files(0.0, "c")[0]


def _predictions(name: str, teacher, splits, out, fine_tune: dict, tracking) -> dict:
    cfg = parse({"base": {"seed": 7}, "compress": {name: TINY[name], "fine_tune": fine_tune}})
    ref = sweep.reference(teacher, out.parent / "baseline.keras", splits, out)
    method = compress.get(name, cfg)
    prepare(method, teacher, splits, ref, out, tracking)  # auto: its search fine-tunes too
    return {
        variant.name: variant.predict(splits.test.x)
        for variant, _ in sweep.run(method, teacher, ref, splits, out)
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(compress.METHODS))
def test_every_method_distills_exactly_where_it_fine_tunes(
    name, teacher, tiny_splits, tmp_path, tracking_cfg
):
    measure.save_model(teacher, tmp_path / "baseline.keras")
    off = {"distill": {"alpha": 0.0}}

    def run(where, tune):
        return _predictions(name, teacher, tiny_splits, tmp_path / where, tune, tracking_cfg)

    plain = run("a", off)
    # A setting fine-tunes iff its result moves with the fine-tune learning rate: no list of
    # which kinds train, so a new method is held to the same rule.
    other_lr = run("b", {**off, "learning_rate": 0.01})
    taught = run("c", {"distill": {"alpha": 1.0}})
    trains = {v for v in plain if not np.array_equal(plain[v], other_lr[v])}
    assert trains, f"{name}: no setting fine-tunes in the tiny sweep"
    for v in plain:
        assert np.array_equal(plain[v], taught[v]) == (v not in trains), v


@pytest.mark.parametrize(
    ("distill_params", "message"),
    [
        (
            {"alpha": 1.5},
            "compress.fine_tune.distill.alpha: must be a number ≥ 0 and ≤ 1, got 1.5",
        ),
        (
            {"temperature": 0},
            "compress.fine_tune.distill.temperature: must be a number > 0, got 0",
        ),
        (
            {"beta": 1},
            "compress.fine_tune.distill.beta: unknown key in compress.fine_tune.distill; "
            "allowed keys are alpha, temperature",
        ),
    ],
)
def test_bad_distill_params_name_the_key(distill_params, message):
    with pytest.raises(LeanmlError) as err:
        parse({"compress": {"fine_tune": {"distill": distill_params}}})
    assert str(err.value) == f"params.yaml: {message}"
