"""The trial engine's checkpoint fingerprint, as the stages build it: what restarts a search."""

import pytest

from leanml import nas, params, search
from leanml.search.objective import score
from leanml.search.space import Space
from leanml.trials import runner
from leanml.trials.checkpoint import Checkpoint
from leanml.trials.fingerprint import fingerprint
from tests.objectives import synthetic


def _params(**changes):
    """The default params with `section.key...` changed, validated like params.yaml."""
    raw = params.Params().model_dump()
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        node = raw
        for part in path:
            node = node[part]
        node[last] = value
    return params.Params.model_validate(raw)


def _search_fp(cfg, algo="ga", data="sha-a"):
    return fingerprint(search.used_params(cfg, algo), data)


def _nas_fp(cfg, strategy="rl", data="sha-a", *files):
    return fingerprint(nas.used_params(cfg, strategy), data, *files)


SAME = {
    "base.tracking.uri": "http://127.0.0.1:5000",
    "base.tracking.experiment": "elsewhere",
    "execution.backend": "dask",
    "execution.workers": 7,
}
CHANGED = {
    "base.seed": 1,
    "search.budget": 11,
    "search.fit.epochs": 3,
    "search.ga.population": 9,
    "train.model.kind": "cnn",
    "execution.trial_timeout": 60.0,
}


@pytest.mark.parametrize(("key", "value"), SAME.items())
def test_where_runs_are_tracked_or_trials_run_keeps_the_checkpoint(key, value):
    assert _search_fp(_params(**{key: value})) == _search_fp(_params())
    assert _nas_fp(_params(**{key: value})) == _nas_fp(_params())


@pytest.mark.parametrize(("key", "value"), CHANGED.items())
def test_a_params_change_invalidates_the_checkpoint(key, value):
    assert _search_fp(_params(**{key: value})) != _search_fp(_params())


def test_only_the_params_a_stage_reads_count():
    assert _search_fp(_params(**{"search.pso.particles": 9})) == _search_fp(_params())
    assert _search_fp(_params(**{"search.pso.particles": 9}), "pso") != _search_fp(_params(), "pso")
    assert _nas_fp(_params(**{"nas.rl.hidden": 8})) != _nas_fp(_params())
    assert _nas_fp(_params(**{"nas.fit.epochs": 2}), "random") != _nas_fp(_params(), "random")
    assert _nas_fp(_params(**{"nas.rl.hidden": 8}), "random") == _nas_fp(_params(), "random")


def test_a_data_or_input_file_change_invalidates_the_checkpoint(tmp_path):
    cfg = _params()
    assert _search_fp(cfg, data="sha-b") != _search_fp(cfg)
    meta = tmp_path / "metadataset.json"
    meta.write_text('{"rows": []}')
    before = _nas_fp(cfg, "meta", "sha-a", meta)
    assert _nas_fp(cfg, "meta", "sha-a", meta) == before
    meta.write_text('{"rows": [1]}')
    assert _nas_fp(cfg, "meta", "sha-a", meta) != before


def test_fingerprint_decides_replay_or_retrain(tmp_path):
    # the whole path: a search checkpointed under one fingerprint, then run again
    path = tmp_path / "checkpoint.jsonl"

    def go(cfg):
        scfg = cfg.search
        calls = []

        def counting(config, seed):
            calls.append(1)
            return synthetic(config, seed)

        algo = search.create("random", Space.from_params(scfg.space), scfg, 0, 6)
        checkpoint = Checkpoint(path, _search_fp(cfg, "random"))
        trials = runner.run(
            algo,
            counting,
            budget=6,
            seed=0,
            progress=False,
            score=score(scfg.objective),
            checkpoint=checkpoint,
        )
        return len(calls), trials

    trained, first = go(_params())
    assert trained == 6
    trained, again = go(_params(**{"base.tracking.experiment": "elsewhere"}))
    assert trained == 0 and [t.score for t in again] == [t.score for t in first]
    trained, _ = go(_params(**{"search.fit.epochs": 3}))
    assert trained == 6
