"""Measurements: exact parameter and FLOP counts, real file bytes, sane latency numbers."""

import keras
import numpy as np
import pytest

from leanml import measure, models
from leanml.params import CNN, MLP, Measure, ModelSpec


def test_params_and_nonzero():
    model = models.build(ModelSpec(mlp=MLP(hidden_units=[4])), (3,), 2)
    counts = measure.count_params(model)
    assert counts["params"] == 3 * 4 + 4 + 4 * 2 + 2
    weights = model.get_weights()
    weights[0][:] = 0.0  # zero the first kernel: 12 weights
    weights[1][:] = 0.0  # biases start at zero anyway: 4 + 2
    model.set_weights(weights)
    assert measure.count_params(model)["nonzero_params"] == 8


def test_flops_by_hand():
    mlp = models.build(ModelSpec(mlp=MLP(hidden_units=[128])), (8, 8, 1), 10)
    assert measure.flops(mlp) == (2 * 64 * 128 + 128) + (2 * 128 * 10 + 10)
    cnn = models.build(
        ModelSpec(kind="cnn", cnn=CNN(filters=[2], kernel_size=3, dense_units=[])), (4, 4, 1), 3
    )
    conv = 4 * 4 * 2 * (2 * 3 * 3 * 1 + 1)  # same padding: 16 positions, 2 filters
    dense = 2 * (2 * 2 * 2) * 3 + 3  # after 2x2 pooling: 2*2*2 inputs
    assert measure.flops(cnn) == conv + dense


@pytest.mark.slow
def test_saved_file_is_real_and_has_no_optimizer_state(tmp_path, tiny_splits):
    model = models.build(ModelSpec(), tiny_splits.input_shape, 10)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(tiny_splits.train.x, tiny_splits.train.y, epochs=1, verbose=0)
    path = measure.save_model(model, tmp_path / "m.keras")
    sizes = measure.file_bytes(path)
    assert sizes["file_bytes"] == path.stat().st_size
    assert 0 < sizes["gzip_bytes"] < sizes["file_bytes"]
    # float32 weights plus container overhead, but not Adam's two extra copies
    assert sizes["file_bytes"] < 2 * 4 * model.count_params()
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(
        loaded.predict(tiny_splits.val.x, verbose=0), model.predict(tiny_splits.val.x, verbose=0)
    )


def test_saved_file_is_byte_identical_for_identical_weights(tmp_path, tiny_splits):
    """No clock in the bytes: not Keras's save date, not the zip entries' timestamps."""
    import json
    import zipfile

    from leanml.io import ZIP_EPOCH

    model = models.build(ModelSpec(mlp=MLP(hidden_units=[8])), tiny_splits.input_shape, 10)
    first = measure.save_model(model, tmp_path / "a.keras")
    second = measure.save_model(model, tmp_path / "b.keras")
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        assert {i.date_time for i in archive.infolist()} == {ZIP_EPOCH}
        metadata = json.loads(archive.read("metadata.json"))
    assert metadata["date_saved"] == measure.FIXED_DATE_SAVED and metadata["keras_version"]
    loaded = keras.models.load_model(first, safe_mode=True)
    x = tiny_splits.val.x
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    # a loaded model saved again is the same file too
    assert measure.save_model(loaded, tmp_path / "c.keras").read_bytes() == first.read_bytes()


def test_saved_file_does_not_depend_on_models_built_before(tmp_path, tiny_splits):
    """Layers are named, not numbered by Keras (`flatten_3`): a model rebuilt later in the same
    process (a resumed search's best model) is the same file."""
    for kind in ("mlp", "cnn"):
        spec = ModelSpec(kind=kind, mlp=MLP(hidden_units=[8]), cnn=CNN(filters=[2], dense_units=[]))
        first = models.build(spec, tiny_splits.input_shape, 10)
        models.build(spec, tiny_splits.input_shape, 10)  # advances Keras's automatic names
        again = models.build(spec, tiny_splits.input_shape, 10)
        again.set_weights(first.get_weights())
        a = measure.save_model(first, tmp_path / f"{kind}_a.keras").read_bytes()
        assert a == measure.save_model(again, tmp_path / f"{kind}_b.keras").read_bytes()


