"""Issue 17: meta NAS sources exclude the target's own data; transfer only where shapes fit."""

import numpy as np
import pytest

from leanml import data
from leanml.nas.meta import MetaNAS, MetaRow, transfer_plan, transfer_weights
from leanml.nas.space import ArchSpace
from leanml.nas.tasks import (
    bundled_tasks,
    data_digest,
    describe_sources,
    exclusion,
    select_sources,
    source_tasks,
)
from leanml.params import Nas, NasSpace


def _as_user_npz(tmp_path, name):
    """A bundled scikit-learn dataset saved as a user's .npz and read back by the prepare path."""
    from sklearn import datasets

    if name == "digits":
        bunch = datasets.load_digits()
        x = bunch.images  # 0..16, (n, 8, 8): not the bundled task's 0..1 scale nor shape
    else:
        bunch = getattr(datasets, f"load_{name}")()
        x = bunch.data
    path = tmp_path / f"{name}.npz"
    np.savez(path, x=x, y=bunch.target)
    return data.load("npz", str(path))


def test_data_digest_ignores_order_and_scale_but_not_content():
    from sklearn.datasets import load_iris, load_wine

    wine = load_wine().data
    rng = np.random.default_rng(0)
    shuffled = wine[rng.permutation(len(wine))]
    scaled = (shuffled - wine.min(axis=0)) / (wine.max(axis=0) - wine.min(axis=0))
    assert data_digest(wine) == data_digest(shuffled) == data_digest(scaled.astype(np.float32))
    changed = wine.copy()
    changed[0, 0] += 0.5 * (wine[:, 0].max() - wine[:, 0].min())  # one value of one sample
    assert data_digest(changed) != data_digest(wine)
    assert data_digest(wine[:-1]) != data_digest(wine)
    assert data_digest(load_iris().data) != data_digest(wine)


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer"])
def test_a_bundled_table_brought_as_the_target_is_excluded_by_its_digest(tmp_path, name, capsys):
    x, y = _as_user_npz(tmp_path, name)
    splits = data.split(x, y, 0.15, 0.15, 0)  # what the prepare stage makes of it
    assert splits.train.x.shape[1:] == x.shape[1:]
    kept, excluded = select_sources(bundled_tasks(0, 1), x)
    assert excluded == [{"task": name, "reason": "same data as the target (equal data digest)"}]
    others = {"iris", "wine", "breast_cancer", "digits_0to4", "digits_5to9", "synthetic_0"}
    assert {t.name for t in kept} == others - {name}
    assert f"nas_metadata: {name} left out: same data as the target" in capsys.readouterr().out


def test_a_split_of_the_target_is_excluded_and_only_the_train_split_is_kept_on_purpose(tmp_path):
    # digits brought as a user's file (0..16 ints, (n, 8, 8)): the bundled digits subsets hold
    # its val/test images; they are a split of the same data, not another task
    x, _ = _as_user_npz(tmp_path, "digits")
    kept, excluded = select_sources(bundled_tasks(0, 0), x)
    reasons = {e["task"]: e["reason"] for e in excluded}
    assert set(reasons) == {"digits_0to4", "digits_5to9"}
    assert all("100% of its samples are the target's" in r for r in reasons.values())
    assert {t.name for t in kept} == {"iris", "wine", "breast_cancer"}
    # a half of a table is a split too; a table shares nothing with another one
    from sklearn.datasets import load_iris, load_wine

    wine = load_wine().data
    assert "100% of its samples" in exclusion(wine[::2], wine)  # a half of the target
    assert "50% of its samples" in exclusion(wine, wine[::2])  # the target is half of it
    assert exclusion(load_iris().data, wine) == ""
    # the digits target's own train split, used on purpose, is kept and marked as same data
    splits = data.split(*data.load("digits"), 0.15, 0.15, 0)
    tasks = bundled_tasks(0, 0, (splits.train.x, splits.train.y))
    kept, excluded = select_sources(tasks, data.load("digits")[0])
    assert excluded == [] and [t.name for t in kept if t.from_target_train] == [
        "digits_0to4",
        "digits_5to9",
    ]
    line = describe_sources(
        {
            "tasks": [{"task": t.name} for t in kept],
            "same_data": ["digits_0to4", "digits_5to9"],
            "excluded": [{"task": "wine", "reason": "same data as the target"}],
        }
    )
    assert "digits_0to4, digits_5to9 built from the target's train split" in line
    assert line.endswith("left out: wine: same data as the target")


