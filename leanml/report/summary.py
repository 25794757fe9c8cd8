"""The evaluate report's text: table layouts, the Markdown summary and the LaTeX tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leanml.discover import Discovery
from leanml.report import tables
from leanml.report.leaderboard import relative
from leanml.report.tables import Column

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
PARETO_TABLE = [
    Column("front", "Front", "l"),
    Column("order", "#"),
    Column("name", "Model", "l"),
    Column("accuracy", "Acc. (%)", fmt=tables.pct),
    Column("cost_metric", "Cost", "l"),
    Column("cost", "Value", fmt=tables.number),
]


def headline_rows(metrics: dict[str, Any], within_pp: float) -> list[dict]:
    """The headline models (baseline, best, smallest within, best of each family) as rows."""
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


def family_members(rows: Sequence[dict], family: str) -> list[dict]:
    """The rows of one family, grouped by method, best first within each."""
    return sorted(
        (r for r in rows if r["family"] == family),
        key=lambda r: (r["method"], -r["accuracy"], r["size_bytes"], r["name"]),
    )


def leaderboard_latex(rows: Sequence[dict], size: str, n_test: Any) -> str:
    """The leaderboard as a LaTeX (booktabs) table."""
    note = (
        f"Test split ({n_test} samples). Size: {SIZE_NAMES[size]}. "
        f"Ratio: baseline size / size. Front: S = on the accuracy-size Pareto front, "
        "L = on the accuracy-latency front."
    )
    return tables.latex(
        rows,
        LEADERBOARD_TABLE,
        "Every candidate model on the test split, by accuracy",
        "tab:leanml-leaderboard",
        note=note,
    )


def family_latex(rows: Sequence[dict], family: str, size: str) -> str:
    """One family's candidates as a LaTeX (booktabs) table, a rule between methods."""
    members = family_members(rows, family)
    groups = [i for i in range(1, len(members)) if members[i]["method"] != members[i - 1]["method"]]
    return tables.latex(
        members,
        FAMILY_TABLE,
        f"{family}: candidates on the test split",
        f"tab:leanml-{family}",
        groups=groups,
        note=f"Size: {SIZE_NAMES[size]}. Δ and ratio relative to the baseline.",
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
) -> str:
    """summary.md: headline, leaderboard, fronts, figures, per family, per class, files.

    `out` is the stage's `Outputs` (links are relative to `out.summary`'s folder).
    """
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
        tables.markdown(headline_rows(metrics, within_pp), HEADLINE_TABLE),
        "## Leaderboard\n",
        "Front: S = on the accuracy-vs-size Pareto front, L = on the accuracy-vs-latency front.\n",
        tables.markdown(rows, LEADERBOARD_TABLE),
        "## Pareto fronts\n",
        tables.markdown(front_rows, PARETO_TABLE),
        "## Figures\n",
        *(f"![{title}]({link(path)})\n" for title, path in fig_paths),
        "## Per family\n",
    ]
    for family, tex in family_tex.items():
        parts += [
            f"### {family}\n",
            tables.markdown(family_members(rows, family), FAMILY_TABLE),
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
