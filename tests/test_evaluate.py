"""The evaluate stage: Pareto fronts, leaderboard, tables, and the whole report built from small
real model files laid out like the pipeline's outputs; and a guard that nothing upstream selects
on the test split."""

from __future__ import annotations

import csv
import importlib.util
import json
import re

import keras
import numpy as np
import pytest

from leanml import data, measure, models, paths, tflite
from leanml.compress import run as sweep
from leanml.discover import Candidate, discover
from leanml.errors import LeanmlError
from leanml.evaluate import classification_scores, confusion
from leanml.params import Fit, ModelSpec, parse
from leanml.report import evaluate as evaluate_report
from leanml.report import summary, tables
from leanml.report.leaderboard import COLUMNS, build, headline, pareto_rows
from leanml.report.pareto import non_dominated
from leanml.tflite import tflite_stats
from leanml.train import evaluate as keras_evaluate
from leanml.train import fit_model, seed_everything
from tests.compress_helpers import prepare
from tests.conftest import ROOT
from tests.test_compress import TINY

TINY_MEASURE = {"warmup": 1, "runs": 3, "batch_size": 16}


# --- pure parts on hand-made numbers -------------------------------------------------------


def test_non_dominated_on_hand_made_points():
    # (accuracy ↑, cost ↓)
    points = [
        (0.90, 100),  # front: cheapest
        (0.95, 200),  # front
        (0.94, 250),  # dominated by (0.95, 200)
        (0.99, 1000),  # front: most accurate
        (0.95, 300),  # dominated by (0.95, 200): same accuracy, dearer
        (0.80, 100),  # dominated by (0.90, 100): same cost, less accurate
        (0.99, 1000),  # identical twin of a front point: both stay
    ]
    assert non_dominated(points) == [True, True, False, True, False, False, True]
    assert non_dominated([]) == []
    assert non_dominated([(0.5, 1)]) == [True]


def test_classification_scores_on_a_hand_made_confusion_matrix():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 1])
    matrix = confusion(y_true, y_pred, 3)
    assert matrix.tolist() == [[2, 1, 0], [0, 2, 0], [0, 1, 0]]
    scores = classification_scores(matrix)
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["per_class_accuracy"] == pytest.approx([2 / 3, 1.0, 0.0])
    # F1: class 0 p=1 r=2/3 → 0.8; class 1 p=0.5 r=1 → 2/3; class 2 → 0
    assert scores["macro_f1"] == pytest.approx((0.8 + 2 / 3 + 0) / 3)


N_FAKE = 200  # test samples of the hand-made candidates


def _fake(name, family, method, accuracy, size, latency):
    candidate = Candidate(name, family, method, name.split("/")[-1], ROOT / f"{name}.keras", ROOT)
    scores = {
        "accuracy": accuracy,
        # the first accuracy × N_FAKE samples right: nested, so McNemar's pairs are known
        "correct": np.arange(N_FAKE) < round(accuracy * N_FAKE),
        "macro_f1": accuracy,
        "per_class_accuracy": [accuracy, accuracy],
        "params": 10,
        "nonzero_params": 10,
        "flops": 20,
        "file_bytes": size,
        "gzip_bytes": size,
        "artifact_bytes": size,
        "artifact_gzip_bytes": size,
        "latency_ms_p50": latency,
        "latency_ms_p95": latency,
        "throughput_per_s": 1.0,
    }
    return candidate, scores


HAND_MADE = [
    _fake("search/ga", "search", "ga", 0.96, 4000, 0.5),
    _fake("train", "train", "train", 0.95, 1000, 0.3),
    _fake("compress/prune/s50", "compress", "prune", 0.945, 500, 0.3),
    _fake("compress/prune/s90", "compress", "prune", 0.90, 200, 0.2),
    _fake("compress/quantize/k4", "compress", "quantize", 0.945, 400, 0.4),
    _fake("search/pso", "search", "pso", 0.96, 3000, 0.6),
]


