"""The words of the reports in each language (`evaluate.language`): table headers, captions, notes
and the Markdown summary's prose; and the one check for a font that can draw Chinese labels.

English is the reference: every English string here is the exact text the reports wrote before
languages existed (tests/test_zh.py compares the English output with those bytes). Numbers,
model names, metric keys and file names are never translated, so a Chinese table and its CSV
line up cell for cell.
"""

from __future__ import annotations

import dataclasses
import functools
import string
from collections.abc import Sequence

from leanml.report.tables import Column

LANGUAGES = ("en", "zh")

# Column headers, English → Chinese. Units stay as symbols (%, ms, KiB) so a thesis can restyle
# them; "pp" (percentage points) becomes 百分点.
HEADERS_ZH = {
    "#": "排名",
    "Model": "模型",
    "Acc. (%)": "准确率 (%)",
    "Δ (pp)": "Δ (百分点)",
    "95% CI (%)": "95% 置信区间 (%)",
    "McNemar p": "McNemar p",
    "Macro-F1": "宏平均 F1",
    "Non-zero params": "非零参数量",
    "FLOPs": "FLOPs",
    "Size (KiB)": "大小 (KiB)",
    "Ratio": "压缩率",
    "p50 (ms)": "延迟 p50 (ms)",
    "p95 (ms)": "延迟 p95 (ms)",
    "Front": "前沿",
    "Method": "方法",
    "Variant": "变体",
    "Samples/s": "吞吐量 (样本/s)",
    "Cost": "代价指标",
    "Value": "代价",
    "Class": "类别",
    "File": "文件",
    "Bytes": "字节数",
    "Gzip bytes": "gzip 字节数",
    "": "",
    # the multi-seed study's tables (leanml/study.py)
    "Family": "类型",
    "Metric": "指标",
    "Seeds": "种子数",
    "Mean ± std": "均值 ± 标准差",
    "A": "A",
    "B": "B",
    "A wins": "A 胜",
    "B wins": "B 胜",
    "W": "W",
    "p": "p",
    "p (Holm)": "p (Holm 校正)",
}

# The candidate families (stage folders) as a thesis names them; unknown ones stay as they are.
FAMILIES_ZH = {
    "train": "基线模型",
    "compress": "模型压缩",
    "search": "超参数搜索",
    "nas": "神经架构搜索",
}

SIZE_NAMES = {
    "en": {
        "artifact_bytes": "most compact real file",
        "file_bytes": "runnable model file",
        "gzip_bytes": "runnable model file, gzipped",
        "artifact_gzip_bytes": "most compact real file, gzipped",
    },
    "zh": {
        "artifact_bytes": "最紧凑的实际文件",
        "file_bytes": "可运行的模型文件",
        "gzip_bytes": "可运行的模型文件（gzip 压缩后）",
        "artifact_gzip_bytes": "最紧凑的实际文件（gzip 压缩后）",
    },
}

