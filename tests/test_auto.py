"""compress@auto: per-layer policies applied exactly, the size-target score, and the search
contract on a tiny model (exact budget, determinism, resume from a cut checkpoint), with its
trials as nested runs of a real MLflow store."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from leanml import compress, models, tracking
from leanml.compress import policy as policies
from leanml.compress import run as sweep
from leanml.compress.auto import Auto, layer_names
from leanml.compress.cluster import cluster_model, strip_clusters
from leanml.compress.policy import Policy
from leanml.compress.prune import prune_unstructured
from leanml.errors import LeanmlError
from leanml.params import FineTune, Fit, ModelSpec, parse
from leanml.train import fit_model, seed_everything
from leanml.trials.base import Trial
from tests.compress_helpers import prepare
from tests.mlflow_helpers import metric_history, runs


@pytest.fixture(scope="module")
def mlp(tiny_splits):
    seed_everything(0)
    spec = ModelSpec.model_validate({"kind": "mlp", "mlp": {"hidden_units": [24]}})
    model = models.build(spec, tiny_splits.input_shape, tiny_splits.n_classes)
    fit_model(model, tiny_splits, Fit(epochs=6, early_stopping_patience=0), progress=False)
    return model


def _kernels(model):
    return [np.asarray(layer.kernel) for layer in model.layers if hasattr(layer, "kernel")]


def test_a_policy_sets_each_layer_its_own_sparsity_and_bits(mlp, tiny_splits):
    fine = FineTune(learning_rate=0.002)
    pruned = prune_unstructured(
        mlp, tiny_splits, sparsity=[0.9, 0.3], criterion="magnitude", scope="global",
        epochs=1, ramp=0.6, frequency=2, fine=fine,
    )  # fmt: skip
    for kernel, target in zip(_kernels(pruned), [0.9, 0.3], strict=True):
        assert np.sum(kernel == 0) == round(target * kernel.size)
    model, tensors = strip_clusters(cluster_model(pruned, [1, 3], "linear", 0, "auto"))
    first, second = _kernels(model)
    assert len(np.unique(first[first != 0])) == 2  # 2^1 shared values
    assert len(np.unique(second[second != 0])) == 8  # 2^3
    assert {t.bits for t in tensors.values()} == {1, 3}
    with pytest.raises(LeanmlError, match="3 per-layer bit widths for 2"):
        cluster_model(pruned, [1, 2, 3], "linear", 0, "auto")


def _oneshot_bytes(mlp, splits, policy, t):
    from leanml.params import FineTune

    model = policies.apply(mlp, splits, policy, t, epochs=0, fine=FineTune(), init="linear", seed=0)
    return policies.packed_bytes(*model)


def test_the_fitted_sparsity_is_the_least_that_meets_the_target(mlp, tiny_splits):
    names = layer_names(mlp)
    for policy in (Policy(tuple(names), (1, 4)), Policy(tuple(names), (2, 2), (1.0, 0.3))):
        ends = [_oneshot_bytes(mlp, tiny_splits, policy, t) for t in (0.0, 0.99)]
        target = sum(ends) // 2  # reachable, not at either end
        t = policies.fit(mlp, tiny_splits, policy, target, (0.0, 0.99), "linear", 0)
        limit = target * (1 - policies.FIT_MARGIN)
        assert 0 < t < 0.99
        assert _oneshot_bytes(mlp, tiny_splits, policy, t) <= limit
        assert _oneshot_bytes(mlp, tiny_splits, policy, t - 0.01) > limit
    assert Policy(tuple(names), (2, 2), (1.0, 0.5)).sparsity(0.8) == pytest.approx([0.8, 0.9])


def test_the_score_is_accuracy_within_the_target_and_falls_per_doubling_over_it():
    score = Auto.score(1000)

    def trial(acc, size, status="ok"):
        return Trial(0, 1, {}, acc, 10, size, 0.0, status, False, 0)

    assert score(trial(0.9, 1000)) == 0.9
    assert score(trial(0.9, 400)) == 0.9  # below the target: accuracy alone decides
    assert score(trial(0.99, 2000)) == pytest.approx(-0.01)  # one doubling over: -1
    assert score(trial(0.9, 1000)) > score(trial(0.95, 1100))
    assert score(trial(0.0, 0, "failed")) < score(trial(0.0, 10**6))


def _cfg(**auto):
    section = {"budget": 4, "trial_epochs": 1, "epochs": 1, "finalists": 1, "target_ratio": 8.0}
    section.update(auto)
    return parse({"compress": {"fine_tune": {"learning_rate": 0.002}, "auto": section}})


def _search(mlp, splits, cfg, root: Path, tracking_cfg):
    root.mkdir(parents=True, exist_ok=True)
    method = compress.get("auto", cfg)
    ref = sweep.reference(mlp, _saved(mlp, root), splits, root)
    prepare(method, mlp, splits, ref, root, tracking_cfg, label="compress@auto")
    return method, ref


def _saved(model, root: Path) -> Path:
    from leanml.measure import save_model

    return save_model(model, root / "baseline.keras")


def _rows(path: Path) -> list[dict]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_search_contract_budget_determinism_resume_and_nested_runs(
    mlp, tiny_splits, tmp_path, tracking_cfg
):
    cfg = _cfg(algorithm="random", start_bits=[2])
    first, ref = _search(mlp, tiny_splits, cfg, tmp_path / "a", tracking_cfg)
    trials = first.trials
    assert max(t.evaluation for t in trials) == 4 and sum(not t.from_cache for t in trials) == 4
    names = layer_names(mlp)
    # the uniform hand-set kind first: 2 bits everywhere, one global sparsity fitted
    assert trials[0].config == {f"{n}.bits": 2 for n in names}
    # it always competes at full fidelity beside the best by low fidelity (finalists: 1)
    assert trials[0].proposal in first.final and 1 <= len(first.final) <= 2
    target = first.winner["target_bytes"]
    assert target == int(ref["weight_bytes"] // 8)
    within = [t for t in trials if t.file_bytes <= target]
    # the overall sparsity is fitted per policy so that every trial lands on the target
    assert len(within) >= 3 and all(t.file_bytes <= 1.05 * target for t in trials)
    assert len({t.extra["sparsity"] for t in trials}) > 1  # one fitted value per policy
    table = _rows(tmp_path / "a/trials.csv")
    assert [int(r["artifact_bytes"]) for r in table] == [t.file_bytes for t in trials]
    assert all(0 < t.file_bytes < ref["packed_bytes"] for t in trials)

    # same params, same seed: the same trials to the last digit
    again, _ = _search(mlp, tiny_splits, cfg, tmp_path / "b", tracking_cfg)
    assert table == _rows(tmp_path / "b/trials.csv")

    # a kill after two trials: the checkpoint keeps its header and two rows; the rerun replays
    # them (no training) and ends identical
    checkpoint = tmp_path / "b/.checkpoint.jsonl"
    checkpoint.write_text("".join(checkpoint.read_text().splitlines(keepends=True)[:3]))
    resumed, _ = _search(mlp, tiny_splits, cfg, tmp_path / "b", tracking_cfg)
    assert _rows(tmp_path / "b/trials.csv") == table
    assert resumed.winner == first.winner
    stage_runs = [r for r in runs(tracking_cfg) if r["name"] == tracking.run_name("compress@auto")]
    trial_runs = [r for r in runs(tracking_cfg) if r["name"].startswith("trial-")]
    # 4 + 4 + the 2 trained after the resume: replayed trials are not logged twice
    assert len(stage_runs) == 3 and len(trial_runs) == 10
    assert {r["parent"] for r in trial_runs} <= {r["run_id"] for r in stage_runs}
    assert all("artifact_bytes" in r["metrics"] for r in trial_runs)
    # a trial's run spans its training (logged when it ended, dated when it ran)
    for r in trial_runs:
        seconds = r["metrics"]["seconds"]
        assert seconds > 0.1 and abs((r["end_time"] - r["start_time"]) / 1000 - seconds) < 0.01
        # and its learning curve: val accuracy after each of its trial_epochs (1)
        ((step, value),) = metric_history(r["run_id"], "epoch_val_accuracy")
        assert step == 1 and 0 < value <= 1
    stage = next(r for r in stage_runs if r["run_id"] == trial_runs[0]["parent"])
    assert stage["start_time"] <= trial_runs[0]["start_time"] <= trial_runs[0]["end_time"]


def test_the_winner_is_fine_tuned_and_saved_as_a_variant(mlp, tiny_splits, tmp_path, tracking_cfg):
    cfg = _cfg(
        algorithm="tpe",
        budget=2,
        scope="per_layer",  # each layer's sparsity searched too
        start_bits=[2],
        algorithm_settings={"n_startup_trials": 1},
        finalists=2,  # both trials: the winner is the better of them at full fidelity
    )
    method, ref = _search(mlp, tiny_splits, cfg, tmp_path, tracking_cfg)
    [(variant, row)] = list(sweep.run(method, mlp, ref, tiny_splits, tmp_path / "out"))
    assert len(variant.extra["val_curve"]) == 1  # its finalist fine-tune: epochs 1
    assert variant.name == "auto_r8" and variant.artifact.suffix == ".packed"
    assert row["policy"] == method.winner["policy"] and row["target_bytes"] > 0
    assert len(method.final) == 2
    won = method.final[method.winner["trial"]]
    assert (row["val_accuracy"], row["artifact_bytes"]) == won[:2]  # made once, kept
    config = method.winner["config"]
    assert {k: variant.setting[k] for k in config} == config  # the policy's values, logged
    policy = Policy.of(config, layer_names(mlp))
    sparsities, bits = policy.sparsity(method.winner["sparsity"]), policy.bits
    assert len(sparsities) == len(bits) == 2 and max(policy.keep) <= 1.0
    for kernel, sparsity, width in zip(
        _kernels(variant.keras_model), sparsities, bits, strict=True
    ):
        assert np.sum(kernel == 0) >= round(sparsity * kernel.size)
        assert len(np.unique(kernel[kernel != 0])) <= 2**width
    assert set(method.metrics()) >= {"search.target_bytes", "search.evaluations"}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"target_ratio": None}, "set exactly one of target_ratio"),
        ({"target_bytes": 2000}, "set exactly one of target_ratio"),
        ({"sparsity": [0.9, 0.2]}, r"must be \[low, high\]"),
        ({"start_bits": [6]}, "outside the searched bits 1 to 4"),
        ({"algorithm": "cmaes"}, "one of 'ga'"),
        ({"algorithm": "ga", "algorithm_settings": {"particles": 4}}, "keys: population"),
        ({"algorithm": "bayes", "budget": 2}, r"initial_points: must be ≤ compress.auto.budget"),
    ],
)
def test_bad_auto_params_name_the_key_and_what_is_allowed(section, message):
    with pytest.raises(LeanmlError, match=message) as caught:
        parse({"compress": {"auto": section}})
    assert "compress.auto" in str(caught.value)
