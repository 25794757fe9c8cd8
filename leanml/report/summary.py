"""The evaluate report's text: table layouts, the Markdown summary and the LaTeX tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leanml.discover import Discovery
from leanml.glossary import metric_name
from leanml.report import i18n, tables
from leanml.report.leaderboard import relative
from leanml.report.tables import Column

# The tables' layouts, with English headers; `i18n.columns` gives them in another language.
LEADERBOARD_TABLE = [
    Column("rank", "#"),
    Column("name", "Model", "l"),
    Column("accuracy", "Acc. (%)", fmt=tables.pct),
    Column("ci", "95% CI (%)"),
    Column("delta_shown", "Δ (pp)"),
    Column("macro_f1", "Macro-F1", fmt=lambda v: tables.number(v, 3)),
    Column("nonzero_params", "Non-zero params", fmt=tables.integer),
    Column("flops", "FLOPs", fmt=tables.integer),
    Column("size_bytes", "Size (KiB)", fmt=tables.kib),
    Column("ratio_weights", "Ratio", fmt=tables.ratio),
    Column("latency_ms_p50", "p50 (ms)", fmt=tables.ms),
    Column("front", "Front", "l"),
]
FAMILY_TABLE = [
    Column("method", "Method", "l"),
    Column("variant", "Variant", "l"),
    Column("accuracy", "Acc. (%)", fmt=tables.pct),
    Column("ci", "95% CI (%)"),
    Column("delta_shown", "Δ (pp)"),
    Column("macro_f1", "Macro-F1", fmt=lambda v: tables.number(v, 3)),
    Column("nonzero_params", "Non-zero params", fmt=tables.integer),
    Column("size_bytes", "Size (KiB)", fmt=tables.kib),
    Column("ratio_weights", "Ratio", fmt=tables.ratio),
    Column("latency_ms_p50", "p50 (ms)", fmt=tables.ms),
    Column("latency_ms_p95", "p95 (ms)", fmt=tables.ms),
    Column("throughput_per_s", "Samples/s", fmt=tables.integer),
]
HEADLINE_TABLE = [
    Column("what", "", "l"),
    Column("name", "Model", "l"),
    Column("accuracy", "Acc. (%)", fmt=tables.pct),
    Column("ci", "95% CI (%)"),
    Column("delta_pp", "Δ (pp)", fmt=tables.pp),
    Column("mcnemar_p", "McNemar p", fmt=lambda v: tables.number(v, 2)),
    Column("bytes", "Size (KiB)", fmt=tables.kib),
    Column("ratio_weights", "Ratio", fmt=tables.ratio),
    Column("latency_ms_p50", "p50 (ms)", fmt=tables.ms),
]
PARETO_TABLE = [
    Column("front", "Front", "l"),
    Column("order", "#"),
    Column("name", "Model", "l"),
    Column("accuracy", "Acc. (%)", fmt=tables.pct),
    Column("cost_metric", "Cost", "l"),
    Column("cost", "Value", fmt=tables.number),
]


def ci_text(low: Any, high: Any) -> str:
    """A 95% interval of an accuracy, in percent: '96.3–99.3'."""
    if tables.pct(low) == "–" or tables.pct(high) == "–":
        return "–"
    return f"{100 * float(low):.1f}–{100 * float(high):.1f}"


def shown(rows: Sequence[dict]) -> list[dict]:
    """Rows with their display-only cells: the interval, and Δ marked (n.s.) when the McNemar
    test (Holm-adjusted) cannot tell the candidate from the baseline."""
    out = []
    for row in rows:
        delta = tables.pp(row.get("delta_pp"))
        mark = " (n.s.)" if row.get("significant") is False else ""
        ci = ci_text(row.get("accuracy_ci_low"), row.get("accuracy_ci_high"))
        out.append({**row, "ci": ci, "delta_shown": delta + mark})
    return out


def headline_rows(metrics: dict[str, Any], within_pp: float, language: str = "en") -> list[dict]:
    """The headline models (baseline, best, smallest within, best of each family) as rows; the
    best's label says when the test split cannot tell it from the baseline."""
    best = "head.best_ns" if metrics.get("best.significant") == 0 else "head.best"
    labels = [
        ("baseline", i18n.text("head.baseline", language)),
        ("best", i18n.text(best, language)),
        ("smallest_within_pp", i18n.text("head.smallest", language, within=within_pp)),
    ]
    families = sorted({k.split(".")[1] for k in metrics if k.startswith("by_family.")})
    labels += [
        (f"by_family.{f}", i18n.text("head.family", language, family=i18n.family(f, language)))
        for f in families
        if f != "train"
    ]
    rows = []
    for prefix, what in labels:
        if f"{prefix}.name" in metrics:
            keys = ("name", "accuracy", "delta_pp", "mcnemar_p", "bytes", "ratio_weights")
            row = {"what": what, **{k: metrics.get(f"{prefix}.{metric_name(k)}") for k in keys}}
            row["ci"] = ci_text(
                metrics.get(f"{prefix}.test_accuracy_ci_low"),
                metrics.get(f"{prefix}.test_accuracy_ci_high"),
            )
            row["latency_ms_p50"] = metrics.get(f"{prefix}.latency_ms_p50")
            rows.append(row)
    return rows