# Captions, notes and prose; `{name}` fields are filled by `text()`.
TEXT = {
    "en": {
        "study.caption": "Mean ± std over {n} seeds (accuracy in %, size in bytes, latency in ms)",
        "study.tests.caption": "Paired two-sided Wilcoxon signed-rank tests between methods "
        "(seeds are the pairs)",
        "study.tests.note": "p (Holm): Holm-corrected within each family and metric.",
        "study.md.mean": "## Mean ± std per method\n",
        "study.md.tests": "## Paired Wilcoxon signed-rank tests\n",
        "leaderboard.caption": "Every candidate model on the test split, by accuracy",
        "leaderboard.note": "Test split ({n_test} samples). Size: {size}. "
        "Ratio: the baseline's float32 weight bytes (4 × parameters) / size. "
        "95% CI: Wilson interval. (n.s.): not significantly "
        "different from the baseline (exact McNemar test on the same test samples, Holm-adjusted "
        "p ≥ 0.05). Latency: {runtime}. Front: S = on the accuracy-size Pareto front, "
        "L = on the accuracy-latency front.",
        "family.caption": "{family}: candidates on the test split",
        "family.note": "Size: {size}. Δ relative to the baseline; ratio: the baseline's float32 "
        "weight bytes (4 × parameters) / size; (n.s.): not "
        "significantly different from it (McNemar, Holm-adjusted p ≥ 0.05). Latency: {runtime}.",
        "head.baseline": "baseline",
        "head.best": "best accuracy",
        "head.best_ns": "best accuracy, not distinguishable from the baseline",
        "head.smallest": "smallest within {within:g} pp of baseline",
        "head.family": "best of {family}",
        "md.title": "# Evaluation: every candidate on the test split\n",
        "md.intro": "Dataset `{dataset}`, test split of {n_test} samples (never used to select "
        "anything upstream), {n} candidates. Size = {size} (`{size_key}`); ratio = the baseline's "
        "float32 weight bytes (4 × parameters, Han et al.'s basis) / size (leaderboard.csv adds "
        "`ratio_tflite`, against its float32 TFLite file, and `compression_ratio`, against its "
        "`.keras` file). Accuracy with its 95% Wilson interval; Δ marked (n.s.) is not "
        "significantly "
        "different from the baseline (exact McNemar test on the same test samples, Holm-adjusted "
        "over the candidates, p ≥ 0.05). Latency: every candidate in one runtime, {runtime} "
        "(Keras models as their float32 TFLite export, k-bit variants as the float model they "
        "decode to; the Keras-call p50 is the leaderboard's `keras_latency_ms_p50`), CPU, "
        "batch 1, after {warmup} warm-up calls, p50/p95 of {runs} calls; throughput at batch "
        "{batch_size}.\n",
        "md.headline": "## Headline\n",
        "md.leaderboard": "## Leaderboard\n",
        "md.front": "Front: S = on the accuracy-vs-size Pareto front, L = on the "
        "accuracy-vs-latency front.\n",
        "md.pareto": "## Pareto fronts\n",
        "md.figures": "## Figures\n",
        "md.per_family": "## Per family\n",
        "md.family": "### {family}\n",
        "md.per_class": "## Per-class accuracy of the best model\n",
        "md.per_class_text": "`{best}`; every candidate's per-class accuracy is in {per_class}, "
        "its confusion matrix in {confusion}.\n",
        "md.size_only": "## Files reported by size only\n",
        "md.size_only_text": "Encodings that are not runnable models and have no runnable twin "
        "(not scored).\n",
        "md.warnings": "## Warnings\n",
        "md.files": "## Files\n",
        "md.files_csv": "- Leaderboard: {leaderboard}; Pareto fronts: {pareto}; headline "
        "numbers: {metrics}.\n",
        "md.files_tex": "- LaTeX (booktabs): `{tables}/` — paste with `\\input{{...}}`; the "
        "preamble needs `\\usepackage{{booktabs}}`.\n",
        "fig.pareto": "Pareto fronts: test accuracy vs size and vs latency",
        "fig.confusion": "Confusion matrix of the best model, {best}",
        "fig.confusion_title": "{best} (test split)",
        "fig.compression": "Compression: test accuracy vs each method's setting",
        "fig.convergence": "{family}: convergence of every method (validation score)",
    },
    "zh": {
        "study.caption": "{n} 个随机种子上的均值 ± 标准差"
        "（准确率单位 %，大小单位字节，延迟单位 ms）",
        "study.tests.caption": "方法间的配对双侧 Wilcoxon 符号秩检验（以种子配对）",
        "study.tests.note": "p (Holm 校正)：在每个类型与指标内做 Holm 多重比较校正。",
        "study.md.mean": "## 各方法的均值 ± 标准差\n",
        "study.md.tests": "## 配对 Wilcoxon 符号秩检验\n",
        "leaderboard.caption": "全部候选模型在测试集上的结果（按准确率排序）",
        "leaderboard.note": "测试集共 {n_test} 个样本。大小：{size}。"
        "压缩率：基线模型 float32 权重字节数（4 × 参数量）/ "
        "模型大小。95% 置信区间：Wilson 区间。(n.s.)：与基线模型无显著差异（同一批测试样本上的"
        "精确 McNemar 检验，Holm 校正后 p ≥ 0.05）。延迟：{runtime}。"
        "前沿：S 表示位于准确率–大小帕累托前沿，L 表示位于准确率–延迟帕累托前沿。",
        "family.caption": "{family}：候选模型在测试集上的结果",
        "family.note": "大小：{size}。Δ 相对于基线模型；"
        "压缩率 = 基线模型 float32 权重字节数（4 × 参数量）/ 模型大小；"
        "(n.s.)：与基线模型无显著差异"
        "（McNemar 检验，Holm 校正后 p ≥ 0.05）。延迟：{runtime}。",
        "head.baseline": "基线模型",
        "head.best": "准确率最高",
        "head.best_ns": "准确率最高（与基线模型无显著差异）",
        "head.smallest": "与基线相差不超过 {within:g} 个百分点的最小模型",
        "head.family": "{family}最佳",
        "md.title": "# 评估：全部候选模型在测试集上的结果\n",
        "md.intro": "数据集 `{dataset}`，测试集 {n_test} 个样本（上游任何阶段都不用它做选择），"
        "共 {n} 个候选模型。大小 = {size}（`{size_key}`）；"
        "压缩率 = 基线模型 float32 权重字节数（4 × 参数量，Han 等人的口径）/ 模型大小"
        "（leaderboard.csv 另有相对 float32 TFLite 文件的 `ratio_tflite` 和相对 `.keras` 文件的 "
        "`compression_ratio`）。"
        "准确率附 95% Wilson 置信区间；Δ 标 (n.s.) 表示与基线模型无显著差异（同一批测试样本上的"
        "精确 McNemar 检验，对全部候选模型做 Holm 校正，p ≥ 0.05）。"
        "延迟：全部候选模型在同一运行时 {runtime} 中测得（Keras 模型先导出为 float32 TFLite，"
        "k 比特变体按其解码后的浮点模型计时；Keras 调用的 p50 见排行榜的 "
        "`keras_latency_ms_p50` 列），"
        "CPU、批大小 1，先预热 {warmup} 次，再取 {runs} 次调用的 p50/p95；"
        "吞吐量的批大小为 {batch_size}。\n",
        "md.headline": "## 要点\n",
        "md.leaderboard": "## 排行榜\n",
        "md.front": "前沿：S 表示位于准确率–大小帕累托前沿，L 表示位于准确率–延迟帕累托前沿。\n",
        "md.pareto": "## 帕累托前沿\n",
        "md.figures": "## 图\n",
        "md.per_family": "## 分组结果\n",
        "md.family": "### {family}\n",
        "md.per_class": "## 最佳模型的各类别准确率\n",
        "md.per_class_text": "`{best}`；每个候选模型的各类别准确率见 {per_class}，"
        "混淆矩阵见 {confusion}。\n",
        "md.size_only": "## 仅报告大小的文件\n",
        "md.size_only_text": "这些编码文件不是可运行的模型，也没有同名的可运行文件（未评分）。\n",
        "md.warnings": "## 警告\n",
        "md.files": "## 文件\n",
        "md.files_csv": "- 排行榜：{leaderboard}；帕累托前沿：{pareto}；要点数值：{metrics}。\n",
        "md.files_tex": "- LaTeX 表格（booktabs）：`{tables}/`，用 `\\input{{...}}` 插入；"
        "导言区需要 `\\usepackage{{booktabs}}`，并使用 ctex 文档类（或 `\\usepackage{{ctex}}`），"
        "以 xelatex 编译。\n",
        "fig.pareto": "帕累托前沿：测试准确率与大小、与延迟",
        "fig.confusion": "最佳模型 {best} 的混淆矩阵",
        "fig.confusion_title": "{best}（测试集）",
        "fig.compression": "模型压缩：测试准确率与各方法的设置",
        "fig.convergence": "{family}：各方法的收敛曲线（验证集得分）",
    },
}

