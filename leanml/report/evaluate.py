"""The evaluate stage without MLflow: discover, score, rank, then write every output.

Rendering lives beside it: `figures` (PNG), `summary` (summary.md and the LaTeX tables),
`leaderboard` (ranking, fronts, headline numbers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leanml.discover import Candidate, Discovery
from leanml.io import atomic_write_bytes, write_csv, write_json, write_metrics
from leanml.report import figures, i18n, summary, uncertainty
from leanml.report.convergence import convergence_curves
from leanml.report.leaderboard import (
    COLUMNS,
    PARETO_COLUMNS,
    baseline_row,
    headline,
    pareto_rows,
    per_class_rows,
    relative,
)


@dataclass
class Outputs:
    """Where the evaluate stage writes (see `paths.evaluate`)."""

    leaderboard: Path
    pareto: Path
    per_class: Path
    confusion: Path
    metrics: Path
    summary: Path
    figures: Path
    tables: Path
    # the wall-clock headline values (latency, the latency front); None: all in metrics
    timings: Path | None = None
    written: list[Path] = field(default_factory=list)


def _front(row: dict) -> str:
    return " ".join(
        name for name, key in (("S", "pareto_size"), ("L", "pareto_latency")) if row[key]
    )


def write_all(
    scored: Sequence[tuple[Candidate, dict[str, Any]]],
    rows: list[dict[str, Any]],
    discovery: Discovery,
    out: Outputs,
    *,
    root: Path,
    reports_root: Path,
    size: str,
    within_pp: float,
    context: dict[str, Any],
    language: str = "en",
) -> dict[str, Any]:
    """Write every output; return the flat metrics (also written to `out.metrics`).

    `language` (`evaluate.language`) is that of the tables, summary.md and, when a font can draw
    them, the figure labels; CSV/JSON files and names are the same in every language.
    """
    for row in rows:
        row["front"] = _front(row)
        row["path"] = relative(row["path"], root)
    write_csv(out.leaderboard, rows, COLUMNS)
    front_rows = pareto_rows(rows)
    write_csv(out.pareto, front_rows, PARETO_COLUMNS)
    class_rows, class_columns = per_class_rows(scored, [r["name"] for r in rows])
    write_csv(out.per_class, class_rows, class_columns)
    matrices = {c.name: s["confusion"] for c, s in scored}
    write_json(out.confusion, {name: matrices[name] for name in (r["name"] for r in rows)})
    n_test = context.get("n_test")
    metrics = headline(rows, within_pp, n_test if isinstance(n_test, int) else None)
    if out.timings is None:
        write_json(out.metrics, metrics)
    else:
        write_metrics(out.metrics, out.timings, metrics)
        out.written.append(out.timings)
    out.written += [out.leaderboard, out.pareto, out.per_class, out.confusion, out.metrics]

    fig_paths = _write_figures(scored, rows, out.figures, reports_root, size, language)
    out.written += [p for _, p in fig_paths]

    # LaTeX: one leaderboard, one table per family
    out.tables.mkdir(parents=True, exist_ok=True)
    leaderboard_tex = out.tables / "leaderboard.tex"
    tex = summary.leaderboard_latex(rows, size, context.get("n_test", "?"), language)
    atomic_write_bytes(leaderboard_tex, tex.encode())
    family_tex: dict[str, Path] = {}
    for family in sorted({r["family"] for r in rows}):
        family_tex[family] = out.tables / f"{family}.tex"
        tex = summary.family_latex(rows, family, size, language)
        atomic_write_bytes(family_tex[family], tex.encode())
    out.written += [leaderboard_tex, *family_tex.values()]

    md = summary.markdown(
        rows,
        front_rows,
        metrics,
        discovery,
        out,
        fig_paths=fig_paths,
        family_tex=family_tex,
        size=size,
        within_pp=within_pp,
        context=context,
        best_classes=class_rows[0],
        language=language,
    )
    atomic_write_bytes(out.summary, md.encode())
    out.written.append(out.summary)
    return metrics


def _write_figures(
    scored: Sequence[tuple[Candidate, dict[str, Any]]],
    rows: Sequence[dict[str, Any]],
    folder: Path,
    reports_root: Path,
    size: str,
    language: str = "en",
) -> list[tuple[str, Path]]:
    """Pareto, confusion of the best, compression and convergence PNGs; (title, path) each.

    Chinese labels are drawn only with a font whose character map covers them all; without one
    the figures keep their English labels (a missing glyph would print as an empty box). The
    titles returned (Markdown alt text) are always in `language`.
    """
    import matplotlib

    font = i18n.cjk_font() if language == "zh" else None
    drawn = "zh" if font else "en"
    rc = {}
    if font:
        # CJK fonts often lack the Unicode minus sign: draw it as ASCII '-'
        sans = [font, *matplotlib.rcParams["font.sans-serif"]]
        rc = {"font.family": "sans-serif", "font.sans-serif": sans, "axes.unicode_minus": False}
    with matplotlib.rc_context(rc):
        return _draw_figures(scored, rows, folder, reports_root, size, language, drawn)


def _draw_figures(
    scored: Sequence[tuple[Candidate, dict[str, Any]]],
    rows: Sequence[dict[str, Any]],
    folder: Path,
    reports_root: Path,
    size: str,
    language: str,
    drawn: str,
) -> list[tuple[str, Path]]:
    """`_write_figures`' drawing; `drawn` is the language of the labels inside the PNGs."""
    fig_paths: list[tuple[str, Path]] = []
    pareto_png = folder / "pareto.png"
    figures.plot_pareto(rows, pareto_png, i18n.size_name(size, drawn), drawn)
    fig_paths.append((i18n.text("fig.pareto", language), pareto_png))
    best = rows[0]
    confusion = dict((c.name, s["confusion"]) for c, s in scored)[best["name"]]
    confusion_png = folder / "confusion_best.png"
    title = i18n.text("fig.confusion_title", drawn, best=best["name"])
    figures.plot_confusion(confusion, confusion_png, title, drawn)
    fig_paths.append((i18n.text("fig.confusion", language, best=best["name"]), confusion_png))
    compressed = [r for r in rows if r["family"] == "compress"]
    if compressed:
        compression_png = folder / "compression.png"
        figures.plot_compression(compressed, compression_png, baseline_row(rows), drawn)
        fig_paths.append((i18n.text("fig.compression", language), compression_png))
    for family in sorted({r["family"] for r in rows}):
        curves = convergence_curves(reports_root, family)
        if curves:
            png = folder / f"{family}_convergence.png"
            title = i18n.text("fig.convergence", drawn, family=i18n.family(family, drawn))
            figures.plot_convergence(curves, png, title, language=drawn)
            label = i18n.text("fig.convergence", language, family=i18n.family(family, language))
            fig_paths.append((label, png))
    return fig_paths


