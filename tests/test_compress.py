"""Compression methods on real tiny Keras models and the real digits data: a contract suite over
every registered method, then the specific promises of pruning, quantization and low-rank."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from leanml import compress, measure, models
from leanml.compress import run as sweep
from leanml.compress.base import kernel_sparsity
from leanml.compress.encode import decode, encode, pack_bits, unpack_bits
from leanml.compress.lowrank import factorize_model
from leanml.compress.prune import prune_unstructured
from leanml.compress.ptq import quantize_kernels
from leanml.compress.qat import qat_model, strip_qat
from leanml.compress.schedule import PolynomialDecay, Schedule
from leanml.compress.structured import prune_structured
from leanml.compress.tflite import to_tflite
from leanml.compress.uniform import fake_quantize, quantize
from leanml.errors import LeanmlError
from leanml.params import FineTune, ModelSpec, parse
from leanml.tflite import TFLiteRunner
from leanml.train import fit_model, seed_everything
from tests.compress_helpers import prepare

TUNE = FineTune(learning_rate=0.001, batch_size=32)
# A small sweep per method, one or two fine-tune epochs: enough to exercise every code path.
TINY = {
    "prune": {"sparsities": [0.5], "epochs": 1, "structured": {"fractions": [0.5], "epochs": 1}},
    "quantize": {
        "tflite": {"modes": ["dynamic_int8"], "calibration_samples": 20},
        "ptq": {"bits": [4], "granularities": ["per_channel"], "schemes": ["asymmetric"]},
        "qat": {"bits": [4], "epochs": 1},
    },
    "lowrank": {"values": [0.5], "epochs": 1},
    "combined": {"sparsities": [0.8], "bits": [4], "epochs": 1},
    "cluster": {"bits": [2], "epochs": 1},
    # the policy search: 2 trials of 1 epoch, one finalist fine-tuned 1 epoch
    "auto": {"budget": 2, "trial_epochs": 1, "epochs": 1, "finalists": 1, "target_ratio": 8.0},
}


def _train(spec: dict, splits, epochs: int = 15) -> keras.Model:
    from leanml.params import Fit

    seed_everything(0)
    model = models.build(ModelSpec.model_validate(spec), splits.input_shape, splits.n_classes)
    fit_model(model, splits, Fit(epochs=epochs, early_stopping_patience=0), progress=False)
    return model


@pytest.fixture(scope="module")
def mlp(tiny_splits):
    return _train({"kind": "mlp", "mlp": {"hidden_units": [32]}}, tiny_splits)


@pytest.fixture(scope="module")
def cnn(tiny_splits):
    spec = {"kind": "cnn", "cnn": {"filters": [4, 8], "dense_units": [16]}}
    return _train(spec, tiny_splits, epochs=10)


@pytest.fixture(scope="module")
def baseline_file(mlp, tmp_path_factory):
    return measure.save_model(mlp, tmp_path_factory.mktemp("baseline") / "model.keras")


def _sweep(name, mlp, baseline_file, splits, out_dir, tracking_cfg):
    cfg = parse({"compress": {name: TINY[name]}, "base": {"seed": 7}})
    method = compress.get(name, cfg)
    ref = sweep.reference(mlp, baseline_file, splits, out_dir)
    prepare(method, mlp, splits, ref, out_dir, tracking_cfg)  # auto searches its policy first
    return list(sweep.run(method, mlp, ref, splits, out_dir))


# Wall-clock numbers vary; every size does not (save_model writes no date into the .keras zip).
TIMING = {"seconds"}  # latency: only the evaluate stage times models


# --- contract: every registered method -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(compress.METHODS))
def test_method_contract(name, mlp, baseline_file, tiny_splits, tmp_path, tracking_cfg):
    first = _sweep(name, mlp, baseline_file, tiny_splits, tmp_path / "a", tracking_cfg)
    assert first, f"{name} produced no variants"
    for variant, row in first:
        probs = variant.predict(tiny_splits.test.x)
        assert probs.shape == (len(tiny_splits.test.x), tiny_splits.n_classes)
        assert np.allclose(probs.sum(axis=1), 1, atol=0.02)
        # Sizes are bytes of real files on disk.
        assert row["file_bytes"] == variant.model_file.stat().st_size > 0
        assert row["artifact_bytes"] == variant.artifact.stat().st_size > 0
        assert 0 < row["artifact_gzip_bytes"]
        assert row["compression_ratio"] == pytest.approx(
            baseline_file.stat().st_size / row["artifact_bytes"]
        )
        weights = 4 * sum(w.size for w in mlp.get_weights())  # Han et al.'s basis
        assert row["ratio_weights"] == pytest.approx(weights / row["artifact_bytes"])
        assert row["ratio_tflite"] > 0 and row["gzip_ratio_tflite"] > 0
        assert set(sweep.columns(compress.get(name, parse({})))) == set(row)
        assert 0 <= row["test_accuracy"] <= 1 and row["seconds"] > 0
        if variant.artifact.suffix == ".packed":  # the compact file really is the model
            assert np.allclose(decode(variant.artifact).predict(tiny_splits.test.x, verbose=0),
                               probs, atol=1e-3)  # fmt: skip
    assert first[0][1]["test_accuracy"] > 0.3  # still a classifier, not noise

    second = _sweep(name, mlp, baseline_file, tiny_splits, tmp_path / "b", tracking_cfg)
    for (v1, r1), (v2, r2) in zip(first, second, strict=True):
        assert {k: v for k, v in r1.items() if k not in TIMING} == {
            k: v for k, v in r2.items() if k not in TIMING
        }
        assert np.array_equal(v1.predict(tiny_splits.test.x), v2.predict(tiny_splits.test.x))
        assert v1.artifact.read_bytes() == v2.artifact.read_bytes()
        assert v1.model_file.read_bytes() == v2.model_file.read_bytes()  # .keras/.tflite


def test_a_recorded_fine_tune_curve_is_val_accuracy_per_epoch_and_changes_nothing(
    mlp, tiny_splits, tmp_path
):
    from leanml.compress.base import recording

    cfg = parse({"compress": {"prune": {"sparsities": [0.5], "epochs": 3}}, "base": {"seed": 7}})
    method = compress.get("prune", cfg)
    setting = method.settings()[0]
    seed_everything(7)
    plain = method.apply(mlp, tiny_splits, setting, tmp_path / "a")
    seed_everything(7)
    with recording() as curve:
        recorded = method.apply(mlp, tiny_splits, setting, tmp_path / "b")
    assert plain.artifact.read_bytes() == recorded.artifact.read_bytes()  # reads val only
    assert len(curve) == 3 and all(0 < v <= 1 for v in curve)
    final = np.mean(np.argmax(recorded.predict(tiny_splits.val.x), axis=1) == tiny_splits.val.y)
    assert curve[-1] == pytest.approx(final, abs=1e-6)  # the last epoch is the variant


def test_registry_names_match_params_sections():
    cfg = parse({})
    for name in compress.METHODS:
        assert compress.get(name, cfg).cfg is getattr(cfg.compress, name)
    with pytest.raises(LeanmlError, match="unknown method 'distill'; registered methods are prune"):
        compress.get("distill", cfg)


# --- pruning ---------------------------------------------------------------------------------


def test_polynomial_schedule_reaches_target_and_round_trips():
    schedule = PolynomialDecay(0.0, 0.9, begin_step=0, end_step=25, frequency=10)
    values = [schedule.sparsity(t) for t in range(30)]
    assert values[0] == 0 and values[25] == pytest.approx(0.9) and values[29] == pytest.approx(0.9)
    assert all(a <= b for a, b in zip(values, values[1:], strict=False))
    assert [t for t in range(30) if schedule(t)[0]] == [0, 10, 20, 25]  # the end step always
    again = Schedule.from_config(schedule.get_config())
    assert again.get_config() == schedule.get_config()


@pytest.mark.slow
@pytest.mark.parametrize(("criterion", "scope"), [("magnitude", "per_layer"), ("taylor", "global")])
def test_sparsity_equals_target_and_survives_fine_tuning(
    criterion, scope, mlp, tiny_splits, tmp_path
):
    seed_everything(0)
    pruned = prune_unstructured(
        mlp, tiny_splits, sparsity=0.75, criterion=criterion, scope=scope, epochs=3,
        ramp=0.3, frequency=2, fine=TUNE,
    )  # fmt: skip
    kernels = [np.asarray(layer.kernel) for layer in pruned.layers if hasattr(layer, "kernel")]
    if scope == "per_layer":
        for k in kernels:
            assert np.sum(k == 0) == round(0.75 * k.size)
    total = sum(k.size for k in kernels)
    assert kernel_sparsity(pruned) == pytest.approx(round(0.75 * total) / total, abs=1 / total)
    # The fine-tuning after the ramp really trained the survivors, and the baseline is untouched.
    assert not np.array_equal(
        kernels[0][kernels[0] != 0], np.asarray(mlp.layers[1].kernel)[kernels[0] != 0]
    )
    assert kernel_sparsity(mlp) == 0
    # A pruned model is stored smaller than its dense self when encoded sparse: real file bytes.
    dense = encode(pruned, tmp_path / "dense.packed").stat().st_size
    sparse = encode(pruned, tmp_path / "sparse.packed", sparse=True).stat().st_size
    assert sparse < 0.5 * dense


@pytest.mark.slow
def test_sparse_encoding_is_smaller_and_exact(mlp, tiny_splits, tmp_path):
    pruned = prune_unstructured(
        mlp, tiny_splits, sparsity=0.9, criterion="magnitude", scope="per_layer", epochs=0,
        ramp=1, frequency=1, fine=TUNE,
    )  # fmt: skip
    dense = encode(pruned, tmp_path / "dense.packed")
    sparse = encode(pruned, tmp_path / "sparse.packed", sparse=True)
    assert sparse.stat().st_size < 0.4 * dense.stat().st_size
    for path in (dense, sparse):
        restored = decode(path)
        for a, b in zip(restored.get_weights(), pruned.get_weights(), strict=True):
            assert np.array_equal(a, b)


@pytest.mark.slow
def test_structured_pruning_is_really_smaller(mlp, tiny_splits, tmp_path):
    small = prune_structured(mlp, tiny_splits, fraction=0.5, criterion="l1")
    assert small.layers[1].units == 16 and small.layers[-1].units == 10
    assert small.count_params() < 0.6 * mlp.count_params()
    assert measure.flops(small) < 0.6 * measure.flops(mlp)
    a = measure.save_model(mlp, tmp_path / "a.keras").stat().st_size
    b = measure.save_model(small, tmp_path / "b.keras").stat().st_size
    assert b < a
    # The survivors are the same neurons: the kept units' pre-activations are unchanged.
    keep = np.sort(np.argsort(-np.abs(np.asarray(mlp.layers[1].kernel)).sum(0))[:16])
    assert np.array_equal(
        np.asarray(small.layers[1].kernel), np.asarray(mlp.layers[1].kernel)[:, keep]
    )


@pytest.mark.slow
def test_structured_pruning_of_a_cnn_removes_filters(cnn, tiny_splits):
    small = prune_structured(cnn, tiny_splits, fraction=0.5, criterion="taylor")
    convs = [layer for layer in small.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [2, 4]
    assert small.count_params() < 0.5 * cnn.count_params()
    assert small.predict(tiny_splits.test.x, verbose=0).shape == (120, 10)


def test_unsupported_layer_names_layer_and_method(tiny_splits):
    model = keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(16, name="hidden"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    with pytest.raises(
        LeanmlError,
        match=r"layer 'bn' \(BatchNormalization\) cannot be handled by structured pruning",
    ):
        prune_structured(model, tiny_splits, fraction=0.5, criterion="l1")
    inputs = keras.Input(shape=(8, 8, 1))
    functional = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    with pytest.raises(
        LeanmlError, match="compress.lowrank: the baseline .* handles keras.Sequential"
    ):
        factorize_model(functional, "rank_ratio", 0.5)


# --- low-rank --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_svd_at_full_rank_reproduces_outputs(which, request, tiny_splits):
    model = request.getfixturevalue(which)
    full, ranks = factorize_model(model, "rank_ratio", 1.0, skip_if_no_saving=False)
    assert all(r > 0 for r in ranks.values())  # every Dense/Conv2D layer was factorized
    assert len(full.layers) == len(model.layers) + len(ranks)
    x = tiny_splits.test.x
    assert np.allclose(full.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


@pytest.mark.slow
def test_low_rank_skips_layers_without_saving_and_checks_rank(mlp):
    small, ranks = factorize_model(mlp, "rank_ratio", 0.25)
    assert ranks == {"dense_0": 8, "output": 3}  # 8·(64+32) < 64·32; 3·(32+10) < 320
    assert small.count_params() < mlp.count_params()
    _, ranks = factorize_model(mlp, "energy", 0.999999)
    assert ranks["output"] == 0  # near-full rank would not save anything: left dense
    with pytest.raises(
        LeanmlError, match="compress.lowrank.values: rank 99 is larger than every layer"
    ):
        factorize_model(mlp, "rank", 99)


# --- quantization ----------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize(("per_channel", "symmetric"), [(False, True), (True, False)])
def test_uniform_quantization_levels_and_error(bits, per_channel, symmetric):
    w = np.random.default_rng(0).normal(size=(20, 6)).astype(np.float32)
    w[0, 0] = 0.0
    q = quantize(w, bits, per_channel, symmetric)
    assert q.codes.max() < 2**bits and q.scale.size == (6 if per_channel else 1)
    back = q.dequantize()
    for column in back.T if per_channel else [back]:
        assert len(np.unique(column)) <= 2**bits
    assert np.all(np.abs(back - w) <= q.scale / 2 + 1e-6)
    assert back[0, 0] == 0.0  # zero stays exactly zero
    assert np.array_equal(
        unpack_bits(pack_bits(q.codes, bits), bits, q.codes.size), q.codes.reshape(-1)
    )


@pytest.mark.slow
def test_packed_k_bit_file_size_is_k_bits_per_weight(mlp, tmp_path):
    small, quantized = quantize_kernels(mlp, 4, per_channel=True, symmetric=True)
    path = encode(small, tmp_path / "k4.packed", quantized=quantized)
    n_kernel = sum(q.codes.size for q in quantized.values())
    header = path.stat().st_size - n_kernel * 4 / 8 - 4 * (32 + 10) - 4 * 2 * (32 + 10)
    assert 0 < header < 4000  # architecture JSON; the rest is 4 bits a weight plus scales/biases
    assert np.allclose(decode(path).predict(np.zeros((2, 8, 8, 1)), verbose=0),
                       small.predict(np.zeros((2, 8, 8, 1)), verbose=0), atol=1e-6)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["dynamic_int8", "float16", "full_int8"])
def test_tflite_agrees_with_keras(mode, mlp, tiny_splits):
    runner = TFLiteRunner(to_tflite(mlp, mode, tiny_splits.train.x[:50]))
    x = tiny_splits.test.x
    agree = np.mean(runner(x).argmax(1) == mlp.predict(x, verbose=0).argmax(1))
    assert agree >= 0.9


@pytest.mark.slow
def test_qat_layers_save_load_safely_and_strip_to_their_quantized_twin(mlp, tiny_splits, tmp_path):
    seed_everything(0)
    trainable = qat_model(mlp, bits=3, per_channel=True, symmetric=True)
    path = measure.save_model(trainable, tmp_path / "qat.keras")
    loaded = models.load(path)  # safe_mode=True: the custom layers are registered
    x = tiny_splits.test.x
    assert np.allclose(loaded.predict(x, verbose=0), trainable.predict(x, verbose=0), atol=1e-6)
    stripped, quantized = strip_qat(trainable)
    assert all(
        type(layer) in (keras.layers.Flatten, keras.layers.Dense) for layer in stripped.layers
    )
    assert np.allclose(stripped.predict(x, verbose=0), trainable.predict(x, verbose=0), atol=1e-5)
    # What is saved holds exactly the 3-bit values of its codes, per output channel at most
    # 2^3 - 1 = 7 symmetric levels (plain float32 kernels would hold ~64 distinct values each).
    weights = stripped.get_weights()
    assert sorted(quantized) == [0, 2]  # the two kernels, not the biases
    for i, q in quantized.items():
        assert np.array_equal(weights[i], q.dequantize())
        assert q.codes.min() >= 0 and q.codes.max() <= 6
        for column in weights[i].T:
            assert len(np.unique(column)) <= 7
    # and they are the fake-quantized kernels the QAT layers trained with
    for layer, plain in zip(trainable.layers[1:], stripped.layers[1:], strict=True):
        fake = keras.ops.convert_to_numpy(fake_quantize(layer.kernel, 3, True, True))
        assert np.allclose(np.asarray(plain.kernel), fake, atol=1e-6)


# --- the stage script ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "edit", "message"),
    [
        (["distill"], None, "unknown method 'distill'; registered methods are prune, quantize"),
        (["prune"], ("prune", "sparsities", [0.5, 1.0]), "compress.prune.sparsities[1]: must be"),
    ],
)
def test_stage_refuses_bad_input_before_any_run(argv, edit, message, tmp_path):
    import shutil
    import subprocess
    import sys

    import yaml

    from tests.conftest import ROOT, project_env

    for name in ("stages", "leanml"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    cfg = parse({}).model_dump()  # a valid params.yaml with every section at its default
    if edit:
        cfg["compress"][edit[0]][edit[1]] = edit[2]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(cfg))
    done = subprocess.run(
        [sys.executable, "stages/compress.py", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=project_env({"LEANML_ROOT": str(tmp_path)}),
        timeout=300,
    )
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "models").exists()
