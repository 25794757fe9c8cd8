"""nas@enas: shared weights are shared, the controller learns from them, runs are reproducible."""

import numpy as np
import pytest

from leanml import nas, params
from leanml.errors import LeanmlError
from leanml.nas.objective import reward
from leanml.nas.space import ArchSpace
from leanml.nas.supernet import Supernet
from leanml.params import Nas, NasSpace
from leanml.trials import runner
from leanml.trials.base import key
from leanml.trials.checkpoint import Checkpoint
from tests.test_nas import Killed, _toy_objective

# a few seconds of supernet: enough to check behaviour, not to find good networks
SMALL = {"updates": 6, "warmup_steps": 4, "supernet_steps": 2, "candidates": 12, "children": 4}


def _arch(space, *layers):
    return space.project([{"batch_norm": False, "skip": False, **layer} for layer in layers])


def test_children_that_pick_the_same_op_read_the_same_variables(tiny_splits):
    space = ArchSpace(NasSpace(), image_input=True)
    net = Supernet(space, (8, 8, 1), 10, seed=0, learning_rate=0.01)
    x, y = tiny_splits.train.x[:32], tiny_splits.train.y[:32]
    # a and b: conv k3 at position 0 (other width, activation, batch-norm), then dense
    a = _arch(space, {"kind": "conv", "width": 8, "kernel": 3}, {"kind": "dense", "width": 32})
    b = _arch(
        space,
        {"kind": "conv", "width": 32, "kernel": 3, "activation": "tanh", "batch_norm": True},
        {"kind": "dense", "width": 128, "activation": "elu"},
    )
    c = _arch(space, {"kind": "conv", "width": 8, "kernel": 5}, {"kind": "dense", "width": 32})
    dense = _arch(space, {"kind": "dense", "width": 64})
    read = {
        name: set(net.read(arch, x)) for name, arch in zip("abcd", (a, b, c, dense), strict=True)
    }
    shared = {"l0.conv.k3", "l1.dense.flat1", "out.dense"}
    assert shared <= read["a"] & read["b"]
    assert "l0.conv.k3" not in read["c"] and "l0.conv.k5" in read["c"]
    assert not {"l0.conv.k3", "l0.conv.k5"} & read["d"] and "l0.dense.flat0" in read["d"]
    # one step through a moves the kernel b reads (so b's outputs), not the one c reads
    before = {n: net.vars[n].numpy().copy() for n in ("l0.conv.k3", "l0.conv.k5")}
    b_before, c_before = net.logits(b, x).numpy(), net.logits(c, x).numpy()
    net.train_step(a, x, y, step=1)
    assert not np.array_equal(net.vars["l0.conv.k3"].numpy(), before["l0.conv.k3"])
    np.testing.assert_array_equal(net.vars["l0.conv.k5"].numpy(), before["l0.conv.k5"])
    assert not np.allclose(net.logits(b, x).numpy(), b_before)
    # c shares the later layers with a (same source, same position): it moves too, but its
    # first kernel did not
    assert not np.allclose(net.logits(c, x).numpy(), c_before)


def test_every_sampled_child_runs_on_the_supernet(tiny_splits):
    for image, x in ((True, tiny_splits.train.x[:16]), (False, tiny_splits.train.x[:16, :, :, 0])):
        x = x if image else x.reshape(len(x), -1)
        space = ArchSpace(NasSpace(), image_input=image)
        net = Supernet(space, x.shape[1:], 10, seed=1, learning_rate=0.01)
        rng = np.random.default_rng(0)
        for step in range(25):
            arch = space.sample(rng)
            assert np.isfinite(net.train_step(arch, x, tiny_splits.train.y[:16], step))
            assert 0.0 <= net.accuracy(arch, x, tiny_splits.train.y[:16]) <= 1.0


def test_the_controller_moves_toward_a_planted_better_op(tiny_splits):
    # one dense layer whose width is 1 (a bottleneck: ~20 % on 10 classes) or 32 (~80 %)
    cfg = Nas(
        budget=2,
        space=NasSpace(
            max_layers=1,
            kinds=["dense"],
            units=[1, 32],
            kernel_sizes=[3],
            activations=["relu"],
            dropouts=[0.0],
            batch_norm=[False],
            skip=[False],
        ),
        enas={"updates": 40, "warmup_steps": 30, "supernet_steps": 2, "children": 1},
    )
    space = ArchSpace(cfg.space, image_input=True)
    algo = nas.create("enas", space, cfg, 0, data=tiny_splits)
    (child,) = algo.ask()
    assert child["l0.width"] == 32
    width = space.names.index("l0.width")
    probabilities = algo.controller.policy.probabilities()[width]
    assert probabilities[1] > 0.8  # from 0.5
    log = [e for e in algo.log if e["phase"] == "controller"]
    assert len(log) == 40 == algo.report().metrics["controller_updates"]
    assert np.mean([e["mean_reward"] for e in log[-10:]]) > np.mean(
        [e["mean_reward"] for e in log[:10]]
    )