def test_leaderboard_columns_sorting_ratios_and_headline():
    rows = build(HAND_MADE, "artifact_bytes")
    assert [r["name"] for r in rows] == [
        "search/pso",  # 0.96, smaller than ga
        "search/ga",
        "train",
        "compress/quantize/k4",  # 0.945, smaller than s50
        "compress/prune/s50",
        "compress/prune/s90",
    ]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert set(rows[0]) <= set(COLUMNS)
    by = {r["name"]: r for r in rows}
    assert by["compress/prune/s90"]["compression_ratio"] == pytest.approx(5.0)
    assert by["compress/prune/s90"]["delta_pp"] == pytest.approx(-5.0)
    assert by["train"]["compression_ratio"] == 1.0 and by["train"]["delta_pp"] == 0
    # the primary ratio: the baseline's float32 weight bytes (4 × its 10 params) / size
    assert by["compress/prune/s90"]["ratio_weights"] == pytest.approx(40 / 200)
    assert by["train"]["ratio_weights"] == pytest.approx(40 / 1000)
    assert by["train"]["ratio_tflite"] is None  # no float TFLite export among hand-made rows
    size_front = {r["name"] for r in rows if r["pareto_size"]}
    assert size_front == {"search/pso", "train", "compress/quantize/k4", "compress/prune/s90"}
    latency_front = {r["name"] for r in rows if r["pareto_latency"]}
    assert latency_front == {"search/ga", "train", "compress/prune/s90"}
    fronts = pareto_rows(rows)
    assert [r["name"] for r in fronts if r["front"] == "size"] == [
        "compress/prune/s90",
        "compress/quantize/k4",
        "train",
        "search/pso",
    ]

    metrics = headline(rows, within_pp=1.0)
    assert metrics["baseline.test_accuracy"] == 0.95 and metrics["best.name"] == "search/pso"
    # within 1 pp of 0.95: quantize/k4 (400 B) beats prune/s50 (500 B); s90 is 5 pp below
    assert metrics["smallest_within_pp.name"] == "compress/quantize/k4"
    assert metrics["smallest_within_pp.compression_ratio"] == pytest.approx(2.5)
    assert headline(rows, within_pp=5.0)["smallest_within_pp.name"] == "compress/prune/s90"
    assert headline(rows, within_pp=0.0)["smallest_within_pp.name"] == "train"
    assert metrics["by_family.compress.name"] == "compress/quantize/k4"
    assert metrics["by_method.search/ga.test_accuracy"] == 0.96
    assert "by_method.train/train.test_accuracy" not in metrics
    assert metrics["pareto.size_front"] == 4

    # uncertainty: each row's Wilson interval holds its accuracy; McNemar against the baseline
    # (190 of 200 right): s90 (180, the same 180 among them) loses 10 discordant pairs, 0 won:
    # p = 2 / 2^10; pso (192) wins 2, loses 0: p = 2 / 2^2 = 0.5
    assert all(r["accuracy_ci_low"] < r["accuracy"] < r["accuracy_ci_high"] for r in rows)
    assert by["compress/prune/s90"]["mcnemar_p"] == pytest.approx(2 / 2**10)
    assert by["search/pso"]["mcnemar_p"] == pytest.approx(0.5)
    assert by["train"]["mcnemar_p"] is None and by["train"]["significant"] is None
    # Holm over the 5 candidates: s90's is the smallest p, times 5
    assert by["compress/prune/s90"]["mcnemar_p_holm"] == pytest.approx(5 * 2 / 2**10)
    assert by["compress/prune/s90"]["significant"] is True
    assert by["search/pso"]["significant"] is False
    assert metrics["best.mcnemar_p"] == pytest.approx(0.5) and metrics["best.significant"] == 0
    assert headline(rows, 1.0, n_test=N_FAKE)["one_sample_pp"] == pytest.approx(0.5)


def test_summary_marks_what_the_test_split_cannot_tell_apart():
    rows = build(HAND_MADE, "artifact_bytes")
    for row in rows:
        row["latency_runtime"] = "LiteRT 2.3.0, 1 thread"
    metrics = headline(rows, 1.0, n_test=N_FAKE)
    shown = {r["name"]: r for r in summary.shown(rows)}
    assert shown["search/pso"]["delta_shown"] == "+1.00 (n.s.)"
    assert shown["compress/prune/s90"]["delta_shown"] == "-5.00"  # significant: no mark
    assert shown["train"]["delta_shown"] == "+0.00"
    low, high = rows[0]["accuracy_ci_low"], rows[0]["accuracy_ci_high"]
    assert shown["search/pso"]["ci"] == f"{100 * low:.1f}–{100 * high:.1f}"
    head = summary.headline_rows(metrics, 1.0)
    assert head[1]["what"] == "best accuracy, not distinguishable from the baseline"
    assert head[1]["ci"] == shown["search/pso"]["ci"]
    tex = summary.leaderboard_latex(rows, "artifact_bytes", N_FAKE)
    assert "(n.s.)" in tex and "LiteRT 2.3.0, 1 thread" in tex and "McNemar" in tex
    # a best that the test split does tell apart from the baseline keeps the plain label
    metrics["best.significant"] = 1
    assert summary.headline_rows(metrics, 1.0)[1]["what"] == "best accuracy"


