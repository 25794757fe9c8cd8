"""Chinese thesis tables (`evaluate.language: zh`) and the Chinese user guide, README.zh-CN.md.

The tables: Chinese headers, captions and notes in LaTeX that compiles in a ctex document, the
same numbers and names as in English, and English output byte-identical to what the report wrote
before languages existed. The guide: every param key, `-S` override, make target and stage it
names exists, so it cannot drift from the code silently.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import string
import subprocess
import typing
from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import BaseModel

from leanml import glossary, params, study
from leanml.discover import Candidate, Discovery
from leanml.errors import LeanmlError
from leanml.report import evaluate as evaluate_report
from leanml.report import i18n, summary
from leanml.report.leaderboard import build
from tests.conftest import ROOT

GUIDE = ROOT / "README.zh-CN.md"


# --- a report from hand-made scores (no Keras) ---------------------------------------------


def _fake(root: Path, name: str, family: str, acc: float, size: int, lat: float, setting: dict):
    path = root / "models" / f"{name}.keras"
    method = name.split("/")[1] if "/" in name else family
    candidate = Candidate(name, family, method, name.split("/")[-1], path, path, setting)
    scores = {
        "accuracy": acc,
        "macro_f1": acc,
        "per_class_accuracy": [acc, 1 - acc],
        "confusion": [[9, 1], [2, 8]],
        "correct": np.arange(200) < round(acc * 200),
        "params": 12345,
        "nonzero_params": 6789,
        "flops": 24680,
        "file_bytes": size,
        "gzip_bytes": size // 2,
        "artifact_bytes": size,
        "artifact_gzip_bytes": size // 3,
        "latency_ms_p50": lat,
        "latency_ms_p95": lat * 2,
        "throughput_per_s": 1234.5,
        "latency_runtime": "LiteRT 2.3.0, 1 thread",
    }
    return candidate, scores


def _report(root: Path, language: str | None, suffix: str = "") -> evaluate_report.Outputs:
    """The evaluate report's files for six hand-made candidates (`suffix` is appended to every
    model name, e.g. LaTeX specials); `language` None: the call without the argument."""
    prune = {"criterion": "magnitude"}
    specs = [
        ("search/ga", "search", 0.96, 40000, 0.5, {"hidden_units": 64, "optimizer": "adam"}),
        ("train", "train", 0.95, 10000, 0.3, {}),
        ("compress/prune/magnitude_s50", "compress", 0.945, 5000, 0.3, {"sparsity": 0.5, **prune}),
        ("compress/prune/magnitude_s90", "compress", 0.90, 2000, 0.2, {"sparsity": 0.9, **prune}),
        ("compress/quantize/ptq_k4", "compress", 0.945, 4000, 0.4, {"bits": 4}),
        ("nas/rl", "nas", 0.97, 30000, 0.6, {}),
    ]
    scored = [_fake(root, name + suffix, *rest) for name, *rest in specs]
    rows = build(scored, "artifact_bytes")
    discovery = Discovery(
        [c for c, _ in scored],
        [{"file": "compress/x/y.bin", "file_bytes": 100, "gzip_bytes": 50}],
        ["a warning about x_y"],
    )
    here = root / "reports" / "evaluate"
    out = evaluate_report.Outputs(
        *(here / f for f in ("leaderboard.csv", "pareto.csv", "per_class.csv", "confusion.json")),
        here / "metrics.json",
        here / "summary.md",
        here / "figures",
        here / "tables",
    )
    kwargs = {} if language is None else {"language": language}
    evaluate_report.write_all(
        scored,
        rows,
        discovery,
        out,
        root=root,
        reports_root=root / "reports",
        size="artifact_bytes",
        within_pp=1.0,
        context={"dataset": "digits", "n_test": 270, "warmup": 5, "runs": 50, "batch_size": 256},
        **kwargs,
    )
    return out


# sha256 of the English report from exactly `_report(root, None)`'s inputs: first written by the
# code before `evaluate.language` existed (commit 112f353), recomputed when issue 14 added the
# accuracy intervals, McNemar marks, the latency runtime and the float32-weights ratio. If the English tables change on
# purpose, recompute them; the point is that a language never changes a byte of English.
ENGLISH_BEFORE = {
    "summary.md": "76f589f9351c3b61dec4e5026d6a95084a7c3cc32ced0924296760dd2d11243c",
    "leaderboard.csv": "88e6703ace6474e38427f2c2dc16d54f5da5387b0687bed49c4e746148a50ec8",
    "pareto.csv": "747ce6a909f0b0177b068b3e0354ac6ddb40d87f5d630069befa40cdd1e958c5",
    "per_class.csv": "846194417c7af75ac7b7608ee4fe58029347395f2406d2dd94bfffa6d896af2d",
    "tables/compress.tex": "bce6f3d4871811414ad508e917162d8a5484f16a7528e8f00c18f7dd5ccdace6",
    "tables/leaderboard.tex": "1b898866b6070bf75d82c917e6e53b93832eff8317d49f3e328a976a59279a49",
    "tables/nas.tex": "6f10b45b354ab2eb575ec2467d5312de5af79994cc8f42c260a2bee111b1f8df",
    "tables/search.tex": "0aa2e8380ac4a6706a0b685ff9728f197f8a203db8edd10789cdfeb40a2f611c",
    "tables/train.tex": "566f7eb4528189e5b1da89e74f5c419ecb65aad42978085d6cd4b7a58568e068",
}


def _files(out: evaluate_report.Outputs) -> dict[str, bytes]:
    here = out.summary.parent
    return {name: (here / name).read_bytes() for name in ENGLISH_BEFORE}


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, evaluate_report.Outputs]:
    base = tmp_path_factory.mktemp("zh")
    return {
        "default": _report(base / "default", None),
        "en": _report(base / "en", "en"),
        "zh": _report(base / "zh", "zh"),
        "zh_specials": _report(base / "zh_specials", "zh", suffix="_x%#&$~^{}"),
    }


def test_english_output_is_byte_identical_to_before_languages(reports):
    default = _files(reports["default"])
    got = {name: hashlib.sha256(data).hexdigest() for name, data in default.items()}
    assert got == ENGLISH_BEFORE
    assert _files(reports["en"]) == default  # language="en" is the default, exactly


def _check_latex(tex: str) -> None:
    """What makes a table compile in a ctex document: one booktabs tabular, every row with its
    cells, no bare special character, balanced braces, non-ASCII text only CJK (or math)."""
    assert tex.count(r"\begin{table}") == tex.count(r"\end{table}") == 1
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 1
    top, bottom = tex.index(r"\toprule"), tex.index(r"\bottomrule")
    assert tex.index(r"\begin{tabular}") < top < tex.index(r"\midrule") < bottom
    spec = re.search(r"\\begin\{tabular\}\{([lrc]+)\}", tex).group(1)
    for line in tex[top:bottom].splitlines()[1:]:
        line = line.strip()
        if not line or line == r"\midrule":
            continue
        assert line.endswith(r"\\"), line
        assert len(re.findall(r"(?<!\\)&", line)) == len(spec) - 1, line
    body = "\n".join(line for line in tex.splitlines() if not line.startswith("%"))
    body = re.sub(r"\$\\(times|pm|geq|leq|Delta)\$", "", body)
    for ch in "_%#$&^~":
        bare = re.findall(rf"(?<!\\){re.escape(ch)}", body)
        if ch == "&":  # the cell separators are counted above
            continue
        assert not bare, (ch, tex)
    unescaped = re.sub(r"\\[{}]", "", tex)
    depth = 0
    for ch in unescaped:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, tex
    assert depth == 0
    for ch in body:  # xelatex + ctex typeset CJK text; any other symbol must be math or ASCII
        if ord(ch) > 127:
            assert (
                "\u4e00" <= ch <= "\u9fff"
                or "\u3000" <= ch <= "\u303f"
                or "\uff00" <= ch <= "\uffef"
            ), (ch, tex)


def test_zh_tables_have_chinese_headers_captions_and_notes(reports):
    out = reports["zh"]
    leaderboard = (out.tables / "leaderboard.tex").read_text()
    header = next(line for line in leaderboard.splitlines() if "模型" in line and "&" in line)
    for word in ("排名", "模型", "准确率 (\\%)", "非零参数量", "大小 (KiB)", "压缩率", "延迟 p50"):
        assert word in header, (word, header)
    assert r"\caption{全部候选模型在测试集上的结果（按准确率排序）}" in leaderboard
    assert r"\footnotesize 测试集共 270 个样本。大小：最紧凑的实际文件。" in leaderboard
    assert "ctex" in leaderboard.splitlines()[1]  # the preamble comment says what to load
    compress = (out.tables / "compress.tex").read_text()
    assert r"\caption{模型压缩（compress）：候选模型在测试集上的结果}" in compress
    assert "方法 & 变体 & 准确率" in compress and "吞吐量 (样本/s)" in compress
    for tex in out.tables.glob("*.tex"):
        _check_latex(tex.read_text())
        assert not re.search(r"Acc\.|Model|Size \(|Ratio|candidates", tex.read_text()), tex
    md = out.summary.read_text()
    for heading in ("# 评估：", "## 要点", "## 排行榜", "## 帕累托前沿", "## 文件"):
        assert heading in md
    assert "| 基线模型 | train |" in md and "与基线相差不超过 1 个百分点的最小模型" in md


def test_zh_tables_have_the_same_cells_as_english(reports):
    """Only words change: every number and name of the English table is in the Chinese one, in
    the same row and column."""

    def body_rows(tex: str) -> list[list[str]]:
        inner = tex.split(r"\midrule", 1)[1].split(r"\bottomrule")[0]
        lines = [line.strip() for line in inner.splitlines()]
        return [re.split(r"(?<!\\)&", line) for line in lines if line and line != r"\midrule"]

    for name in ("leaderboard.tex", "compress.tex", "search.tex", "nas.tex", "train.tex"):
        en = (reports["en"].tables / name).read_text()
        zh = (reports["zh"].tables / name).read_text()
        assert body_rows(en) == body_rows(zh), name
        assert len(body_rows(zh)) >= 1
    assert reports["en"].leaderboard.read_bytes() == reports["zh"].leaderboard.read_bytes()
    assert reports["en"].metrics.read_bytes() == reports["zh"].metrics.read_bytes()


def test_zh_latex_escapes_model_names(reports):
    out = reports["zh_specials"]
    leaderboard = (out.tables / "leaderboard.tex").read_text()
    assert r"nas/rl\_x\%\#\&\$\textasciitilde{}\textasciicircum{}\{\}" in leaderboard
    for tex in out.tables.glob("*.tex"):
        _check_latex(tex.read_text())


def test_every_header_caption_and_sentence_has_a_chinese_twin():
    for cols in (
        summary.LEADERBOARD_TABLE,
        summary.FAMILY_TABLE,
        summary.HEADLINE_TABLE,
        summary.PARETO_TABLE,
        study.AGG_TABLE,  # ready for the study's tables
        study.TEST_TABLE,
    ):
        for col in cols:
            assert col.header in i18n.HEADERS_ZH, col.header
        zh = i18n.columns(cols, "zh")
        assert [c.key for c in zh] == [c.key for c in cols]  # cells are unchanged
        assert [c.fmt for c in zh] == [c.fmt for c in cols]
    assert i18n.TEXT["en"].keys() == i18n.TEXT["zh"].keys()

    def fields(template: str) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(template) if f}

    for key, english in i18n.TEXT["en"].items():
        assert fields(english) == fields(i18n.TEXT["zh"][key]), key
    assert i18n.SIZE_NAMES["en"].keys() == i18n.SIZE_NAMES["zh"].keys() == set(params.SIZE_METRICS)
    with pytest.raises(ValueError, match="en, zh"):
        i18n.text("md.title", "fr")


def test_language_param_default_choices_and_message():
    assert params.Params().evaluate.language == "en"
    assert params.load(ROOT / "params.yaml").evaluate.language == "en"
    assert params.parse({"evaluate": {"language": "zh"}}).evaluate.language == "zh"
    assert typing.get_args(params.Evaluate.model_fields["language"].annotation) == i18n.LANGUAGES
    with pytest.raises(LeanmlError) as err:
        params.parse({"evaluate": {"language": "cn"}})
    assert str(err.value) == (
        "params.yaml: evaluate.language: must be 'en' (English tables) or 'zh' (Chinese tables "
        "for a ctex/xelatex thesis), got 'cn'"
    )


# --- figures: Chinese only with a font that draws every character ---------------------------


def test_font_detection_reads_glyphs_not_names():
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    assert i18n.font_covering("Accuracy 0-9") is not None  # matplotlib ships DejaVu
    sample = "准确率模型"
    found = i18n.font_covering(sample)
    # matplotlib's "Last Resort" font maps every CJK character to one placeholder glyph: tofu
    last_resort = [f for f in font_manager.fontManager.ttflist if "Last Resort" in f.name]
    for entry in last_resort:
        charmap = FT2Font(entry.fname).get_charmap()
        glyphs = {charmap.get(ord(ch)) for ch in sample}
        assert len(glyphs) < len(sample)  # so it must not count
        assert found != entry.name
    if found is not None:
        entry = next(f for f in font_manager.fontManager.ttflist if f.name == found)
        charmap = FT2Font(entry.fname).get_charmap()
        assert len({charmap[ord(ch)] for ch in sample}) == len(sample)


def test_the_font_check_covers_every_chinese_character_a_figure_draws():
    drawn = [i18n.figure_label(k, "zh") for k in i18n.FIGURE_ZH if "{" not in k]
    drawn += [
        i18n.figure_label("size on disk (bytes, {size})", "zh", size=i18n.size_name(s, "zh"))
        for s in params.SIZE_METRICS
    ]
    drawn.append(i18n.text("fig.confusion_title", "zh", best="nas/rl"))
    needed = {ch for label in drawn for ch in label if ord(ch) > 127}
    assert needed and needed <= set(i18n.figure_text())


def test_zh_figures_fall_back_to_english_without_a_cjk_font(reports):
    names = ("pareto.png", "confusion_best.png", "compression.png")
    en = {n: (reports["en"].figures / n).read_bytes() for n in names}
    zh = {n: (reports["zh"].figures / n).read_bytes() for n in names}
    if i18n.cjk_font() is None:
        assert zh == en  # the English labels, drawn exactly as in English
    else:
        assert zh["pareto.png"] != en["pareto.png"]  # Chinese labels with a real CJK font
    md = reports["zh"].summary.read_text()
    assert "![帕累托前沿：测试准确率与大小、与延迟](figures/pareto.png)" in md


@pytest.mark.skipif(shutil.which("xelatex") is None, reason="xelatex is not installed")
def test_zh_table_compiles_with_xelatex_and_ctex(reports, tmp_path):
    if subprocess.run(["kpsewhich", "ctexart.cls"], capture_output=True).returncode != 0:
        pytest.skip("ctex is not installed")
    shutil.copytree(reports["zh_specials"].tables, tmp_path / "tables")
    inputs = "".join(f"\\input{{tables/{p.name}}}\n" for p in sorted(tmp_path.glob("tables/*")))
    doc = "\\documentclass{ctexart}\n\\usepackage{booktabs}\n\\begin{document}\n"
    (tmp_path / "doc.tex").write_text(doc + inputs + "\\end{document}\n")
    done = subprocess.run(
        ["xelatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:]


# --- README.zh-CN.md stays true to the code ------------------------------------------------

FILE_SUFFIXES = {
    "md", "yaml", "json", "jsonl", "csv", "png", "tex", "keras", "tflite", "packed", "py", "lock",
    "db", "cls",
}  # fmt: skip
# dotted names in the guide that are metrics, not params
METRIC_NAMES = {"smallest_within_pp.*"}


def _models(annotation) -> list:
    """The models and dicts a field's annotation can hold (through Optional / unions)."""
    origin = typing.get_origin(annotation)
    if origin is dict:
        return [dict]
    if origin is not None and origin is not list:
        return [m for arg in typing.get_args(annotation) for m in _models(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def schema_has(key: str) -> bool:
    """Whether `key` (e.g. search.fidelity.eta, or compress.prune.* for a whole section) is a
    key of the params schema, walking the `leanml.params` models' fields."""
    parts = key.removesuffix(".*").split(".")
    nodes: list = [params.Params]
    for part in parts:
        following = []
        for node in nodes:
            if node is dict:  # a mapping of names (search.space.<name>): any name
                following.append(None)
            elif node is not None and part in node.model_fields:
                following += _models(node.model_fields[part].annotation) or [None]
        if not following:
            return False
        nodes = following
    return not key.endswith(".*") or any(n is not None for n in nodes)


def _guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def _apply(raw: dict, key: str, value) -> None:
    *head, last = key.split(".")
    node = raw
    for part in head:
        node = node.setdefault(part, {})
    node[last] = value


def _parses_with(overrides: list[tuple[str, str]]) -> None:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value in overrides:
        _apply(raw, key, yaml.safe_load(value))
    params.parse(raw, source=f"README.zh-CN.md {overrides}")


def test_schema_walk_can_say_no():
    assert schema_has("search.fidelity.eta") and schema_has("compress.prune.structured.fractions")
    assert schema_has("search.space.learning_rate") and schema_has("search.final_fit.epochs")
    assert schema_has("nas.meta.*") and schema_has("evaluate.language")
    assert not schema_has("search.fidelity.etta") and not schema_has("serach.budget")
    assert not schema_has("train.epochs.x") and not schema_has("compress.prune.sparsities.*")


def test_every_param_key_in_the_guide_exists_and_every_value_shown_is_valid():
    guide = _guide()
    checked = 0
    for token in re.findall(r"`([^`\n]+)`", guide):
        key, _, value = token.partition(": ")
        if "/" in key or " " in key or not re.fullmatch(r"[a-z_][a-z0-9_]*(\.[a-z0-9_*]+)+", key):
            continue
        if key in METRIC_NAMES or key.rsplit(".", 1)[1] in FILE_SUFFIXES:
            continue
        if key.split(".")[0] == "best" and key.rsplit(".", 1)[1] in glossary.NAMES:
            continue  # a metric (`best.val_accuracy`), not a param key
        assert schema_has(key), f"README.zh-CN.md names `{token}`: no such param key"
        if value and not value.endswith("–"):
            _parses_with([(key, value)])
        checked += 1
    assert checked > 80  # the guide is mostly about params: a broken regex would find none


def test_every_command_in_the_guide_exists():
    guide = _guide()
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    made = re.findall(r"\bmake ([a-z][a-z-]*)", guide)
    assert {"run", "test", "ui", "study"} <= set(made)
    for target in made:
        assert target in targets, f"README.zh-CN.md: make {target}: no such Makefile target"

    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    members = yaml.safe_load((ROOT / "leanml" / "paths.yaml").read_text())["members"]
    stages = set()
    for name, stage in dvc["stages"].items():
        if "foreach" in stage:
            family = stage["foreach"].removeprefix("${members.").removesuffix("}")
            stages |= {f"{name}@{m}" for m in members[family]}
        else:
            stages.add(name)
    named = set()
    for family, inner in re.findall(r"\b([a-z_]+)@\{([a-z_,]+)\}", guide):
        named |= {f"{family}@{m}" for m in inner.split(",")}
    named |= set(re.findall(r"\b[a-z_]+@[a-z_]+\b", guide))
    named |= set(re.findall(r"dvc repro ([a-z_@]+)", guide))
    # a backticked plain stage name (`evaluate`); `search` alone is the params section
    named |= {t for t in re.findall(r"`([a-z_]+)`", guide) if t in stages}
    assert {"compress@prune", "search@bayes", "nas@meta", "evaluate"} <= named
    for stage in named:
        assert stage in stages, f"README.zh-CN.md names stage {stage}: not in dvc.yaml"

    # every `dvc exp run -S key=value` shown is a valid change of params.yaml
    runs = [line for line in guide.splitlines() if line.startswith("dvc exp run")]
    runs += [t for t in re.findall(r"`([^`\n]+)`", guide) if re.match(r"dvc exp run -S [a-z]", t)]
    assert len(runs) >= 9
    for line in runs:
        command = line.split("#")[0]
        pairs = re.findall(r"-S '?([a-z_.]+)=([^' ]+)'?", command)
        assert pairs, line
        for key, _ in pairs:
            assert schema_has(key), line
        _parses_with(pairs)


def test_the_two_readmes_link_to_each_other():
    english = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](README.zh-CN.md)" in "\n".join(english.splitlines()[:12])
    assert "](README.md)" in "\n".join(_guide().splitlines()[:5])
    assert "`evaluate.language`" in english


if __name__ == "__main__":
    # Recompute ENGLISH_BEFORE after an intended change of the English report:
    #   python tests/test_zh.py   (from the project root, with PYTHONPATH=.)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for name, data in _files(_report(Path(tmp), None)).items():
            print(f'    "{name}": "{hashlib.sha256(data).hexdigest()}",')