def family_members(rows: Sequence[dict], family: str) -> list[dict]:
    """The rows of one family, grouped by method, best first within each."""
    return sorted(
        (r for r in rows if r["family"] == family),
        key=lambda r: (r["method"], -r["accuracy"], r["size_bytes"], r["name"]),
    )


def runtime(rows: Sequence[dict]) -> str:
    """The latency runtime every row was timed in (`latency_runtime`)."""
    return next((str(r["latency_runtime"]) for r in rows if r.get("latency_runtime")), "?")


def leaderboard_latex(rows: Sequence[dict], size: str, n_test: Any, language: str = "en") -> str:
    """The leaderboard as a LaTeX (booktabs) table."""
    note = i18n.text(
        "leaderboard.note",
        language,
        n_test=n_test,
        size=i18n.size_name(size, language),
        runtime=runtime(rows),
    )
    return tables.latex(
        shown(rows),
        i18n.columns(LEADERBOARD_TABLE, language),
        i18n.text("leaderboard.caption", language),
        "tab:leanml-leaderboard",
        note=note,
        language=language,
    )


def family_latex(rows: Sequence[dict], family: str, size: str, language: str = "en") -> str:
    """One family's candidates as a LaTeX (booktabs) table, a rule between methods."""
    members = shown(family_members(rows, family))
    groups = [i for i in range(1, len(members)) if members[i]["method"] != members[i - 1]["method"]]
    return tables.latex(
        members,
        i18n.columns(FAMILY_TABLE, language),
        i18n.text("family.caption", language, family=i18n.family(family, language)),
        f"tab:leanml-{family}",
        groups=groups,
        note=i18n.text(
            "family.note", language, size=i18n.size_name(size, language), runtime=runtime(rows)
        ),
        language=language,
    )


def markdown(
    rows: Sequence[dict],
    front_rows: Sequence[dict],
    metrics: dict[str, Any],
    discovery: Discovery,
    out: Any,
    *,
    fig_paths: Sequence[tuple[str, Path]],
    family_tex: dict[str, Path],
    size: str,
    within_pp: float,
    context: dict[str, Any],
    best_classes: dict[str, Any],
    language: str = "en",
) -> str:
    """summary.md: headline, leaderboard, fronts, figures, per family, per class, files.

    `out` is the stage's `Outputs` (links are relative to `out.summary`'s folder).
    """
    here = out.summary.parent
    lang = language

    def link(path: Path) -> str:
        return relative(path, here)

    def file_link(path: Path) -> str:
        return f"[`{link(path)}`]({link(path)})"

    def table(table_rows: Sequence[dict], cols: Sequence[Column]) -> str:
        return tables.markdown(table_rows, i18n.columns(cols, lang))

    intro = i18n.text(
        "md.intro",
        lang,
        dataset=context.get("dataset", "?"),
        n_test=context.get("n_test", "?"),
        n=len(rows),
        size=i18n.size_name(size, lang),
        size_key=size,
        warmup=context.get("warmup", "?"),
        runs=context.get("runs", "?"),
        batch_size=context.get("batch_size", "?"),
        runtime=runtime(rows),
    )
    parts = [
        i18n.text("md.title", lang),
        intro,
        i18n.text("md.headline", lang),
        table(headline_rows(metrics, within_pp, lang), HEADLINE_TABLE),
        i18n.text("md.leaderboard", lang),
        i18n.text("md.front", lang),
        table(shown(rows), LEADERBOARD_TABLE),
        i18n.text("md.pareto", lang),
        table(front_rows, PARETO_TABLE),
        i18n.text("md.figures", lang),
        *(f"![{title}]({link(path)})\n" for title, path in fig_paths),
        i18n.text("md.per_family", lang),
    ]
    for family, tex in family_tex.items():
        parts += [
            i18n.text("md.family", lang, family=i18n.family(family, lang)),
            table(shown(family_members(rows, family)), FAMILY_TABLE),
            f"LaTeX: {file_link(tex)}\n",
        ]
    best = rows[0]
    parts += [
        i18n.text("md.per_class", lang),
        i18n.text(
            "md.per_class_text",
            lang,
            best=best["name"],
            per_class=file_link(out.per_class),
            confusion=file_link(out.confusion),
        ),
        table(
            [
                {"class": k.removeprefix("class_"), "acc": v}
                for k, v in best_classes.items()
                if k != "name"
            ],
            [Column("class", "Class"), Column("acc", "Acc. (%)", fmt=tables.pct)],
        ),
    ]
    if discovery.size_only:
        parts += [
            i18n.text("md.size_only", lang),
            i18n.text("md.size_only_text", lang),
            table(
                discovery.size_only,
                [
                    Column("file", "File", "l"),
                    Column("file_bytes", "Bytes", fmt=tables.integer),
                    Column("gzip_bytes", "Gzip bytes", fmt=tables.integer),
                ],
            ),
        ]
    if discovery.warnings:
        # warnings are the stage's own (English) messages, as on stderr
        parts += [i18n.text("md.warnings", lang), *(f"- {w}\n" for w in discovery.warnings)]
    parts += [
        i18n.text("md.files", lang),
        i18n.text(
            "md.files_csv",
            lang,
            leaderboard=file_link(out.leaderboard),
            pareto=file_link(out.pareto),
            metrics=file_link(out.metrics),
        ),
        i18n.text("md.files_tex", lang, tables=link(out.tables)),
    ]
    return "\n".join(parts)
