"""Issue 12: the winner refit at full fidelity, and the baseline as every algorithm's first trial.

The baseline cases run on the cheap synthetic objectives (no Keras); the refit cases train tiny
real models on a few hundred digits samples.
"""

import pytest

from leanml import nas, search
from leanml.nas.objective import reward
from leanml.nas.space import ArchSpace
from leanml.params import RL, Bayes, Fidelity, Fit, ModelSpec, Nas, NasSpace, Search, Train
from leanml.search.objective import score
from leanml.search.space import Space, baseline
from leanml.trials import runner
from leanml.trials.base import key
from leanml.trials.checkpoint import Checkpoint
from tests.objectives import synthetic
from tests.test_nas import _toy_objective, meta_rows

ALGORITHMS = list(search.ALGORITHMS)  # tpe joins when it is registered
# enas needs real data for its supernet phase (its own tests, tests/test_enas.py, check the
# baseline child first and resume); the others run on synthetic objectives here
STRATEGIES = [name for name in nas.STRATEGIES if name != "enas"]


def _cfg(budget=10):
    return Search(budget=budget, bayes=Bayes(estimator="RF", initial_points=4, acq_points=300))


def _run(name, seed, initial, checkpoint=None, objective=synthetic):
    cfg = _cfg()
    space = Space.from_params(cfg.space)
    algo = search.create(name, space, cfg, seed, cfg.budget, initial)
    return runner.run(
        algo,
        objective,
        budget=cfg.budget,
        seed=seed,
        progress=False,
        score=score(cfg.objective),
        checkpoint=checkpoint,
    )


def test_baseline_projection_rules():
    space = Space.from_params(_cfg().space)
    # the default train stage (784-128-10, adam 1e-3, batch 32, relu, no dropout) fits as is
    assert baseline(Train(), space) == {
        "hidden_units": 128,
        "n_layers": 1,
        "learning_rate": 0.001,
        "dropout": 0.0,
        "batch_size": 32,
        "activation": "relu",
        "optimizer": "adam",
    }
    odd = Train.model_validate(
        {
            "learning_rate": 0.5,  # above the range: clipped
            "batch_size": 50,  # not a choice: the nearest (64; 32 is further)
            "optimizer": "adamw",  # not a choice: the first choice
            "model": {"mlp": {"hidden_units": [512, 64, 64, 64], "activation": "gelu"}},
        }
    )
    projected = baseline(odd, space)
    assert projected["learning_rate"] == space.dims[space.names.index("learning_rate")].high
    assert projected["batch_size"] == 64
    assert projected["optimizer"] == "adam"
    assert projected["activation"] == "relu"
    assert projected["hidden_units"] == 256 and projected["n_layers"] == 3
    assert space.contains(projected)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_baseline_is_the_first_trial_of_every_algorithm(name):
    space = Space.from_params(_cfg().space)
    first = baseline(Train(), space)
    with_baseline = _run(name, 1, [first])
    assert with_baseline[0].config == first and not with_baseline[0].from_cache
    assert sum(key(t.config) == key(first) for t in with_baseline if not t.from_cache) == 1
    assert [key(t.config) for t in _run(name, 1, [first])] == [
        key(t.config) for t in with_baseline
    ]  # still deterministic
    without = _run(name, 1, [])  # include_baseline: false: the old behaviour
    assert without[0].config != first
    assert max(t.evaluation for t in with_baseline) == max(t.evaluation for t in without) == 10