def test_source_tasks_split_as_before():
    """The refactor keeps each source task's split (the meta-dataset stays byte-identical)."""
    tasks = dict(source_tasks(0, 1))
    assert tasks["digits_0to4"].train.x.shape[1:] == (8, 8, 1)
    assert len(tasks["iris"].train.y) == 105 and len(tasks["iris"].val.y) == 45
    assert tasks["wine"].train.x.min() == 0.0 and tasks["wine"].train.x.max() == 1.0


def _space(image: bool, **cfg) -> ArchSpace:
    base = {"max_layers": 2, "skip": [False], "batch_norm": [False], "dropouts": [0.0]}
    return ArchSpace(NasSpace(**(base | cfg)), image_input=image)


def test_transfer_is_skipped_when_the_input_shape_differs_even_if_layer_shapes_fit(tmp_path):
    # issue 17: conv kernels learned on 8 x 8 images have the shapes of a 12 x 12 child's, but
    # do not fit it; per-layer shapes alone would copy them
    space = _space(True)
    arch = space.project([{"kind": "conv", "width": 8, "kernel": 3}])
    source = space.build(arch, (8, 8, 1), 5)
    source.save(tmp_path / "src.keras")
    child = space.build(arch, (12, 12, 1), 5)
    conv = child.get_layer("l0_conv")
    assert [w.shape for w in conv.weights] == [w.shape for w in source.get_layer("l0_conv").weights]
    before = [w.copy() for w in conv.get_weights()]
    copied, skipped = transfer_plan(child, source)
    assert (
        copied == [] and "input shape (8, 8, 1) is not the target's (12, 12, 1)" in skipped["input"]
    )
    assert transfer_weights(child, tmp_path / "src.keras") == 0
    for a, b in zip(before, conv.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_transfer_copies_per_layer_only_where_shapes_fit(tmp_path):
    space = _space(False, units=[16, 32], kinds=["dense"])
    source = space.build(space.project([{"width": 16}, {"width": 16}]), (6,), 3)
    source.save(tmp_path / "src.keras")
    # the same classes: the output layer fits too, but is the source's classes: never copied
    child = space.build(space.project([{"width": 16}, {"width": 32}]), (6,), 3)
    copied, skipped = transfer_plan(child, source)
    assert copied == ["l0_dense"]
    assert set(skipped) == {"l1_dense"} and "(16, 16)" in skipped["l1_dense"]
    assert transfer_weights(child, tmp_path / "src.keras") == 1
    np.testing.assert_array_equal(
        child.get_layer("l0_dense").get_weights()[0], source.get_layer("l0_dense").get_weights()[0]
    )
    assert not np.array_equal(
        child.get_layer("output").get_weights()[0][:16], source.get_layer("output").get_weights()[0]
    )


def test_meta_transfers_warm_starts_only_from_sources_whose_shapes_fit(tmp_path, capsys):
    space = _space(False, kinds=["dense"], units=[16])
    arch = space.project([{"width": 16}])
    feats = {f: 0.5 for f in ("log_samples", "log_features", "classes", "class_entropy")}
    feats |= {"knn_accuracy": 0.9, "linear_accuracy": 0.9}
    wide = space.project([{"width": 16}, {"width": 16}])
    space.build(wide, (13,), 3).save(tmp_path / "wine.keras")  # 13 features: not the target's
    space.build(arch, (4,), 2).save(tmp_path / "same.keras")  # the target's 4 features
    rows = [MetaRow("wine", feats, wide, 0.9), MetaRow("same", feats, arch, 0.8)]
    models = {t: str(tmp_path / f"{t}.keras") for t in ("wine", "same")}
    cfg = Nas(budget=4, meta={"neighbours": 2, "warm_start": 2})
    algo = MetaNAS(
        space,
        cfg,
        0,
        cfg.budget,
        rows=rows,
        target=feats,
        models=models,
        input_shape=(4,),
        n_classes=3,
    )
    warm = algo.ask()
    assert warm == [wide, arch]
    assert algo.init_source(wide) is None  # its input shape (13,) is not the target's (4,)
    assert algo.init_source(arch) == models["same"]
    out = capsys.readouterr().out
    assert (
        "warm start from wine: not initialised from its model (input: the source's input "
        "shape (13,) is not the target's (4,))" in out
    )
    assert "warm start from same: 1 layer(s) initialised from its model (l0_dense)" in out
    log = algo.log[0]
    assert [(t["task"], t["copied"]) for t in log["transfer"]] == [
        ("wine", []),
        ("same", ["l0_dense"]),
    ]
    assert any("wine" in s and "(13,)" in s for s in log["transfer_skipped"])