def outputs(paths) -> Outputs:
    """`Outputs` from `paths.load().evaluate`."""
    return Outputs(
        leaderboard=paths.leaderboard,
        pareto=paths.pareto,
        per_class=paths.per_class,
        confusion=paths.confusion,
        metrics=paths.metrics,
        summary=paths.summary,
        figures=paths.figures,
        tables=paths.tables,
        timings=paths.timings,
    )


def run(all_paths, cfg, on_warning=print) -> tuple[dict[str, Any], list[dict], Outputs]:
    """The whole stage without MLflow: discover, score on test, rank, write every output.

    `all_paths` is `paths.load()`, `cfg` the whole `Params`. Returns (metrics, rows, outputs).
    """
    import shutil

    from leanml import data
    from leanml.discover import discover
    from leanml.errors import LeanmlError
    from leanml.evaluate import score_all
    from leanml.report.leaderboard import build

    ev = cfg.evaluate
    where = all_paths.evaluate
    measure_cfg = ev.measure
    discovery = discover(where.models, where.reports, ev.families)
    for warning in discovery.warnings:
        on_warning(warning)
    if not discovery.candidates:
        raise LeanmlError(
            f"evaluate: no candidate models (.keras/.tflite) under {where.models}/"
            f"{'{' + ','.join(ev.families) + '}' if ev.families else '*'}; run the stages that "
            "write them first (`dvc repro`)"
        )
    splits = data.load_prepared(all_paths.prepare)

    def warn(message: str) -> None:
        discovery.warnings.append(message)
        on_warning(message)

    n_test = len(splits.test.y)
    if n_test < uncertainty.SMALL_TEST:
        warn(
            f"evaluate: the test split has {n_test} samples, so one sample is "
            f"{uncertainty.one_sample_pp(n_test):.2f} pp of accuracy: differences marked (n.s.) "
            "are within what it can tell apart; compare methods over seeds (make study)"
        )
    scored = score_all(discovery.candidates, splits.test, splits.n_classes, measure_cfg, warn)
    rows = build(scored, ev.size)
    if not any(r["family"] == "train" for r in rows):
        warn("evaluate: no baseline (models/train) was scored; deltas and ratios are left empty")
    out = outputs(where)
    for folder in (out.figures, out.tables):  # stale figures of a family no longer present
        shutil.rmtree(folder, ignore_errors=True)
    context = {
        "dataset": _dataset_name(all_paths),
        "n_test": n_test,
        "warmup": measure_cfg.warmup,
        "runs": measure_cfg.runs,
        "batch_size": measure_cfg.batch_size,
    }
    metrics = write_all(
        scored,
        rows,
        discovery,
        out,
        root=where.models.parent,
        reports_root=where.reports,
        size=ev.size,
        within_pp=ev.within_pp,
        context=context,
        language=ev.language,
    )
    return metrics, rows, out


def _dataset_name(all_paths) -> str:
    from leanml.io import read_json

    try:
        return str(read_json(all_paths.prepare.card)["dataset"])
    except (OSError, ValueError, KeyError):
        return "?"
