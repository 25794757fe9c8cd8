"""Write the evaluate stage's outputs: CSVs, metrics.json, figures, summary.md, LaTeX tables."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leanml import figures, tables
from leanml.discover import Candidate, Discovery
from leanml.io import atomic_write_bytes, write_csv, write_json, write_metrics
from leanml.leaderboard import (
    COLUMNS,
    PARETO_COLUMNS,
    baseline_row,
    headline,
    pareto_rows,
    per_class_rows,
    relative,
)
from leanml.tables import Column

SIZE_NAMES = {
    "artifact_bytes": "most compact real file",
    "file_bytes": "runnable model file",
    "gzip_bytes": "runnable model file, gzipped",
    "artifact_gzip_bytes": "most compact real file, gzipped",
}

LEADERBOARD_TABLE = [
    Column("rank", "#"),
    Column("name", "Model", "l"),
    Column("accuracy", "Acc. (%)", fmt=tables.pct),
    Column("delta_pp", "Δ (pp)", fmt=tables.pp),
    Column("macro_f1", "Macro-F1", fmt=lambda v: tables.number(v, 3)),
    Column("nonzero_params", "Non-zero params", fmt=tables.integer),
    Column("flops", "FLOPs", fmt=tables.integer),
    Column("size_bytes", "Size (KiB)", fmt=tables.kib),
    Column("compression_ratio", "Ratio", fmt=tables.ratio),
    Column("latency_ms_p50", "p50 (ms)", fmt=tables.ms),
    Column("front", "Front", "l"),
]
FAMILY_TABLE = [
    Column("method", "Method", "l"),
    Column("variant", "Variant", "l"),
    Column("accuracy", "Acc. (%)", fmt=tables.pct),
    Column("delta_pp", "Δ (pp)", fmt=tables.pp),
    Column("macro_f1", "Macro-F1", fmt=lambda v: tables.number(v, 3)),
    Column("nonzero_params", "Non-zero params", fmt=tables.integer),
    Column("size_bytes", "Size (KiB)", fmt=tables.kib),
    Column("compression_ratio", "Ratio", fmt=tables.ratio),
    Column("latency_ms_p50", "p50 (ms)", fmt=tables.ms),
    Column("latency_ms_p95", "p95 (ms)", fmt=tables.ms),
    Column("throughput_per_s", "Samples/s", fmt=tables.integer),
]
HEADLINE_TABLE = [
    Column("what", "", "l"),
    Column("name", "Model", "l"),
    Column("accuracy", "Acc. (%)", fmt=tables.pct),
    Column("delta_pp", "Δ (pp)", fmt=tables.pp),
    Column("bytes", "Size (KiB)", fmt=tables.kib),
    Column("compression_ratio", "Ratio", fmt=tables.ratio),
    Column("latency_ms_p50", "p50 (ms)", fmt=tables.ms),
]


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


def convergence_curves(reports_root: Path, family: str) -> dict[str, list[dict]]:
    """`reports/<family>/<method>/convergence.csv` of every method, as evaluation/best_score."""
    curves = {}
    folder = reports_root / family
    for path in sorted(folder.glob("*/convergence.csv")):
        try:
            with open(path, newline="") as handle:
                raw = list(csv.DictReader(handle))
        except (OSError, csv.Error):
            continue
        if not raw:
            continue
        cols = list(raw[0])
        x = "evaluation" if "evaluation" in cols else cols[0]
        y = "best_score" if "best_score" in cols else cols[min(1, len(cols) - 1)]
        try:
            curves[path.parent.name] = [
                {"evaluation": int(float(r[x])), "best_score": float(r[y])} for r in raw
            ]
        except (TypeError, ValueError):
            continue
    return curves


def _headline_rows(metrics: dict[str, Any], within_pp: float) -> list[dict]:
    labels = [
        ("baseline", "baseline"),
        ("best", "best accuracy"),
        ("smallest_within_pp", f"smallest within {within_pp:g} pp of baseline"),
    ]
    families = sorted({k.split(".")[1] for k in metrics if k.startswith("by_family.")})
    labels += [(f"by_family.{f}", f"best of {f}") for f in families if f != "train"]
    rows = []
    for prefix, what in labels:
        if f"{prefix}.name" in metrics:
            keys = ("name", "accuracy", "delta_pp", "bytes", "compression_ratio", "latency_ms_p50")
            rows.append({"what": what, **{k: metrics[f"{prefix}.{k}"] for k in keys}})
    return rows


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
) -> dict[str, Any]:
    """Write every output; return the flat metrics (also written to `out.metrics`)."""
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
    metrics = headline(rows, within_pp)
    if out.timings is None:
        write_json(out.metrics, metrics)
    else:
        write_metrics(out.metrics, out.timings, metrics)
        out.written.append(out.timings)
    out.written += [out.leaderboard, out.pareto, out.per_class, out.confusion, out.metrics]

    # figures
    size_label = SIZE_NAMES[size]
    base = baseline_row(rows)
    fig_paths: list[tuple[str, Path]] = []
    pareto_png = out.figures / "pareto.png"
    figures.plot_pareto(rows, pareto_png, size_label)
    fig_paths.append(("Pareto fronts: test accuracy vs size and vs latency", pareto_png))
    best = rows[0]
    confusion = dict((c.name, s["confusion"]) for c, s in scored)[best["name"]]
    confusion_png = out.figures / "confusion_best.png"
    figures.plot_confusion(confusion, confusion_png, f"{best['name']} (test split)")
    fig_paths.append((f"Confusion matrix of the best model, {best['name']}", confusion_png))
    compressed = [r for r in rows if r["family"] == "compress"]
    if compressed:
        compression_png = out.figures / "compression.png"
        figures.plot_compression(compressed, compression_png, base)
        fig_paths.append(("Compression: test accuracy vs each method's setting", compression_png))
    from leanml.report import plot_convergence

    for family in sorted({r["family"] for r in rows}):
        curves = convergence_curves(reports_root, family)
        if curves:
            png = out.figures / f"{family}_convergence.png"
            plot_convergence(curves, png, f"{family}: best score so far (validation)")
            fig_paths.append((f"{family}: convergence of every method (validation score)", png))
    out.written += [p for _, p in fig_paths]

    # LaTeX: one leaderboard, one table per family
    out.tables.mkdir(parents=True, exist_ok=True)
    note = (
        f"Test split ({context.get('n_test', '?')} samples). Size: {size_label}. "
        f"Ratio: baseline size / size. Front: S = on the accuracy-size Pareto front, "
        "L = on the accuracy-latency front."
    )
    tex = tables.latex(
        rows,
        LEADERBOARD_TABLE,
        "Every candidate model on the test split, by accuracy",
        "tab:leanml-leaderboard",
        note=note,
    )
    leaderboard_tex = out.tables / "leaderboard.tex"
    atomic_write_bytes(leaderboard_tex, tex.encode())
    family_tex: dict[str, Path] = {}
    for family in sorted({r["family"] for r in rows}):
        members = sorted(
            (r for r in rows if r["family"] == family),
            key=lambda r: (r["method"], -r["accuracy"], r["size_bytes"], r["name"]),
        )
        groups = [
            i for i in range(1, len(members)) if members[i]["method"] != members[i - 1]["method"]
        ]
        tex = tables.latex(
            members,
            FAMILY_TABLE,
            f"{family}: candidates on the test split",
            f"tab:leanml-{family}",
            groups=groups,
            note=f"Size: {size_label}. Δ and ratio relative to the baseline.",
        )
        family_tex[family] = out.tables / f"{family}.tex"
        atomic_write_bytes(family_tex[family], tex.encode())
    out.written += [leaderboard_tex, *family_tex.values()]

    # summary.md
    md = _summary_md(
        rows,
        front_rows,
        metrics,
        discovery,
        out,
        fig_paths,
        family_tex,
        size,
        within_pp,
        context,
        class_rows[0],
    )
    atomic_write_bytes(out.summary, md.encode())
    out.written.append(out.summary)
    return metrics


def _summary_md(
    rows,
    front_rows,
    metrics,
    discovery,
    out,
    fig_paths,
    family_tex,
    size,
    within_pp,
    context,
    best_classes,
) -> str:
    here = out.summary.parent

    def link(path: Path) -> str:
        return relative(path, here)

    parts = [
        "# Evaluation: every candidate on the test split\n",
        f"Dataset `{context.get('dataset', '?')}`, test split of {context.get('n_test', '?')} "
        f"samples (never used to select anything upstream), {len(rows)} candidates. "
        f"Size = {SIZE_NAMES[size]} (`{size}`); ratio = baseline size / size. Latency: CPU, "
        f"batch 1, after {context.get('warmup', '?')} warm-up calls, p50/p95 of "
        f"{context.get('runs', '?')} calls; throughput at batch "
        f"{context.get('batch_size', '?')}.\n",
        "## Headline\n",
        tables.markdown(_headline_rows(metrics, within_pp), HEADLINE_TABLE),
        "## Leaderboard\n",
        "Front: S = on the accuracy-vs-size Pareto front, L = on the accuracy-vs-latency front.\n",
        tables.markdown(rows, LEADERBOARD_TABLE),
        "## Pareto fronts\n",
        tables.markdown(
            front_rows,
            [
                Column("front", "Front", "l"),
                Column("order", "#"),
                Column("name", "Model", "l"),
                Column("accuracy", "Acc. (%)", fmt=tables.pct),
                Column("cost_metric", "Cost", "l"),
                Column("cost", "Value", fmt=tables.number),
            ],
        ),
        "## Figures\n",
        *(f"![{title}]({link(path)})\n" for title, path in fig_paths),
        "## Per family\n",
    ]
    for family, tex in family_tex.items():
        members = sorted(
            (r for r in rows if r["family"] == family),
            key=lambda r: (r["method"], -r["accuracy"], r["size_bytes"], r["name"]),
        )
        parts += [
            f"### {family}\n",
            tables.markdown(members, FAMILY_TABLE),
            f"LaTeX: [`{link(tex)}`]({link(tex)})\n",
        ]
    best = rows[0]
    parts += [
        "## Per-class accuracy of the best model\n",
        f"`{best['name']}`; every candidate's per-class accuracy is in "
        f"[`{link(out.per_class)}`]({link(out.per_class)}), its confusion matrix in "
        f"[`{link(out.confusion)}`]({link(out.confusion)}).\n",
        tables.markdown(
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
            "## Files reported by size only\n",
            "Encodings that are not runnable models and have no runnable twin (not scored).\n",
            tables.markdown(
                discovery.size_only,
                [
                    Column("file", "File", "l"),
                    Column("file_bytes", "Bytes", fmt=tables.integer),
                    Column("gzip_bytes", "Gzip bytes", fmt=tables.integer),
                ],
            ),
        ]
    if discovery.warnings:
        parts += ["## Warnings\n", *(f"- {w}\n" for w in discovery.warnings)]
    parts += [
        "## Files\n",
        f"- Leaderboard: [`{link(out.leaderboard)}`]({link(out.leaderboard)}); Pareto fronts: "
        f"[`{link(out.pareto)}`]({link(out.pareto)}); headline numbers: "
        f"[`{link(out.metrics)}`]({link(out.metrics)}).\n",
        f"- LaTeX (booktabs): `{link(out.tables)}/` — paste with `\\input{{...}}`; the preamble "
        "needs `\\usepackage{booktabs}`.\n",
    ]
    return "\n".join(parts)


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
    from leanml.leaderboard import build

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

    scored = score_all(discovery.candidates, splits.test, splits.n_classes, measure_cfg, warn)
    rows = build(scored, ev.size)
    if not any(r["family"] == "train" for r in rows):
        warn("evaluate: no baseline (models/train) was scored; deltas and ratios are left empty")
    out = outputs(where)
    for folder in (out.figures, out.tables):  # stale figures of a family no longer present
        shutil.rmtree(folder, ignore_errors=True)
    context = {
        "dataset": _dataset_name(all_paths),
        "n_test": len(splits.test.y),
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
    )
    return metrics, rows, out


def _dataset_name(all_paths) -> str:
    from leanml.io import read_json

    try:
        return str(read_json(all_paths.prepare.card)["dataset"])
    except (OSError, ValueError, KeyError):
        return "?"