def test_empty_scored_set_is_a_clear_error():
    with pytest.raises(LeanmlError, match="no candidate model could be scored"):
        build([], "artifact_bytes")


def _balanced(tex: str) -> None:
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 1
    assert tex.count(r"\begin{table}") == tex.count(r"\end{table}") == 1
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert rule in tex
    spec = re.search(r"\\begin\{tabular\}\{([lrc]+)\}", tex).group(1)
    body = tex.split(r"\toprule")[1].split(r"\bottomrule")[0]
    for line in body.strip().splitlines():
        line = line.strip()
        if line == r"\midrule":
            continue
        assert line.endswith(r"\\")
        # unescaped & separate the cells: one fewer than the columns
        assert len(re.findall(r"(?<!\\)&", line)) == len(spec) - 1, line
    # no bare special characters: every _ % # & $ is escaped (or inside a math symbol)
    text = "\n".join(line for line in tex.splitlines() if not line.startswith("%"))
    text = re.sub(r"\$\\(times|pm|geq|leq|Delta)\$", "", text)
    for ch in "_%#$":
        assert not re.findall(rf"(?<!\\){re.escape(ch)}", text), (ch, tex)
    braces = re.sub(r"\\[{}]", "", tex)
    assert braces.count("{") == braces.count("}")


def test_latex_table_is_balanced_and_escaped():
    rows = build(HAND_MADE, "artifact_bytes")
    for row in rows:
        row["front"] = "S L"
        row["name"] += "_x%#&$~^{}"
    tex = tables.latex(
        rows, summary.LEADERBOARD_TABLE, "a caption_with_underscore", "tab:t", note="50%"
    )
    _balanced(tex)
    assert r"compress/prune/s90\_x\%\#\&\$\textasciitilde{}\textasciicircum{}\{\}" in tex
    assert r"caption{a caption\_with\_underscore}" in tex
    assert "$\\times$" in tex and "$\\Delta$" in tex
    grouped = tables.latex(rows, summary.FAMILY_TABLE, "c", "tab:c", groups=[2, 4])
    _balanced(grouped)
    assert grouped.count(r"\midrule") == 3


def test_markdown_table_shape():
    rows = build(HAND_MADE, "artifact_bytes")
    for row in rows:
        row["front"] = "S|L"
    md = tables.markdown(rows, summary.LEADERBOARD_TABLE).splitlines()
    assert len(md) == 2 + len(rows)
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 13 for line in md)


# --- the report from real files laid out like the pipeline's outputs -----------------------


def _model(splits, units, epochs):
    seed_everything(0)
    spec = ModelSpec.model_validate({"kind": "mlp", "mlp": {"hidden_units": [units]}})
    model = models.build(spec, splits.input_shape, splits.n_classes)
    if epochs:
        fit_model(model, splits, Fit(epochs=epochs, early_stopping_patience=0), progress=False)
    return model


