"""NAS: the architecture space, the REINFORCE controller, the meta warm start, the strategies."""

from types import SimpleNamespace

import numpy as np
import pytest

from leanml import nas
from leanml.data import Split, Splits
from leanml.nas.meta import MetaNAS, MetaRow, transfer_weights
from leanml.nas.objective import nas_objective, reward
from leanml.nas.rl import RLNAS
from leanml.nas.space import ArchSpace
from leanml.params import RL, Fit, Nas, NasSpace, Reward
from leanml.trials import runner
from leanml.trials.base import Trial, key
from leanml.trials.checkpoint import Checkpoint


def test_encode_decode_round_trip():
    space = ArchSpace(NasSpace(), image_input=True)
    rng = np.random.default_rng(0)
    for _ in range(300):
        arch = space.decode([rng.integers(n) for n in space.sizes])
        assert space.contains(arch)
        assert space.decode(space.encode(arch)) == arch
        assert space.canonical(arch) == arch
        kinds = [layer["kind"] for layer in space.layers(arch)]
        assert kinds == sorted(kinds, key=lambda k: k != "conv")  # conv layers come first
    assert len(space) == 1 + 7 * 3


def test_tabular_space_has_no_conv():
    space = ArchSpace(NasSpace(), image_input=False)
    rng = np.random.default_rng(1)
    assert all(
        layer["kind"] == "dense" for _ in range(50) for layer in space.layers(space.sample(rng))
    )


def test_conv_is_left_out_on_tabular_data_with_one_line_saying_so():
    from leanml.errors import LeanmlError

    # the default kinds on 13 features: conv dropped, one line names the shape and the kinds
    assert nas.space_kinds(["dense", "conv"], (13,)) == ["dense"]
    assert nas.kinds_notice(["dense", "conv"], (13,)) == (
        "nas: the data is not images (samples of shape (13,)): conv layers left out of the "
        "space; kinds: [dense]"
    )
    # images keep both kinds, and dense alone is never touched: no notice
    assert nas.space_kinds(["dense", "conv"], (8, 8, 1)) == ["dense", "conv"]
    assert nas.kinds_notice(["dense", "conv"], (8, 8, 1)) is None
    assert nas.kinds_notice(["dense"], (13,)) is None
    # conv alone on tabular data would leave nothing to search: an error, before any space
    with pytest.raises(
        LeanmlError, match=r"'conv' needs image data.*\(13,\): use kinds: \[dense\]"
    ):
        nas.space_kinds(["conv"], (13,))
    with pytest.raises(LeanmlError, match="use kinds: \\[dense\\]"):
        ArchSpace(NasSpace(kinds=["conv"]), image_input=False)


def test_meta_warm_start_from_a_conv_source_is_not_transferred_on_tabular_data(tmp_path):
    image_space = ArchSpace(NasSpace(), image_input=True)
    space = ArchSpace(NasSpace(), image_input=False)
    feats = {f: 0.5 for f in ("log_samples", "log_features", "classes", "class_entropy")}
    feats |= {"knn_accuracy": 0.9, "linear_accuracy": 0.9}
    conv = image_space.project([{"kind": "conv", "width": 16}, {"kind": "dense", "width": 32}])
    dense = image_space.project([{"kind": "dense", "width": 64}])
    rows = [MetaRow("digits", feats, conv, 0.9), MetaRow("wine", feats, dense, 0.8)]
    models = {"digits": str(tmp_path / "digits.keras"), "wine": str(tmp_path / "wine.keras")}
    cfg = Nas(budget=4, meta={"neighbours": 2, "warm_start": 2})
    algo = MetaNAS(space, cfg, 0, cfg.budget, rows=rows, target=feats, models=models)
    warm = algo.ask()
    assert len(warm) == 2 and all(space.contains(a) for a in warm)
    # the digits model (a conv net) is tried as projected to dense, without its weights; the
    # dense wine model still initialises its warm start
    assert algo.init_source(warm[0]) is None
    assert algo.init_source(warm[1]) == models["wine"]
    (skipped,) = algo.log[0]["transfer_skipped"]
    assert "digits" in skipped and "conv layers are not in this space" in skipped


@pytest.mark.slow
@pytest.mark.parametrize(("image", "shape"), [(True, (8, 8, 1)), (False, (6,))])
def test_every_sampled_architecture_builds_and_trains_a_step(image, shape):
    space = ArchSpace(NasSpace(), image_input=image)
    rng = np.random.default_rng(2)
    x = rng.random((16, *shape)).astype("float32")
    y = np.arange(16) % 3
    for _ in range(4):
        arch = space.sample(rng)
        model = space.build(arch, shape, 3)
        model.compile("adam", "sparse_categorical_crossentropy")
        loss = model.train_on_batch(x, y)
        assert np.isfinite(loss)
        assert model.predict(x, verbose=0).shape == (16, 3)


