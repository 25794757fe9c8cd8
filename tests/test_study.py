"""Multi-seed studies: reading `dvc exp show --json`, mean ± std, paired Wilcoxon tests, tables —
all on hand-made numbers."""

from __future__ import annotations

import csv
import json
import re

import pytest

from leanml import study
from leanml.errors import LeanmlError

METRICS_FILE = "reports/evaluate/metrics.json"


def _metrics(ga, pso, rl=None, base=0.95):
    out = {
        "baseline.name": "train",
        "baseline.test_accuracy": base,
        "by_method.search/ga.name": "search/ga",
        "by_method.search/ga.test_accuracy": ga,
        "by_method.search/ga.size_bytes": 1000,
        "by_method.search/pso.test_accuracy": pso,
        "by_method.search/pso.size_bytes": 2000,
        "by_family.search.test_accuracy": max(ga, pso),
        "candidates": 7,
    }
    if rl is not None:
        out["by_method.nas/rl.test_accuracy"] = rl
    return out


def _exp(name, seed, metrics):
    return {
        "rev": f"rev-{name}",
        "name": name,
        "data": {
            "rev": f"rev-{name}",
            "params": {"params.yaml": {"data": {"base": {"seed": seed}, "train": {"epochs": 3}}}},
            "metrics": {METRICS_FILE: {"data": metrics}},
        },
        "error": None,
        "experiments": None,
    }


# The layout of `dvc exp show --json` in DVC 3: the workspace, then each baseline commit with
# its experiments grouped under `experiments[].revs[]`.
GA = [0.90, 0.91, 0.92, 0.93, 0.94, 0.95]
PSO = [0.89, 0.89, 0.89, 0.89, 0.89, 0.89]  # ga wins on every seed by 0.01..0.06
SHOWN = [
    {"rev": "workspace", "name": None, "data": _exp("ws", 0, _metrics(0.5, 0.5))["data"]},
    {
        "rev": "abc",
        "name": "main",
        "data": _exp("main", 42, _metrics(0.5, 0.5))["data"],
        "experiments": [
            {"name": f"s-seed{i + 1}", "revs": [_exp(f"s-seed{i + 1}", i + 1, _metrics(g, p))]}
            for i, (g, p) in enumerate(zip(GA, PSO, strict=True))
        ]
        + [{"name": "other", "revs": [_exp("other", 99, _metrics(0.1, 0.1))]}],
    },
]
NAMES = [f"s-seed{i}" for i in range(1, 7)]


