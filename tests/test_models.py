"""Model builder: both kinds build, predict probabilities and honour the spec."""

import keras
import numpy as np
import pytest

from leanml import models
from leanml.errors import LeanmlError
from leanml.params import CNN, MLP, ModelSpec


def test_mlp_matches_spec():
    spec = ModelSpec(kind="mlp", mlp=MLP(hidden_units=[32, 16], dropout=0.2))
    model = models.build(spec, (8, 8, 1), 10)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [32, 16, 10]
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in model.layers) == 2
    # 64*32+32 + 32*16+16 + 16*10+10
    assert model.count_params() == 2080 + 528 + 170


def test_cnn_builds_for_images_and_predicts_probabilities():
    model = models.build(ModelSpec(kind="cnn", cnn=CNN(filters=[4, 8])), (8, 8, 1), 10)
    probs = model.predict(np.random.rand(3, 8, 8, 1).astype("float32"), verbose=0)
    assert probs.shape == (3, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in model.layers) == 2


def test_cnn_pools_only_while_the_map_is_big_enough():
    model = models.build(ModelSpec(kind="cnn", cnn=CNN(filters=[2, 2, 2, 2])), (8, 8, 1), 3)
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert len(pools) == 3  # 8 -> 4 -> 2 -> 1, then no more


def test_cnn_on_tabular_data_is_a_clear_error():
    with pytest.raises(LeanmlError, match="'cnn' needs image data"):
        models.build(ModelSpec(kind="cnn"), (5,), 3)


def test_load_missing_and_corrupt(tmp_path):
    with pytest.raises(LeanmlError, match="written by the train stage"):
        models.load(tmp_path / "none.keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(LeanmlError, match="corrupt or truncated"):
        models.load(bad)


def test_load_refuses_code_in_a_model_file(tmp_path):
    """safe_mode=True: a Lambda layer (pickled Python code) is refused, not run."""
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Lambda(lambda x: x * 2), keras.layers.Dense(2)]
    )
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(LeanmlError) as err:
        models.load(path, "search@ga")
    assert "not a loadable Keras model" in str(err.value) and "safe_mode" in str(err.value)
    assert "`dvc repro -f search@ga`" in str(err.value)