@pytest.mark.parametrize("name", ALGORITHMS)
def test_a_resumed_run_with_the_baseline_ends_the_same(name, tmp_path):
    space = Space.from_params(_cfg().space)
    first = [baseline(Train(), space)]
    full = _run(name, 2, first)
    path = tmp_path / "checkpoint.jsonl"
    trained = []

    def dies_after_4(config, seed):
        if len(trained) == 4:
            raise KeyboardInterrupt
        trained.append(key(config))
        return synthetic(config, seed)

    with pytest.raises(KeyboardInterrupt):
        _run(name, 2, first, Checkpoint(path, "fp"), dies_after_4)
    again = []

    def counting(config, seed):
        again.append(key(config))
        return synthetic(config, seed)

    resumed = _run(name, 2, first, Checkpoint(path, "fp"), counting)
    assert not set(again) & set(trained)
    assert [key(t.config) for t in resumed] == [key(t.config) for t in full]


def test_nas_baseline_architecture():
    space = ArchSpace(NasSpace(), image_input=True)
    arch = space.baseline(ModelSpec())  # one dense layer of 128, relu, no dropout
    assert space.contains(arch)
    assert space.describe(arch) == "dense128-relu"
    wide = ModelSpec.model_validate(
        {"mlp": {"hidden_units": [100, 20, 300, 8], "dropout": 0.3, "activation": "gelu"}}
    )
    assert space.describe(space.baseline(wide)) == (
        "dense128-relu-d0.2 > dense16-relu-d0.2 > dense128-relu-d0.2"
    )  # nearest widths and dropout, first activation, first max_layers layers
    cnn = space.baseline(ModelSpec(kind="cnn"))
    assert space.describe(cnn) == "conv8k3-relu > conv16k3-relu > dense128-relu"
    flat = ArchSpace(NasSpace(), image_input=False)  # no conv on tabular data: dense instead
    assert space.contains(cnn) and flat.contains(flat.baseline(ModelSpec(kind="cnn")))


@pytest.mark.parametrize("name", STRATEGIES)
def test_baseline_is_the_first_child_of_every_strategy(name):
    space = ArchSpace(NasSpace(), image_input=True)
    cfg = Nas(budget=6, rl=RL(controller="independent", children_per_update=2))
    extra = {}
    if name == "meta":
        rows, near = meta_rows(space)
        extra = {"rows": rows, "target": near}
    first = space.baseline(ModelSpec())

    def go(initial):
        algo = nas.create(name, space, cfg, 0, initial, **extra)
        trials = runner.run(
            algo, _toy_objective(space), budget=6, seed=0, progress=False, score=reward(cfg.reward)
        )
        return algo, trials

    algo, trials = go([first])
    assert trials[0].config == first
    assert [key(t.config) for t in go([first])[1]] == [key(t.config) for t in trials]
    if name == "meta":  # then its own warm starts, not transferred into the baseline
        assert algo.init_source(first) is None
        warm = [w["arch"] for w in algo.log[0]["warm_start"] if w["task"] != "baseline"]
        assert [t.config for t in trials[1 : 1 + len(warm)]] == warm
    assert go([])[1][0].config != first


@pytest.mark.slow
def test_refit_uses_the_final_fit_and_reproduces_bytes(tiny_splits, tmp_path):
    from leanml import measure
    from leanml.search.objective import search_study

    # fidelity none (the search default is ASHA): every trial trains its fit's 1 epoch
    cfg = Search(budget=5, fit=Fit(epochs=1, early_stopping_patience=0), fidelity=Fidelity())
    space = Space.from_params(cfg.space)
    final = Fit(epochs=4, early_stopping_patience=0)
    study = search_study(space, tiny_splits, ModelSpec(), cfg, "random", "fp", final)
    algo = search.create("random", space, cfg, 0, 1, [baseline(Train(), space)])
    (trial,) = runner.run(algo, study.objective, budget=1, seed=0, progress=False)
    assert trial.extra["epochs_run"] == 1
    a, b = study.refit(trial), study.refit(trial)
    assert a.metrics["epochs_run"] == 4  # the full fit, not the trial's 1 epoch
    assert a.metrics["val_accuracy"] != trial.val_accuracy
    assert study.describe_best(trial)["model"]["fit"]["epochs"] == 4
    one = measure.save_model(a.model, tmp_path / "a.keras").read_bytes()
    two = measure.save_model(b.model, tmp_path / "b.keras").read_bytes()
    assert one == two
    # without a final fit the refit is the trial's own fit: its val accuracy exactly
    same = search_study(space, tiny_splits, ModelSpec(), cfg, "random", "fp").refit(trial)
    assert same.metrics["val_accuracy"] == trial.val_accuracy