def _write_csv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def layout(tiny_splits, tmp_path_factory):
    """A project folder with prepared data and models of every family, some of them broken."""
    import tensorflow as tf

    from leanml.compress.encode import encode
    from leanml.compress.qat import qat_model, strip_qat

    root = tmp_path_factory.mktemp("evaluate")
    p = paths.load(root)
    data.save(tiny_splits, p.prepare, data.card(tiny_splits, "digits", 0))
    baseline = _model(tiny_splits, 16, 8)
    measure.save_model(baseline, p.train.model)

    pruned = keras.Sequential.from_config(baseline.get_config())
    weights = baseline.get_weights()
    for w in weights:
        if w.ndim == 2:
            w[np.abs(w) < np.quantile(np.abs(w), 0.5)] = 0
    pruned.set_weights(weights)
    prune_dir = root / "models/compress/prune"
    measure.save_model(pruned, prune_dir / "s50.keras")
    encode(pruned, prune_dir / "s50.packed", sparse=True)
    (prune_dir / "orphan.npz").write_bytes(b"PK\x03\x04 not a model")
    (prune_dir / ".s50.keras.tmp").write_bytes(b"half written")
    (root / "reports/compress/prune").mkdir(parents=True)
    (root / "reports/compress/prune/settings.json").write_text(
        json.dumps(
            {"columns": ["sparsity", "kind"], "variants": {"s50": {"kind": "", "sparsity": 0.5}}}
        )
    )

    converter = tf.lite.TFLiteConverter.from_keras_model(baseline)
    quant_dir = root / "models/compress/quantize"
    quant_dir.mkdir(parents=True)
    (quant_dir / "tflite_float32.tflite").write_bytes(converter.convert())

    ga_dir = root / "models/search/ga"
    measure.save_model(_model(tiny_splits, 24, 2), ga_dir / "best.keras")
    (ga_dir / "checkpoint.jsonl").write_text("{}\n")
    (root / "reports/search/ga").mkdir(parents=True)
    (root / "reports/search/ga/best.json").write_text(json.dumps({"config": {"hidden_units": 24}}))
    _write_csv(
        root / "reports/search/ga/convergence.csv",
        [{"evaluation": i, "best_score": 0.5 + i / 10, "best_val_accuracy": 0.5} for i in (1, 2)],
    )
    pso_dir = root / "models/search/pso"
    pso_dir.mkdir(parents=True)
    (pso_dir / "best.keras").write_bytes(b"not a zip archive")  # corrupt

    # a quantization-aware model as the compress stage saves it: stripped to plain layers
    stripped, _ = strip_qat(qat_model(baseline, 8, True, True))
    measure.save_model(stripped, root / "models/nas/rl/best.keras")
    return root, baseline


def _cfg(**evaluate):
    return parse({"evaluate": {"measure": TINY_MEASURE, **evaluate}})


@pytest.mark.slow
def test_discovery_finds_runnable_files_and_labels(layout):
    root, _ = layout
    found = discover(root / "models", root / "reports")
    by = {c.name: c for c in found.candidates}
    assert set(by) == {
        "train",
        "compress/prune/s50",
        "compress/quantize/tflite_float32",
        "search/ga",
        "search/pso",
        "nas/rl",
    }
    assert by["compress/prune/s50"].artifact.name == "s50.packed"
    assert by["compress/prune/s50"].setting == {"sparsity": 0.5}  # the empty `kind` is dropped
    assert by["search/ga"].setting == {"hidden_units": 24}
    assert by["train"].artifact == by["train"].path
    assert [s["file"].endswith("orphan.npz") for s in found.size_only] == [True]
    only = discover(root / "models", root / "reports", ["train", "search", "absent"])
    assert {c.family for c in only.candidates} == {"train", "search"}
    assert not only.warnings  # an absent family is simply skipped