def test_prepared_data_files_are_byte_identical(tmp_path, tiny_splits):
    from leanml import data, paths

    for name in ("a", "b"):
        out = paths.load(tmp_path / name).prepare
        data.save(tiny_splits, out, data.card(tiny_splits, "digits", 0))
    for split in ("train.npz", "val.npz", "test.npz"):
        a, b = (tmp_path / n / "data/prepared" / split for n in ("a", "b"))
        assert a.read_bytes() == b.read_bytes()
    again = data.load_prepared(paths.load(tmp_path / "a").prepare)
    np.testing.assert_array_equal(again.train.x, tiny_splits.train.x)


def test_latency_percentiles(tiny_splits):
    model = models.build(ModelSpec(), tiny_splits.input_shape, 10)
    numbers = measure.latency(model, tiny_splits.val.x[:8], warmup=2, runs=20, batch_size=32)
    assert 0 < numbers["latency_ms_p50"] <= numbers["latency_ms_p95"]
    assert numbers["throughput_per_s"] > 0


def test_measure_bundle(tmp_path, tiny_splits):
    model = models.build(ModelSpec(), tiny_splits.input_shape, 10)
    path = measure.save_model(model, tmp_path / "m.keras")
    out = measure.measure(model, path)
    assert out == {
        **measure.count_params(model),
        "file_bytes": path.stat().st_size,
        "gzip_bytes": measure.file_bytes(path)["gzip_bytes"],
        "flops": measure.flops(model),
    }  # no latency: only the evaluate stage times models, in one runtime


def test_score_measures_keras_and_tflite_files_alike(tmp_path, tiny_splits):
    """`measure.score`, the one path of compress and evaluate: the same model as .keras and as
    float .tflite gives the same counts and (near) the same predictions; sizes are real bytes."""
    import pytest
    import tensorflow as tf

    from leanml.errors import LeanmlError

    model = models.build(ModelSpec(mlp=MLP(hidden_units=[8])), tiny_splits.input_shape, 10)
    rng = np.random.default_rng(0)  # non-zero biases: the converter drops all-zero ones
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    keras_file = measure.save_model(model, tmp_path / "m.keras")
    tflite_file = tmp_path / "m.tflite"
    tflite_file.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    splits = {"val": tiny_splits.val, "test": tiny_splits.test}
    cfg = Measure(warmup=1, runs=3, batch_size=8)
    sample = tiny_splits.val.x[:4]
    scored = {}
    for path in (keras_file, tflite_file):
        runner = measure.load_runner(path, "test")
        scored[path.suffix] = measure.score(runner, path, path, splits, 10)
        row = scored[path.suffix].row
        assert row["file_bytes"] == row["artifact_bytes"] == path.stat().st_size
        assert 0 <= row["val_accuracy"] <= 1 and "latency_ms_p50" not in row
        assert runner.latency(sample, cfg)["latency_ms_p50"] > 0  # both runners time alike
    k, t = scored[".keras"], scored[".tflite"]
    for key in ("params", "nonzero_params", "flops"):
        assert (
            k.row[key] == t.row[key] == measure.count_params(model).get(key, measure.flops(model))
        )
    for split in splits:
        assert np.mean(k.labels[split] == t.labels[split]) >= 0.98
        assert k.row[f"{split}_accuracy"] == np.mean(k.labels[split] == splits[split].y)
    runner = measure.load_runner(keras_file, "test")
    counts = {"params": 1, "nonzero_params": 1, "flops": 1}
    given = measure.score(runner, keras_file, tflite_file, splits, 10, counts=counts).row
    assert {k: given[k] for k in counts} == counts and "latency_ms_p50" not in given
    assert given["artifact_bytes"] == tflite_file.stat().st_size
    with pytest.raises(LeanmlError, match="outputs shape .* but the data has 3 classes"):
        measure.score(runner, keras_file, keras_file, splits, 3)
