"""Dataset registry and splits: the embedded default, a user's .npz and every bad .npz case."""

import numpy as np
import pytest

from leanml import data, paths
from leanml.errors import LeanmlError


def test_digits_is_embedded_and_scaled():
    x, y = data.load("digits")
    assert x.shape == (1797, 8, 8, 1)
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert sorted(np.unique(y)) == list(range(10))


def test_split_is_stratified_seeded_and_disjoint(digits_splits):
    s = digits_splits
    assert len(s.train.y) + len(s.val.y) + len(s.test.y) == 1797
    assert abs(len(s.test.y) / 1797 - 0.15) < 0.01
    for part in (s.train, s.val, s.test):
        share = np.bincount(part.y, minlength=10) / len(part.y)
        assert share.min() > 0.07  # every class present in roughly its share
    x, y = data.load("digits")
    again = data.split(x, y, 0.15, 0.15, seed=0)
    assert data.checksum(again) == data.checksum(s)
    other = data.split(x, y, 0.15, 0.15, seed=1)
    assert data.checksum(other) != data.checksum(s)


def test_unknown_dataset_name():
    with pytest.raises(LeanmlError, match="base.dataset: must be one of"):
        data.load("cifar")


def _npz(tmp_path, name="d.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_user_npz_tabular(tmp_path):
    rng = np.random.default_rng(0)
    path = _npz(tmp_path, x=rng.normal(size=(90, 5)) * 10, y=np.repeat([0, 1, 2], 30))
    x, y = data.load("npz", str(path))
    assert x.shape == (90, 5) and y.dtype == np.int64
    splits = data.split(x, y, 0.2, 0.2, seed=0)
    assert splits.input_shape == (5,)
    assert splits.train.x.min() >= 0 and splits.train.x.max() <= 1


def test_user_npz_images_get_a_channel(tmp_path):
    path = _npz(tmp_path, x=np.zeros((40, 6, 6)), y=np.repeat([0, 1], 20))
    x, _ = data.load("npz", str(path))
    assert x.shape == (40, 6, 6, 1)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((10, 3))}, "needs arrays 'x' and 'y'"),
        ({"x": np.zeros(10), "y": np.zeros(10)}, "x must have shape (n, features)"),
        ({"x": np.zeros((10, 3)), "y": np.zeros(9)}, "y must have shape (n,) with n = len(x) = 10"),
        ({"x": np.full((10, 3), np.nan), "y": np.arange(10) % 2}, "NaN or infinite"),
        ({"x": np.zeros((10, 3)), "y": np.linspace(0, 1, 10)}, "found non-integers"),
        ({"x": np.zeros((10, 3)), "y": np.array([0, 2] * 5)}, "found labels [0, 2]"),
        ({"x": np.zeros((10, 3)), "y": np.zeros(10)}, "K ≥ 2"),
        ({"x": np.zeros((10, 4, 4, 2)), "y": np.arange(10) % 2}, "1 or 3 channels"),
        ({"x": np.array(["a"] * 10), "y": np.arange(10) % 2}, "real numeric array"),
        ({"x": np.full((10, 3), np.inf), "y": np.arange(10) % 2}, "30 NaN or infinite value(s)"),
        ({"x": np.zeros((0, 3)), "y": np.zeros(0, int)}, "holds no samples"),
        ({"x": np.zeros((10, 2, 2, 2, 1)), "y": np.arange(10) % 2}, "got (10, 2, 2, 2, 1)"),
        ({"x": np.zeros((10, 3)), "y": np.eye(2)[np.arange(10) % 2]}, "got (10, 2)"),
        ({"x": np.zeros((10, 3)), "y": np.r_[np.nan, np.arange(9) % 2]}, "found 1 NaN or infinite"),
        (
            {"x": np.zeros((10, 3)), "y": np.array(["a", "b"] * 5)},
            "class labels 0..K-1, got dtype <U1",
        ),
    ],
)
def test_bad_npz(tmp_path, arrays, message):
    path = _npz(tmp_path, **arrays)
    with pytest.raises(LeanmlError) as err:
        data.load("npz", str(path))
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_pickled_npz_is_refused(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, x=np.array([{"a": 1}] * 4, dtype=object), y=np.arange(4))
    with pytest.raises(LeanmlError, match="pickled Python objects, which are refused"):
        data.load("npz", str(path))


def test_truncated_and_missing_npz(tmp_path):
    path = _npz(tmp_path, x=np.zeros((50, 3)), y=np.arange(50) % 2)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(LeanmlError, match="not a readable .npz file"):
        data.load("npz", str(path))
    path.write_bytes(b"PK\x03\x04" + np.random.default_rng(0).bytes(300))  # a zip header only
    with pytest.raises(LeanmlError, match="not a readable .npz file .BadZipFile"):
        data.load("npz", str(path))
    with pytest.raises(LeanmlError, match="base.npz_path: file not found"):
        data.load("npz", str(tmp_path / "nope.npz"))


def test_too_few_samples_per_class():
    x = np.zeros((60, 3), np.float32)
    y = np.array([0] * 55 + [1] * 5)
    with pytest.raises(LeanmlError, match="class 1 has 5 sample"):
        data.split(x, y, 0.15, 0.15, seed=0)


def test_save_and_load_prepared_round_trip(tmp_path, tiny_splits):
    out = paths.load(tmp_path).prepare
    card = data.card(tiny_splits, "digits", 0)
    data.save(tiny_splits, out, card)
    back = data.load_prepared(out)
    assert data.checksum(back) == card["sha256"]
    assert card["counts"]["train"]["total"] == 300
    assert not list(out.dir.glob(".*"))  # no temp files left behind


def test_missing_prepared_names_the_stage(tmp_path):
    with pytest.raises(LeanmlError, match="written by the prepare stage"):
        data.load_prepared(paths.load(tmp_path).prepare)


@pytest.mark.slow
def test_keras_dataset_offline_suggests_alternatives(tmp_path, closed_port):
    """With an empty Keras cache and no network, fashion_mnist fails with a helpful message.

    "No network" is made certain, not assumed: Keras downloads with urllib, which honours the
    proxy variables, and the proxy is a loopback port where nothing listens, so the download is
    refused at once and never happens, online or not."""
    import subprocess
    import sys

    from tests.conftest import project_env

    code = (
        "from leanml import data\n"
        "from leanml.errors import LeanmlError\n"
        "try:\n    data.load('fashion_mnist')\nexcept LeanmlError as e:\n    print('ERR', e)\n"
    )
    proxy = f"http://127.0.0.1:{closed_port}"
    offline = {"KERAS_HOME": str(tmp_path), "NO_PROXY": "", "no_proxy": ""}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        offline[name] = offline[name.lower()] = proxy
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            env=project_env(offline),
        )
    except subprocess.TimeoutExpired:
        pytest.skip("loading fashion_mnist did not fail within 120 s despite the refused proxy")
    if "ERR" not in done.stdout:
        pytest.skip(
            "Keras reached the network despite the proxy; the offline path is not exercised"
        )
    assert "could not load 'fashion_mnist' through Keras" in done.stdout
    assert "digits" in done.stdout and "npz" in done.stdout