# Figure labels drawn by leanml.report.figures, English → Chinese; only used when a font that
# covers every character is found (`cjk_font`), otherwise the figures keep their English labels.
FIGURE_ZH = {
    "test accuracy (%)": "测试准确率 (%)",
    "Pareto front": "帕累托前沿",
    "size on disk (bytes, {size})": "磁盘大小（字节，{size}）",
    "accuracy vs size": "准确率与大小",
    "CPU latency, batch 1, p50 (ms)": "CPU 延迟，批大小 1，p50 (ms)",
    "accuracy vs latency": "准确率与延迟",
    "baseline": "基线模型",
    "size on disk (bytes)": "磁盘大小（字节）",
    "all methods: accuracy vs size": "全部方法：准确率与大小",
    "predicted class": "预测类别",
    "true class": "真实类别",
    "CPU latency, batch 1, p50 (ms, {runtime})": "CPU 延迟，批大小 1，p50 (ms，{runtime})",
    "{n} below {edge:.1f}% (on the edge)": "{n} 个低于 {edge:.1f}%（画在边缘）",
    "evaluations (models trained)": "评估次数（训练的模型数）",
    "training epochs spent": "训练轮数（累计）",
    "best score so far": "目前最佳得分",
}


def check(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"report language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    return language


def text(key: str, language: str = "en", **fields) -> str:
    """One caption, note or sentence in `language`, its `{fields}` filled in."""
    template = TEXT[check(language)][key]
    return template.format(**fields) if fields else template


def header(english: str, language: str = "en") -> str:
    """A column header in `language` (an unknown header stays English rather than vanish)."""
    return HEADERS_ZH.get(english, english) if check(language) == "zh" else english


def columns(cols: Sequence[Column], language: str = "en") -> list[Column]:
    """`cols` with their headers in `language`; keys and formats (hence every cell) unchanged."""
    return [dataclasses.replace(c, header=header(c.header, language)) for c in cols]


def family(name: str, language: str = "en") -> str:
    """A family (stage folder) as the reader knows it: 模型压缩 (compress) in Chinese."""
    if check(language) == "zh" and name in FAMILIES_ZH:
        return f"{FAMILIES_ZH[name]}（{name}）"
    return name


def size_name(size: str, language: str = "en") -> str:
    return SIZE_NAMES[check(language)][size]


def figure_label(english: str, language: str = "en", **fields) -> str:
    """A figure label in `language` (the caller has checked that a font can draw it)."""
    template = FIGURE_ZH.get(english, english) if check(language) == "zh" else english
    return template.format(**fields) if fields else template


@functools.lru_cache(maxsize=8)
def font_covering(sample: str) -> str | None:
    """The family name of an installed matplotlib font with a glyph of its own for every
    character of `sample`, or None.

    Read from each font file's character map, not guessed from its name. A font that maps many
    characters to one shared glyph (matplotlib's bundled "Last Resort" font draws every CJK
    character as the same placeholder box) does not count: the characters must have distinct
    glyphs, so a label drawn with the font never shows "tofu".
    """
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    needed = sorted({ord(ch) for ch in sample if not ch.isspace()})
    # sorted: the same font is picked on every run (the font list's order is not guaranteed)
    for entry in sorted(font_manager.fontManager.ttflist, key=lambda f: (f.name, f.fname)):
        try:
            charmap = FT2Font(entry.fname).get_charmap()
        except (OSError, RuntimeError, ValueError):
            continue  # unreadable font file: skip it, never fail a report over a font
        glyphs = [charmap.get(code, 0) for code in needed]
        if all(glyphs) and len(set(glyphs)) == len(glyphs):
            return entry.name
    return None


def figure_text() -> str:
    """Every Chinese character a figure may draw: its labels, titles and the size names."""
    labels = [
        *FIGURE_ZH.values(),
        *(v for k, v in TEXT["zh"].items() if k.startswith("fig.")),
        *SIZE_NAMES["zh"].values(),  # in the Pareto figure's size axis label
    ]
    return "".join(sorted(set("".join(labels)) - set(string.printable)))


def cjk_font() -> str | None:
    """A font that draws every Chinese figure label, or None (then figures stay English)."""
    return font_covering(figure_text())
