"""compress_report's side: read every method's results.csv, summarise and overlay them.

No Keras here: the report stage reads CSV files only and must not pay TensorFlow's import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leanml.io import atomic_path


def read_results(path: Path) -> list[dict[str, Any]]:
    """A results.csv back as rows, numbers as numbers."""
    import csv

    def value(text: str) -> Any:
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text or None

    with open(path) as handle:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def summarize(results: dict[str, list[dict]], ref: dict, within_pp: float = 1.0) -> dict:
    """Per method: the most accurate variant and the smallest one within `within_pp` of the
    baseline's test accuracy (None when no variant is that close)."""
    out: dict[str, Any] = {"baseline": ref}
    for method, rows in results.items():
        close = [r for r in rows if float(r["delta_pp"]) >= -within_pp]
        best = max(rows, key=lambda r: float(r["test_accuracy"]))
        small = min(close, key=lambda r: int(r["artifact_bytes"])) if close else None
        out[method] = {
            "variants": len(rows),
            "most_accurate": {k: best[k] for k in ("variant", "test_accuracy", "artifact_bytes")},
            f"smallest_within_{within_pp:g}pp": (
                {
                    k: small[k]
                    for k in ("variant", "test_accuracy", "artifact_bytes", "compression_ratio")
                }
                if small
                else None
            ),
        }
    return out


def plot_all(results: dict[str, list[dict]], ref: dict, target: Path, title: str) -> None:
    """Test accuracy vs bytes of the compact artifact, every method's variants on one chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for method, rows in results.items():
        xs = [float(r["artifact_bytes"]) for r in rows]
        ys = [float(r["test_accuracy"]) for r in rows]
        ax.plot(xs, ys, "o", label=method)
        for r, x, y in zip(rows, xs, ys, strict=True):
            ax.annotate(r["variant"], (x, y), fontsize=6, xytext=(2, 2), textcoords="offset points")
    ax.plot([ref["file_bytes"]], [ref["test_accuracy"]], "k*", ms=12, label="baseline .keras")
    ax.axhline(float(ref["test_accuracy"]), color="grey", ls="--", lw=1)
    ax.set(xscale="log", xlabel="bytes on disk (compact artifact)", ylabel="test accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(target, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