class ToySpace:
    """Decisions only: reward = share of decisions equal to a hidden target (no Keras)."""

    sizes = [3, 2, 4, 3, 2, 2, 3, 2]
    names = [f"d{i}" for i in range(len(sizes))]
    target = [i % s for i, s in enumerate(sizes)]

    def decode(self, indices):
        return {n: int(i) for n, i in zip(self.names, indices, strict=True)}

    def reward(self, arch):
        return float(np.mean([arch[n] == t for n, t in zip(self.names, self.target, strict=True)]))


@pytest.mark.slow
@pytest.mark.parametrize(("controller", "updates"), [("independent", 60), ("lstm", 30)])
def test_reinforce_learns_a_hidden_target(controller, updates):
    space = ToySpace()
    cfg = SimpleNamespace(
        rl=RL(
            controller=controller,
            learning_rate=0.1 if controller == "independent" else 0.02,
            children_per_update=4,
            entropy_weight=0,
        )
    )
    algo = RLNAS(space, cfg, 0, 10**6)
    first = None
    for _ in range(updates):
        archs = algo.ask()
        rewards = [space.reward(a) for a in archs]
        first = first if first is not None else np.mean(rewards)
        algo.tell(archs, rewards)
    greedy = [int(np.argmax(p)) for p in algo.policy.probabilities()]
    assert greedy == space.target
    assert algo.log[-1]["mean_reward"] > first
    assert algo.log[-1]["entropy"] < algo.log[0]["entropy"]


def meta_rows(space):
    """A toy meta-dataset of two source tasks and target features near the first."""
    rng = np.random.default_rng(3)
    near = {
        "log_samples": 3.0,
        "log_features": 1.8,
        "classes": 10,
        "class_entropy": 1.0,
        "knn_accuracy": 0.98,
        "linear_accuracy": 0.96,
    }
    far = {
        "log_samples": 2.0,
        "log_features": 0.6,
        "classes": 3,
        "class_entropy": 0.9,
        "knn_accuracy": 0.9,
        "linear_accuracy": 0.9,
    }
    rows = []
    for task, feats in (("near", near), ("far", far)):
        for i in range(4):
            rows.append(MetaRow(task, feats, space.sample(rng), score=0.5 + i / 10))
    return rows, near


def test_meta_warm_start_uses_the_nearest_task(tmp_path):
    space = ArchSpace(NasSpace(), image_input=True)
    rows, near = meta_rows(space)
    target = {**near, "knn_accuracy": 0.97}
    cfg = Nas(budget=8)
    algo = MetaNAS(
        space,
        cfg,
        0,
        cfg.budget,
        rows=rows,
        target=target,
        models={"near": str(tmp_path / "near.keras")},
    )
    assert algo.nearest[0] == "near"
    best_near = max((r for r in rows if r.task == "near"), key=lambda r: r.score)
    warm = algo.ask()  # every warm start in one batch
    first = warm[0]
    assert first == best_near.arch and len(warm) == cfg.meta.warm_start
    assert algo.init_source(first) == str(tmp_path / "near.keras")
    warm_scores = sorted((r.score for r in rows if r.task == "near"), reverse=True)
    assert [w["task"] for w in algo.log[0]["warm_start"]][:1] == ["near"]
    algo.tell(warm, [warm_scores[0]] + [0.5] * (len(warm) - 1))
    seen = {key(arch) for arch in warm}
    for _ in range(6):  # after the warm start: surrogate-ranked, never a repeat
        arch = algo.ask()[0]
        assert space.contains(arch) and key(arch) not in seen
        seen.add(key(arch))
        algo.tell([arch], [0.5])


def test_transfer_copies_fitting_layers(tmp_path):
    space = ArchSpace(
        NasSpace(
            max_layers=1,
            kinds=["dense"],
            units=[16],
            skip=[False],
            batch_norm=[False],
            dropouts=[0.0],
        ),
        image_input=False,
    )
    arch = space.sample(np.random.default_rng(0))
    source = space.build(arch, (6,), 3)
    source.save(tmp_path / "src.keras")
    child = space.build(arch, (6,), 5)  # more classes: the output layer must not be copied
    assert transfer_weights(child, tmp_path / "src.keras") == 1
    np.testing.assert_array_equal(
        child.get_layer("l0_dense").get_weights()[0], source.get_layer("l0_dense").get_weights()[0]
    )