@pytest.mark.slow
def test_report_builds_from_fixture_outputs(layout, tiny_splits):
    root, baseline = layout
    warnings = []
    metrics, rows, out = evaluate_report.run(paths.load(root), _cfg(), on_warning=warnings.append)

    assert any("search/pso" in w and "best.keras" in w for w in warnings), warnings
    by = {r["name"]: r for r in rows}
    assert set(by) == {
        "train",
        "compress/prune/s50",
        "compress/quantize/tflite_float32",
        "search/ga",
        "nas/rl",
    }
    # the baseline's accuracy is its test accuracy, computed independently
    test_acc = keras_evaluate(baseline, tiny_splits.test)["accuracy"]
    assert by["train"]["accuracy"] == pytest.approx(test_acc)
    assert metrics["baseline.test_accuracy"] == pytest.approx(test_acc)
    # the TFLite twin: same parameters and FLOPs as the Keras model, (near) same predictions
    tfl = by["compress/quantize/tflite_float32"]
    assert tfl["params"] == by["train"]["params"] == measure.count_params(baseline)["params"]
    assert tfl["flops"] == by["train"]["flops"] == measure.flops(baseline)
    assert abs(tfl["accuracy"] - test_acc) <= 1 / len(tiny_splits.test.y) + 1e-9
    # the pruned model: sizes from the real files, the packed one is its artifact
    s50 = by["compress/prune/s50"]
    prune_dir = root / "models/compress/prune"
    assert s50["file_bytes"] == (prune_dir / "s50.keras").stat().st_size
    assert s50["artifact_bytes"] == s50["size_bytes"] == (prune_dir / "s50.packed").stat().st_size
    assert s50["nonzero_params"] < s50["params"]
    assert s50["compression_ratio"] == pytest.approx(by["train"]["size_bytes"] / s50["size_bytes"])
    # the literature's bases: 4 × the baseline's parameters, and its float32 TFLite export
    weights = 4 * measure.count_params(baseline)["params"]
    assert s50["ratio_weights"] == pytest.approx(weights / s50["size_bytes"])
    exported = len(tflite.convert(baseline))
    assert by["train"]["float_tflite_bytes"] == exported
    assert s50["ratio_tflite"] == pytest.approx(exported / s50["size_bytes"])
    assert all(r["latency_ms_p50"] > 0 and r["throughput_per_s"] > 0 for r in rows)
    # one runtime for every row; Keras candidates through their float32 export, the TFLite one
    # as its own file; the Keras-call latency only where there is a Keras model
    assert {r["latency_runtime"] for r in rows} == {tflite.runtime()}
    assert tflite.runtime().startswith("LiteRT ")
    assert tfl["latency_model"] == "own .tflite" and tfl.get("keras_latency_ms_p50") is None
    assert by["train"]["latency_model"] == "float32 TFLite export"
    assert s50["latency_model"] == "float32 TFLite export of the decoded k-bit model"
    assert all(r["keras_latency_ms_p50"] > 0 for r in rows if r is not tfl)
    # a tiny test split: the warning names one sample's worth
    n = len(tiny_splits.test.y)
    assert any(f"{n} samples, so one sample is {100 / n:.2f} pp" in w for w in warnings)
    # the intervals and McNemar p-values on real predictions
    assert all(r["accuracy_ci_low"] <= r["accuracy"] <= r["accuracy_ci_high"] for r in rows)
    assert all(0 < r["mcnemar_p"] <= 1 for r in rows if r["name"] != "train")

    with open(out.leaderboard, newline="") as handle:
        written = list(csv.DictReader(handle))
    assert list(written[0]) == COLUMNS
    assert [float(r["accuracy"]) for r in written] == sorted(
        (float(r["accuracy"]) for r in written), reverse=True
    )
    assert written[0]["path"].startswith("models/")
    saved = json.loads(out.metrics.read_text())
    assert saved["candidates"] == 5 and "by_method.search/ga.test_accuracy" in saved
    assert all(not isinstance(v, dict) for v in saved.values())  # flat for dvc metrics
    for name in ("pareto", "confusion_best", "compression", "search_convergence"):
        assert (out.figures / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert {p.name for p in out.tables.iterdir()} == {
        "leaderboard.tex",
        "train.tex",
        "compress.tex",
        "search.tex",
        "nas.tex",
    }
    for tex in out.tables.iterdir():
        _balanced(tex.read_text())
    summary = out.summary.read_text()
    assert "## Leaderboard" in summary and "figures/pareto.png" in summary
    assert "orphan.npz" in summary and "search/pso" in summary
    matrices = json.loads(out.confusion.read_text())
    assert set(matrices) == {r["name"] for r in rows}
    assert sum(map(sum, matrices["train"])) == len(tiny_splits.test.y)
    classes = list(csv.DictReader(open(out.per_class)))
    assert len(classes) == 5 and len(classes[0]) == 1 + tiny_splits.n_classes


@pytest.mark.slow
def test_stage_logs_everything_to_the_parent_run(layout, tracking_cfg, monkeypatch, tmp_path):
    import shutil

    from tests import mlflow_helpers as tracking

    root, _ = layout
    project = tmp_path
    for name in ("models", "data", "reports"):
        shutil.copytree(root / name, project / name)
    (project / "params.yaml").write_text(
        "evaluate:\n  families: [train, compress]\n  measure: {warmup: 1, runs: 3, batch_size: 8}\n"
    )
    monkeypatch.chdir(project)
    spec = importlib.util.spec_from_file_location("evaluate_stage", ROOT / "stages/evaluate.py")
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    stage.main()

    runs = tracking.runs(tracking_cfg.model_copy(update={"experiment": "leanml"}))
    parent = next(r for r in runs if r["parent"] is None)
    child = next(r for r in runs if r["name"] == "evaluate")
    assert child["parent"] == parent["run_id"] and child["status"] == "FINISHED"
    assert parent["metrics"]["evaluate.candidates"] == 3
    assert "evaluate.best.test_accuracy" in parent["metrics"]
    assert set(parent["metrics"]) <= {f"evaluate.{k}" for k in stage.HEADLINE}  # headline only
    assert parent["tags"]["mlflow.note.content"].startswith("# Evaluation")
    assert parent["params"]["evaluate.within_pp"] == "1.0"
    import mlflow

    client = mlflow.MlflowClient()
    best = client.get_model_version_by_alias("leanml-digits", "best")
    assert float(best.tags["test_accuracy"]) == child["metrics"]["best.test_accuracy"]
    assert child["tags"]["registry.baseline"] in {"1", "2", "3"}
    logged = {a.path for a in client.list_artifacts(parent["run_id"], "evaluate")}
    assert {
        "evaluate/leaderboard.csv",
        "evaluate/leaderboard.json",
        "evaluate/metrics.json",
        "evaluate/summary.md",
        "evaluate/figures",
        "evaluate/tables",
    } <= logged
    table = json.loads(
        (
            project / client.download_artifacts(parent["run_id"], "evaluate/leaderboard.json")
        ).read_text()
    )
    assert len(table["data"]) == 3 and "accuracy" in table["columns"]


def test_no_candidates_is_a_clear_error(tiny_splits, tmp_path):
    p = paths.load(tmp_path)
    data.save(tiny_splits, p.prepare, data.card(tiny_splits, "digits", 0))
    with pytest.raises(LeanmlError, match="no candidate models"):
        evaluate_report.run(p, _cfg(), on_warning=lambda m: None)
    (tmp_path / "models/train").mkdir(parents=True)
    (tmp_path / "models/train/model.keras").write_bytes(b"garbage")
    warnings = []
    with pytest.raises(LeanmlError, match="no candidate model could be scored"):
        evaluate_report.run(p, _cfg(), on_warning=warnings.append)
    assert any("models/train/model.keras" in w for w in warnings)


@pytest.mark.slow
def test_tflite_stats_count_int8_weights(tiny_splits):
    import tensorflow as tf

    model = _model(tiny_splits, 32, 1)  # trained: zero biases would be dropped by the converter
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # int8 weights (tensors ≥ 1024 values)
    content = converter.convert()
    from tensorflow.lite.tools import flatbuffer_utils

    graph = flatbuffer_utils.read_model_from_bytearray(bytearray(content)).subgraphs[0]
    assert any(t.type == 9 for t in graph.tensors)  # INT8: the weights really are quantized
    stats = tflite_stats(content)
    assert stats["params"] == measure.count_params(model)["params"]
    assert stats["flops"] == measure.flops(model)


def test_compress_and_evaluate_measure_a_file_the_same_way(tiny_splits, tmp_path):
    """One measurement path: for the same .keras and .tflite files, the compress stage's results
    row and the evaluate stage's score agree exactly on accuracy and every size, and evaluate
    labels each variant from the compress stage's settings.json, in the method's column order."""
    from leanml import compress
    from leanml.compress import run as sweep
    from leanml.evaluate import score_all
    from leanml.io import write_json
    from leanml.params import Measure

    baseline = _model(tiny_splits, 16, 2)
    p = paths.load(tmp_path)
    baseline_file = measure.save_model(baseline, p.train.model)
    quantize = {
        "tflite": {"modes": ["full_int8"], "calibration_samples": 20},
        "ptq": {"bits": [3], "granularities": ["per_channel"], "schemes": ["asymmetric"]},
        "qat": {"bits": []},
    }
    method = compress.get("quantize", parse({"compress": {"quantize": quantize}}))
    out = paths.item(p.compress, "quantize")
    models_dir = p.compress.models / "quantize"
    fast = Measure(**TINY_MEASURE)
    ref = sweep.reference(baseline, baseline_file, tiny_splits, models_dir)
    rows = [row for _, row in sweep.run(method, baseline, ref, tiny_splits, models_dir)]
    write_json(out.settings, sweep.settings(method, rows))

    found = discover(p.evaluate.models, p.evaluate.reports, ["compress"])
    scored = score_all(found.candidates, tiny_splits.test, tiny_splits.n_classes, fast)
    by = {c.variant: (c, s) for c, s in scored}
    assert set(by) == {r["variant"] for r in rows} == {"tflite_full_int8", "ptq_k3_pc_asym"}
    for row in rows:
        candidate, score = by[row["variant"]]
        assert score["accuracy"] == row["test_accuracy"]
        for key in ("file_bytes", "gzip_bytes", "artifact_bytes", "artifact_gzip_bytes"):
            assert score[key] == row[key], key
        expected = {c: row[c] for c in method.columns if row[c] not in (None, "")}
        assert list(candidate.setting.items()) == list(expected.items())
        if candidate.format == "keras":  # (a TFLite row reports its source model's counts)
            for key in ("params", "nonzero_params", "flops"):
                assert score[key] == row[key], key


@pytest.mark.slow
def test_every_kind_of_saved_candidate_loads_without_the_method_packages(
    tiny_splits, tmp_path, tracking_cfg
):
    """No saved model needs leanml.compress or leanml.nas to load (QAT is stripped back to plain
    layers before saving), so the evaluate stage imports neither: every kind of file the pipeline
    saves is loaded and run in a fresh process that never imports them."""
    import subprocess
    import sys

    from leanml import compress
    from leanml.nas.space import ArchSpace
    from leanml.params import NasSpace
    from tests.conftest import project_env

    baseline = _model(tiny_splits, 16, 2)
    cfg = parse(
        {
            "compress": {
                "prune": {"sparsities": [0.5], "epochs": 1, "structured": {"fractions": [0.5]}},
                "quantize": {
                    "tflite": {"modes": ["dynamic_int8", "full_int8"], "calibration_samples": 10},
                    "ptq": {
                        "bits": [4],
                        "granularities": ["per_channel"],
                        "schemes": ["symmetric"],
                    },
                    "qat": {"bits": [4], "epochs": 1},
                },
                "lowrank": {"values": [0.5], "epochs": 1},
                "combined": {"sparsities": [0.5], "bits": [4], "epochs": 1},
                "auto": TINY["auto"],
            }
        }
    )
    files = []
    baseline_file = measure.save_model(baseline, tmp_path / "baseline.keras")
    ref = sweep.reference(baseline, baseline_file, tiny_splits, tmp_path / "ref")
    for name in compress.METHODS:
        method = compress.get(name, cfg)
        prepare(method, baseline, tiny_splits, ref, tmp_path / name, tracking_cfg)
        for setting in method.settings():
            files.append(method.apply(baseline, tiny_splits, setting, tmp_path / name).model_file)
    assert {f.name for f in files} >= {"qat_k4_pc_sym.keras", "structured_l1_f50.keras"}
    cnn = ModelSpec.model_validate({"kind": "cnn", "cnn": {"filters": [4], "dense_units": [8]}})
    files.append(
        measure.save_model(models.build(cnn, tiny_splits.input_shape, 10), tmp_path / "cnn.keras")
    )
    space = ArchSpace(NasSpace(max_layers=2), image_input=True)  # conv, batch norm, skips
    rng = np.random.default_rng(0)
    for i in range(6):
        child = space.build(space.sample(rng), tiny_splits.input_shape, tiny_splits.n_classes)
        files.append(measure.save_model(child, tmp_path / f"nas_{i}.keras"))
    script = f"""
import sys
from pathlib import Path
import numpy as np
from leanml import evaluate, measure
from leanml.report import evaluate as evaluate_report  # noqa: F401  (what the stage imports)
x = np.load({str(tmp_path / "x.npy")!r})
for path in {[str(f) for f in files]!r}:
    probs = measure.load_runner(Path(path), "test").predict(x)
    assert probs.shape == (len(x), 10), (path, probs.shape)
leaked = sorted(m for m in sys.modules if m.startswith(("leanml.compress", "leanml.nas")))
assert not leaked, leaked
print("loaded", {len(files)})
"""
    np.save(tmp_path / "x.npy", tiny_splits.test.x[:20])
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=project_env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"loaded {len(files)}" in done.stdout


# --- no stage upstream of evaluate selects anything on the test split -----------------------


class _Sealed:
    """A test split that fails the test when anything reads its features or labels."""

    @property
    def x(self):
        raise AssertionError("the test split's features were read")

    @property
    def y(self):
        raise AssertionError("the test split's labels were read")


class SealedSplits(data.Splits):
    @property
    def n_classes(self) -> int:
        return int(max(self.train.y.max(), self.val.y.max()) + 1)


@pytest.fixture(scope="module")
def sealed(tiny_splits):
    return SealedSplits(tiny_splits.train, tiny_splits.val, _Sealed())


@pytest.mark.slow
def test_training_and_search_never_read_the_test_split(sealed):
    from leanml import search
    from leanml.search.objective import keras_objective
    from leanml.search.space import Space
    from leanml.train import train_and_score
    from leanml.trials import runner

    small = {"ga": {"population": 2}, "pso": {"particles": 2}, "bayes": {"initial_points": 2}}
    cfg = parse({"search": {"budget": 2, "fit": {"epochs": 1}, **small}})
    result = train_and_score(cfg.train.model, sealed, Fit(epochs=1), seed=0, progress=False)
    assert result.ok
    algorithm = search.create("random", Space.from_params(cfg.search.space), cfg.search, 0, 2)
    objective = keras_objective(sealed, cfg.train.model, cfg.search.fit)
    trials = runner.run(algorithm, objective, budget=2, progress=False)
    assert len(trials) == 2 and all(t.ok for t in trials), [t.error for t in trials]
    assert runner.best_trial(trials) is not None


@pytest.mark.slow
def test_nas_children_never_read_the_test_split(sealed):
    import numpy as np

    from leanml.nas.objective import nas_objective
    from leanml.nas.space import ArchSpace
    from leanml.params import NasSpace

    space = ArchSpace(NasSpace(max_layers=2), image_input=True)
    objective = nas_objective(space, sealed, Fit(epochs=1, early_stopping_patience=0))
    rng = np.random.default_rng(0)
    for seed in range(2):
        out = objective(space.sample(rng), seed)
        assert out["status"] == "ok" and 0 <= out["val_accuracy"] <= 1


@pytest.mark.slow
def test_compression_never_reads_the_test_split(sealed, tiny_splits, tmp_path, tracking_cfg):
    """Every compress method builds its variants (fine-tuning, pruning scores, calibration)
    from train/val only. (Its results table *reports* test accuracy; it selects nothing.)"""
    from leanml import compress

    baseline = _model(tiny_splits, 16, 2)
    cfg = parse(
        {
            "compress": {
                "prune": {"sparsities": [0.5], "epochs": 1, "criteria": ["taylor"]},
                "quantize": {"tflite": {"modes": ["full_int8"], "calibration_samples": 10}},
                "lowrank": {"values": [0.5], "epochs": 1},
                "combined": {"sparsities": [0.5], "bits": [4], "epochs": 1},
                "auto": TINY["auto"],
            }
        }
    )
    # the reference (the stage's report of the baseline) reads test; the methods may not
    baseline_file = measure.save_model(baseline, tmp_path / "baseline.keras")
    ref = sweep.reference(baseline, baseline_file, tiny_splits, tmp_path / "ref")
    for name in compress.METHODS:
        method = compress.get(name, cfg)
        prepare(method, baseline, sealed, ref, tmp_path / name, tracking_cfg)  # auto's search
        variant = method.apply(baseline, sealed, method.settings()[0], tmp_path)
        assert variant.model_file.is_file()
    qat = compress.get("quantize", cfg)
    setting = next(s for s in qat.settings() if s["kind"] == "qat")
    assert qat.apply(baseline, sealed, setting, tmp_path).model_file.is_file()


def test_a_kept_baseline_is_labelled_as_the_baseline_not_the_winner(tmp_path):
    from leanml.discover import _settings_from_reports

    winner = {"hidden_units": 24, "optimizer": "sgd"}
    (tmp_path / "best.json").write_text(json.dumps({"config": winner, "source": "refit"}))
    assert _settings_from_reports(tmp_path)["best"] == winner
    # the stage kept the train model: the leaderboard must not show the winner's config for it
    (tmp_path / "best.json").write_text(json.dumps({"config": winner, "source": "baseline"}))
    assert _settings_from_reports(tmp_path)["best"] == {"kept": "baseline"}