def test_records_from_exp_show_picks_the_named_experiments():
    records = study.records_from_exp_show(SHOWN, METRICS_FILE, NAMES)
    assert [r["name"] for r in records] == NAMES
    assert [r["seed"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[0]["metrics"]["by_method.search/ga.test_accuracy"] == 0.90
    everything = study.records_from_exp_show(SHOWN, METRICS_FILE)
    assert {r["name"] for r in everything} == {*NAMES, "main", "other"}  # never the workspace


def test_records_merge_the_timings_file():
    """Latencies live in timings.json beside metrics.json; a study reads both."""
    timings_file = "reports/evaluate/timings.json"
    exp = _exp("t-seed1", 1, _metrics(0.9, 0.8))
    exp["data"]["metrics"][timings_file] = {"data": {"by_method.search/ga.latency_ms_p50": 0.2}}
    records = study.records_from_exp_show([exp], [METRICS_FILE, timings_file])
    assert records[0]["metrics"]["by_method.search/ga.latency_ms_p50"] == 0.2
    assert records[0]["metrics"]["by_method.search/ga.test_accuracy"] == 0.9
    # timings alone do not make an experiment (its metrics.json is what must be there)
    del exp["data"]["metrics"][METRICS_FILE]
    assert study.records_from_exp_show([exp], [METRICS_FILE, timings_file]) == []


def test_split_key():
    assert study.split_key("by_method.search/ga.test_accuracy") == ("search", "ga", "test_accuracy")
    assert study.split_key("by_family.nas.size_bytes") == ("nas", "(best)", "size_bytes")
    assert study.split_key("smallest_within_pp.ratio_weights") == (
        "headline",
        "smallest_within_pp",
        "ratio_weights",
    )
    # the .keras-basis ratio is a secondary column: not one the study aggregates
    assert study.split_key("smallest_within_pp.compression_ratio") is None
    assert study.split_key("by_method.search/ga.name") is None
    assert study.split_key("candidates") is None


def test_aggregate_mean_and_sample_std():
    records = study.records_from_exp_show(SHOWN, METRICS_FILE, NAMES)
    rows = {(r["family"], r["method"], r["metric"]): r for r in study.aggregate(records)}
    ga = rows[("search", "ga", "test_accuracy")]
    assert ga["n"] == 6
    assert ga["mean"] == pytest.approx(0.925)
    # sample std of 0.90..0.95 step 0.01: sqrt(sum((k-2.5)^2 for k in 0..5)/5) * 0.01
    assert ga["std"] == pytest.approx((17.5 / 5) ** 0.5 * 0.01)
    assert (ga["min"], ga["max"]) == (0.90, 0.95)
    assert rows[("search", "pso", "test_accuracy")]["std"] == pytest.approx(0.0)
    assert rows[("headline", "baseline", "test_accuracy")]["mean"] == pytest.approx(0.95)
    assert rows[("search", "(best)", "test_accuracy")]["mean"] == pytest.approx(0.925)
    assert ("search", "ga", "name") not in rows
    one = study.aggregate(records[:1])
    assert all(r["std"] is None and r["n"] == 1 for r in one)


def test_wilcoxon_on_hand_made_pairs():
    # all 6 differences positive and distinct: exact two-sided p = 2 / 2^6
    test = study.wilcoxon_pair(GA, PSO)
    assert test["p_value"] == pytest.approx(2 / 64)
    assert test["statistic"] == 0.0  # scipy reports the smaller rank sum
    assert (test["a_wins"], test["b_wins"]) == (6, 0)
    assert test["mean_diff"] == pytest.approx(0.035)
    assert test["note"] == ""
    # mixed signs: ranks of |d| = 1..6, the negative ones are ranks 2 and 5 → W = 7
    a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    b = [0.9, 2.2, 2.7, 3.6, 5.5, 5.4]
    mixed = study.wilcoxon_pair(a, b)
    assert mixed["statistic"] == 7.0
    # exact: 18 of the 64 sign patterns have W ≤ 7 (sums 0..7: 1+1+1+2+2+3+4+4), two-sided × 2
    assert mixed["p_value"] == pytest.approx(2 * 18 / 64)


def test_wilcoxon_degenerate_cases():
    assert study.wilcoxon_pair([0.9], [0.8])["p_value"] is None
    assert "at least 2" in study.wilcoxon_pair([0.9], [0.8])["note"]
    same = study.wilcoxon_pair([0.9, 0.8, 0.7], [0.9, 0.8, 0.7])
    assert same["p_value"] == 1.0 and same["note"] == "identical on every seed"
    few = study.wilcoxon_pair([0.9, 0.8, 0.7], [0.8, 0.7, 0.6])
    assert few["p_value"] == pytest.approx(0.25)
    assert "smallest attainable p is 0.25" in few["note"]


def test_holm_correction():
    assert study.holm([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.06, None, 0.06])
    assert study.holm([]) == []


def test_compare_pairs_methods_within_each_family():
    records = study.records_from_exp_show(SHOWN, METRICS_FILE, NAMES)
    rows = study.compare(records, metrics=("test_accuracy",))
    assert [(r["family"], r["a"], r["b"]) for r in rows] == [("search", "ga", "pso")]
    assert rows[0]["p_value"] == pytest.approx(2 / 64) == rows[0]["p_holm"]
    # a NAS strategy in only some seeds: paired on the seeds both ran
    extra = [dict(r, metrics={**r["metrics"]}) for r in records]
    extra[0]["metrics"]["by_method.nas/rl.test_accuracy"] = 0.9
    extra[0]["metrics"]["by_method.nas/random.test_accuracy"] = 0.8
    nas = [r for r in study.compare(extra, metrics=("test_accuracy",)) if r["family"] == "nas"]
    assert nas[0]["n"] == 1 and nas[0]["p_value"] is None


def test_write_outputs(tmp_path):
    records = study.records_from_exp_show(SHOWN, METRICS_FILE, NAMES)
    files = study.write(records, tmp_path / "study")
    aggregate = list(csv.DictReader(files["aggregate"].open()))
    assert list(aggregate[0]) == study.AGGREGATE_COLUMNS
    tests = list(csv.DictReader(files["wilcoxon"].open()))
    assert {(t["a"], t["b"], t["metric"]) for t in tests} >= {("ga", "pso", "test_accuracy")}
    runs = list(csv.DictReader(files["runs"].open()))
    assert [r["seed"] for r in runs] == ["1", "2", "3", "4", "5", "6"]
    summary = files["summary"].read_text()
    assert "92.50 ± 1.87" in summary  # ga accuracy in percent
    for tex in (files["aggregate_tex"], files["wilcoxon_tex"]):
        text = tex.read_text()
        assert text.count(r"\begin{tabular}") == text.count(r"\end{tabular}") == 1
        assert r"\toprule" in text and r"\bottomrule" in text
        # every underscore escaped: a bare `_` outside math mode stops LaTeX with an error
        assert re.search(r"(?<!\\)_", text) is None, text
    # a metric name with underscores reaches the table, escaped
    assert r"latency\_ms\_p50" in files["wilcoxon_tex"].read_text()
    assert json.loads(files["records"].read_text())["records"][0]["seed"] == 1
    with pytest.raises(LeanmlError, match="no finished experiment"):
        study.write([], tmp_path / "empty")


def test_queue_commands():
    cmds = study.queue_commands([1, 2], "s")
    assert cmds[0] == ["dvc", "exp", "run", "--queue", "-n", "s-seed1", "-S", "base.seed=1"]
    assert len(cmds) == 2


def test_write_outputs_in_chinese_changes_words_not_numbers(tmp_path):
    records = study.records_from_exp_show(SHOWN, METRICS_FILE, NAMES)
    en = study.write(records, tmp_path / "en")
    zh = study.write(records, tmp_path / "zh", language="zh")
    for name in ("aggregate", "wilcoxon", "runs"):  # data files: the same bytes
        assert zh[name].read_bytes() == en[name].read_bytes()
    agg = zh["aggregate_tex"].read_text()
    assert r"均值 $\pm$ 标准差" in agg and "种子数" in agg and "6 个随机种子" in agg
    assert "Mean ± std" not in agg
    tests = zh["wilcoxon_tex"].read_text()
    assert "Wilcoxon 符号秩检验" in tests and "Holm 多重比较校正" in tests
    assert re.search(r"(?<!\\)_", tests) is None  # still escaped for LaTeX
    summary = zh["summary"].read_text()
    assert "92.50 ± 1.87" in summary and "## 各方法的均值 ± 标准差" in summary
    # the English files did not change by adding the language
    assert r"Mean $\pm$ std over 6 seeds" in en["aggregate_tex"].read_text()