def _toy_objective(space):
    def objective(arch, seed):
        layers = space.layers(arch)
        value = 0.5 + 0.1 * sum(layer["width"] >= 32 for layer in layers) - 0.05 * len(layers)
        return {"val_accuracy": value, "params": 100 * len(layers), "file_bytes": 1, "status": "ok"}

    return objective


@pytest.mark.parametrize("name", ["rl", "meta", "random"])
def test_strategies_respect_budget_and_seed(name):
    space = ArchSpace(NasSpace(), image_input=True)
    cfg = Nas(budget=6, rl=RL(controller="independent", children_per_update=2))
    extra = {}
    if name == "meta":
        rows, near = meta_rows(space)
        extra = {"rows": rows, "target": near}

    def go(seed):
        algo = nas.create(name, space, cfg, seed, **extra)
        return runner.run(
            algo,
            _toy_objective(space),
            budget=6,
            seed=seed,
            progress=False,
            score=reward(cfg.reward),
        )

    a, b = go(0), go(0)
    assert [key(t.config) for t in a] == [key(t.config) for t in b]
    assert max(t.evaluation for t in a) == 6
    assert all(space.contains(t.config) for t in a)


def test_unbuildable_child_is_a_failed_trial(tiny_splits):
    # an image space (conv) applied to tabular data cannot build: failed child, search goes on
    space = ArchSpace(NasSpace(kinds=["conv"]), image_input=True)
    flat = Splits(
        *(
            Split(p.x.reshape(len(p.x), -1), p.y)
            for p in (tiny_splits.train, tiny_splits.val, tiny_splits.test)
        )
    )
    objective = nas_objective(space, flat, Fit(epochs=1))
    algo = nas.create("random", space, Nas(budget=2), 0)
    trials = runner.run(algo, objective, budget=2, seed=0, progress=False)
    assert [t.status for t in trials] == ["failed", "failed"]
    assert "conv needs image input" in trials[0].error


def test_mnas_reward():
    ok = Trial(0, 1, {}, 0.9, 20_000, 0, 0.0, "ok", False, 0)
    assert reward(Reward())(ok) == 0.9
    smaller = Trial(1, 2, {}, 0.9, 5_000, 0, 0.0, "ok", False, 0)
    hw = reward(Reward(target_params=10_000, weight=-0.1))
    assert hw(smaller) > hw(ok)
    assert hw(Trial(2, 3, {}, 0.9, 10_000, 0, 0.0, "ok", False, 0)) == pytest.approx(0.9)