@pytest.mark.slow
@pytest.mark.parametrize("baseline_epochs, kept", [(8, "baseline"), (1, "refit")])
def test_the_baseline_model_is_kept_only_when_the_refit_scores_lower_on_val(
    tiny_splits, tmp_path, tracking_cfg, baseline_epochs, kept
):
    import json
    from dataclasses import replace
    from types import SimpleNamespace

    from leanml import measure, models, tracking
    from leanml.paths import item
    from leanml.search.objective import search_study
    from leanml.train import evaluate, train_and_score
    from leanml.trials.study import Settings, baseline_model, execute

    # the "train stage": the default MLP at 8 epochs (above a 2-epoch refit) or 1 epoch at a
    # tiny learning rate (below it)
    lr = 0.001 if baseline_epochs > 1 else 1e-5
    fit = Fit(epochs=baseline_epochs, early_stopping_patience=0, learning_rate=lr)
    base = train_and_score(ModelSpec(), tiny_splits, fit, seed=1, progress=False)
    path = measure.save_model(base.model, tmp_path / "train.keras")
    base_val = evaluate(base.model, tiny_splits.val)["accuracy"]

    # fidelity none (the search default is ASHA): every trial trains its fit's 1 epoch
    cfg = Search(budget=5, fit=Fit(epochs=1, early_stopping_patience=0), fidelity=Fidelity())
    space = Space.from_params(cfg.space)
    final = Fit(epochs=2, early_stopping_patience=0)
    study = search_study(space, tiny_splits, ModelSpec(), cfg, "random", "fp", final)
    study = replace(study, incumbent=baseline_model(path, tiny_splits.val))
    group = SimpleNamespace(
        reports=tmp_path / "reports",
        models=tmp_path / "models",
        files=SimpleNamespace(
            trials="trials.csv",
            convergence="convergence.csv",
            pareto="pareto.csv",
            best="best.json",
            metrics="metrics.json",
            timings="timings.json",
        ),
        model_files=SimpleNamespace(model="best.keras", checkpoint="checkpoint.jsonl"),
    )
    out = item(group, "random")
    algo = search.create("random", space, cfg, 0, 2, [baseline(Train(), space)])
    settings = Settings("search@random", 2, 0, tiny_splits.val.x[:8])
    with tracking.stage_run("search@random", tracking_cfg) as run:
        metrics = execute(study, algo, run, out, settings)
        parent = run.run_id
    # every trial run carries its per-epoch val accuracy curve, ending at its val accuracy
    import mlflow

    client = mlflow.MlflowClient()
    children = client.search_runs(
        [client.get_run(parent).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent}'",
    )
    assert len(children) == 2
    for child in children:
        curve = client.get_metric_history(child.info.run_id, "epoch_val_accuracy")
        assert [m.step for m in curve] == [1]  # one epoch per trial here
        assert curve[-1].value == pytest.approx(child.data.metrics["val_accuracy"], abs=1e-6)
    best = json.loads(out.best.read_text())
    assert best["source"] == kept
    assert metrics["winner_is_baseline"] == int(kept == "baseline")
    refit_val = metrics["refit.val_accuracy"]
    if kept == "baseline":
        assert base_val > refit_val
        assert metrics["best.val_accuracy"] == best["val_accuracy"] == base_val
    else:
        assert base_val <= refit_val
        assert metrics["best.val_accuracy"] == refit_val
    saved = evaluate(models.load(out.model), tiny_splits.val)["accuracy"]
    assert saved == metrics["best.val_accuracy"]  # the file is the model the metrics describe