def _search(tiny_splits, seed, **enas):
    space = ArchSpace(NasSpace(), image_input=True)
    cfg = Nas(budget=4, enas={**SMALL, **enas})
    algo = nas.create("enas", space, cfg, seed, data=tiny_splits)
    return algo.ask(), algo.report()


def test_same_seed_same_search_other_seed_other_search(tiny_splits):
    children, report = _search(tiny_splits, 3)
    again, report_again = _search(tiny_splits, 3)
    assert [key(a) for a in children] == [key(a) for a in again]
    assert report.log == report_again.log
    timeless = {k: v for k, v in report.metrics.items() if not k.endswith("seconds")}
    assert timeless == {
        "controller_updates": 6,
        "supernet_steps": 4 + 6 * 2,
        "supernet_train_samples": (4 + 6 * 2) * 64,
        "supernet_scored_children": 6 + len([e for e in report.log if e["phase"] == "candidate"]),
    }
    other, report_other = _search(tiny_splits, 4)
    assert report_other.log != report.log
    assert len(children) == 4 and len({key(a) for a in children}) == 4


def test_the_baseline_comes_first_and_is_not_proposed_twice(tiny_splits):
    space = ArchSpace(NasSpace(), image_input=True)
    cfg = Nas(budget=4, enas=SMALL)
    top = nas.create("enas", space, cfg, 3, data=tiny_splits).ask()
    algo = nas.create("enas", space, cfg, 3, initial=[top[1]], data=tiny_splits)
    children = algo.ask()
    assert children[0] == top[1] and [key(a) for a in children].count(key(top[1])) == 1
    assert algo.ask() == []  # one batch: the search is over


def test_interrupted_enas_resumes_to_the_same_children(tiny_splits, tmp_path):
    """Killed while its children train: the resumed run re-derives the same supernet phase and
    replays the finished children from the checkpoint (as test_nas does for the others)."""
    space = ArchSpace(NasSpace(), image_input=True)
    cfg = Nas(budget=4, enas=SMALL)
    toy = _toy_objective(space)

    def go(objective, checkpoint=None):
        algo = nas.create("enas", space, cfg, 7, data=tiny_splits)
        trials = runner.run(
            algo, objective, budget=4, seed=7, progress=False, score=reward(cfg.reward),
            checkpoint=checkpoint,
        )  # fmt: skip
        return trials, algo.report().log

    full, full_log = go(toy)
    path, trained, again = tmp_path / "checkpoint.jsonl", [], []

    def dies_after_2(arch, seed):
        if len(trained) == 2:
            raise Killed
        trained.append(key(arch))
        return toy(arch, seed)

    with pytest.raises(Killed):
        go(dies_after_2, Checkpoint(path, "fp"))

    def counting(arch, seed):
        again.append(key(arch))
        return toy(arch, seed)

    resumed, resumed_log = go(counting, Checkpoint(path, "fp"))
    assert len(trained) == 2 and len(again) == 2 and not set(again) & set(trained)
    assert [(key(t.config), t.score, t.seed) for t in resumed] == [
        (key(t.config), t.score, t.seed) for t in full
    ]
    assert resumed_log == full_log


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"updates": 0}, r"nas\.enas\.updates"),
        ({"supernet_learning_rate": 0}, r"nas\.enas\.supernet_learning_rate"),
        ({"controller": "gru"}, r"nas\.enas\.controller"),
        ({"children": 5, "candidates": 3}, r"nas\.enas\.children: must be ≤ candidates \(3\)"),
        ({"children": 7}, r"nas\.enas\.children: must be ≤ nas\.budget \(6\), got 7"),
        ({"supernet_stepz": 3}, r"nas\.enas\.supernet_stepz"),
    ],
)
def test_bad_enas_params_name_the_key(section, message):
    with pytest.raises(LeanmlError, match=message):
        params.parse({"nas": {"enas": section}})


def test_enas_needs_the_data():
    space = ArchSpace(NasSpace(), image_input=True)
    with pytest.raises(TypeError, match="data"):
        nas.create("enas", space, Nas(), 0)