def test_earlier_runs_join_the_metadataset(tmp_path):
    import csv
    import json

    from leanml.nas.meta import FEATURES
    from leanml.nas.tasks import earlier_runs

    space = ArchSpace(NasSpace(), image_input=True)
    archs = [space.sample(np.random.default_rng(i)) for i in range(3)]
    run = tmp_path / "old-mnist-run"
    run.mkdir()
    with open(run / "trials.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, [*space.names, "val_accuracy", "status", "from_cache"])
        writer.writeheader()
        for arch, (acc, status) in zip(
            archs, [(0.9, "ok"), (0.5, "failed"), (0.8, "ok")], strict=True
        ):
            writer.writerow({**arch, "val_accuracy": acc, "status": status, "from_cache": False})
    features = {f: 1.0 for f in FEATURES}
    (run / "strategy.json").write_text(json.dumps({"target_features": features}))
    (tmp_path / "no-info").mkdir()
    (tmp_path / "no-info" / "trials.csv").write_text("x\n")
    rows = earlier_runs(tmp_path, space)
    assert [r["arch"] for r in rows] == [archs[0], archs[2]]  # failed trials are left out
    assert {r["task"] for r in rows} == {"run:old-mnist-run"}
    assert rows[0]["features"] == features and rows[0]["score"] == 0.9


def test_digits_source_tasks_can_exclude_the_target_holdout(digits_splits):
    from leanml.nas.tasks import source_tasks

    train = digits_splits.train
    tasks = dict(source_tasks(0, 0, (train.x, train.y)))
    sources = np.concatenate(
        [
            tasks["digits_0to4"].train.x,
            tasks["digits_0to4"].val.x,
            tasks["digits_5to9"].train.x,
            tasks["digits_5to9"].val.x,
        ]
    )
    assert len(sources) == len(train.x)  # exactly the target's train images, nothing else
    held_out = {digits_splits.test.x[i].tobytes() for i in range(len(digits_splits.test.x))}
    assert not held_out & {img.tobytes() for img in sources}


class Killed(BaseException):
    """Stands in for a kill mid-run: not an Exception, so the runner does not record it."""


@pytest.mark.parametrize(
    ("name", "controller"),
    [
        pytest.param("rl", "lstm", marks=pytest.mark.slow),  # 9 s of controller updates
        ("rl", "independent"),
        ("meta", "lstm"),
        ("random", "lstm"),
    ],
)
def test_interrupted_strategy_resumes_to_the_same_children(name, controller, tmp_path):
    # the replayed checkpoint must rebuild the controller / surrogate / sampler state exactly
    space = ArchSpace(NasSpace(), image_input=True)
    cfg = Nas(budget=8, rl=RL(controller=controller, children_per_update=2))
    extra = {}
    if name == "meta":
        rows, near = meta_rows(space)
        extra = {"rows": rows, "target": near}
    toy = _toy_objective(space)

    def go(objective, checkpoint=None):
        algo = nas.create(name, space, cfg, 7, **extra)
        return runner.run(
            algo,
            objective,
            budget=8,
            seed=7,
            progress=False,
            score=reward(cfg.reward),
            checkpoint=checkpoint,
        )

    full = go(toy)
    path = tmp_path / "checkpoint.jsonl"
    trained, again = [], []

    def dies_after_3(arch, seed):
        if len(trained) == 3:
            raise Killed
        trained.append(key(arch))
        return toy(arch, seed)

    with pytest.raises(Killed):
        go(dies_after_3, Checkpoint(path, "fp"))
    with open(path, "a") as handle:
        handle.write('{"proposal": 3, "evalua')  # a line cut short by kill -9

    def counting(arch, seed):
        again.append(key(arch))
        return toy(arch, seed)

    resumed = go(counting, Checkpoint(path, "fp"))
    assert len(trained) == 3 and not set(again) & set(trained)  # nothing trained twice
    assert len(trained) + len(again) == 8
    assert len({key(t.config) for t in full}) > 2  # the strategy really explores
    assert [(key(t.config), t.score, t.seed) for t in resumed] == [
        (key(t.config), t.score, t.seed) for t in full
    ]


def test_meta_features_landmark_on_a_seeded_subsample_without_warnings(digits_splits):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neighbors import KNeighborsClassifier

    from leanml.data import Split, Splits
    from leanml.nas.meta import LANDMARK_SAMPLES, meta_features

    # digits (1257 train samples) is below the subsample size: landmarkers on the whole splits
    tr, va = digits_splits.train, digits_splits.val
    x_tr, x_va = tr.x.reshape(len(tr.x), -1), va.x.reshape(len(va.x), -1)
    assert len(x_tr) < LANDMARK_SAMPLES
    assert meta_features(digits_splits)["knn_accuracy"] == (
        KNeighborsClassifier(1).fit(x_tr, tr.y).score(x_va, va.y)
    )
    # 6,000 noisy samples: landmarkers fit on 2,000 (seeded: same numbers twice, other seed
    # other numbers), sizes from all 6,000, and no ConvergenceWarning wall
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 6000)
    x = (rng.normal(size=(6000, 64)) + y[:, None] * 0.05).astype(np.float32)
    big = Splits(Split(x, y), Split(x[:3000], y[:3000]), Split(x[:0], y[:0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # the wall users saw fails the test
        a = meta_features(big, seed=1)
    assert a == meta_features(big, seed=1)
    assert a["log_samples"] == pytest.approx(np.log10(6000))
    assert a != meta_features(big, seed=2)
    assert 0.0 < a["linear_accuracy"] < 1.0


def test_a_users_table_that_is_a_bundled_source_is_left_out_of_the_sources(capsys):
    """Issue 17: wine brought as the target's .npz must not come back as a source task (its
    whole table, target val/test rows included, would reach the meta-dataset and, through
    weight transfer, the children). Other tables and a half-overlap are handled by share."""
    from sklearn.datasets import load_iris, load_wine

    from leanml.nas.tasks import shared_rows, source_tasks

    wine = load_wine().data.astype(np.float32)  # as a user saves it in an .npz
    names = [name for name, _ in source_tasks(0, 0, target_x=wine)]
    assert "wine" not in names and {"iris", "breast_cancer"} <= set(names)
    assert "wine left out: same data as the target" in capsys.readouterr().out
    # a shuffled half of the table still shares half its samples; another table shares none
    rng = np.random.default_rng(0)
    half = wine[rng.permutation(len(wine))[: len(wine) // 2]]
    assert shared_rows(load_wine().data, half) == pytest.approx(len(half) / len(wine))
    assert shared_rows(load_iris().data, wine) == 0.0
    assert "wine" in [name for name, _ in source_tasks(0, 0)]  # no target: every task
