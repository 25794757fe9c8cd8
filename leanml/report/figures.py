"""Every figure of the reports (PNG): training, convergence, Pareto, compression, confusion."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from leanml.io import atomic_path
from leanml.report.i18n import figure_label

MARKERS = "os^Dv<>Pp*hX"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, target: str | Path) -> None:
    plt = _plt()
    fig.tight_layout()
    with atomic_path(target, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def plot_pareto(
    rows: Sequence[dict], target: str | Path, size_label: str, language: str = "en"
) -> None:
    """Accuracy vs size and accuracy vs latency, one colour per family, fronts drawn as steps.

    `language` "zh" only when the caller has found a font that draws the labels (`i18n.cjk_font`).
    """
    plt = _plt()

    def tr(label: str, **fields) -> str:
        return figure_label(label, language, **fields)

    families = sorted({r["family"] for r in rows})
    colours = {f: plt.cm.tab10(i % 10) for i, f in enumerate(families)}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    panels = (("size_bytes", "pareto_size"), ("latency_ms_p50", "pareto_latency"))
    for ax, (cost, flag) in zip(axes, panels, strict=True):
        for family in families:
            members = [r for r in rows if r["family"] == family]
            ax.scatter(
                [r[cost] for r in members],
                [100 * r["accuracy"] for r in members],
                color=colours[family],
                label=family,
                s=30,
                alpha=0.8,
            )
        front = sorted((r for r in rows if r[flag]), key=lambda r: r[cost])
        ax.step(
            [r[cost] for r in front],
            [100 * r["accuracy"] for r in front],
            where="post",
            color="black",
            lw=1,
            label=tr("Pareto front"),
        )
        for r in front:
            ax.annotate(
                r["name"],
                (r[cost], 100 * r["accuracy"]),
                fontsize=6,
                xytext=(3, -8),
                textcoords="offset points",
            )
        if cost == "size_bytes":
            ax.set_xscale("log")
        ax.set_ylabel(tr("test accuracy (%)"))
        ax.grid(alpha=0.3)
    axes[0].set(
        xlabel=tr("size on disk (bytes, {size})", size=size_label), title=tr("accuracy vs size")
    )
    axes[1].set(xlabel=tr("CPU latency, batch 1, p50 (ms)"), title=tr("accuracy vs latency"))
    axes[0].legend(fontsize=7)
    _save(fig, target)


def plot_compression(
    rows: Sequence[dict], target: str | Path, baseline: dict | None, language: str = "en"
) -> None:
    """Per compression method: accuracy vs its knob (the first setting) and vs size."""
    plt = _plt()

    def tr(label: str) -> str:
        return figure_label(label, language)

    methods = sorted({r["method"] for r in rows})
    fig, axes = plt.subplots(1, len(methods) + 1, figsize=(4 * (len(methods) + 1), 3.8))
    axes = np.atleast_1d(axes)
    for i, method in enumerate(methods):
        members = [r for r in rows if r["method"] == method]
        ax_knob, marker = axes[i], MARKERS[i % len(MARKERS)]
        settings = [json.loads(r["setting"]) if r["setting"] else {} for r in members]
        knob = next(iter(settings[0]), None) if settings and settings[0] else None
        # one line per series: variants that share their text settings (e.g. kind, criterion)
        series: dict[str, list[tuple[float, float]]] = {}
        for s, r in zip(settings, members, strict=True):
            x = s.get(knob)
            if isinstance(x, int | float) and not isinstance(x, bool):
                key = " ".join(str(v) for v in s.values() if isinstance(v, str)) or method
                series.setdefault(key, []).append((x, 100 * r["accuracy"]))
        if series:
            for key, points in sorted(series.items()):
                xs, ys = zip(*sorted(points), strict=True)
                ax_knob.plot(xs, ys, marker + "-", label=key)
            ax_knob.set_xlabel(knob)
            ax_knob.legend(fontsize=6)
        else:  # no numeric knob: one point per variant, by name
            ax_knob.plot(range(len(members)), [100 * r["accuracy"] for r in members], marker)
            ax_knob.set_xticks(range(len(members)), [r["variant"] for r in members], rotation=60)
            ax_knob.tick_params(axis="x", labelsize=6)
        if baseline is not None:
            ax_knob.axhline(100 * baseline["accuracy"], color="grey", ls="--", lw=1)
        ax_knob.set(title=method, ylabel=tr("test accuracy (%)"))
        ax_knob.grid(alpha=0.3)
        axes[-1].plot(
            [r["size_bytes"] for r in members],
            [100 * r["accuracy"] for r in members],
            marker,
            label=method,
        )
    if baseline is not None:
        axes[-1].plot(
            [baseline["size_bytes"]],
            [100 * baseline["accuracy"]],
            "k*",
            ms=10,
            label=tr("baseline"),
        )
    axes[-1].set(
        xscale="log",
        xlabel=tr("size on disk (bytes)"),
        title=tr("all methods: accuracy vs size"),
    )
    axes[-1].grid(alpha=0.3)
    axes[-1].legend(fontsize=7)
    _save(fig, target)


def plot_confusion(
    matrix: Sequence[Sequence[int]], target: str | Path, title: str, language: str = "en"
) -> None:
    """A confusion matrix with counts in the cells (rows: true class, columns: predicted)."""
    plt = _plt()
    m = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    image = ax.imshow(m, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046)
    n = len(m)
    for i in range(n):
        for j in range(n):
            if m[i, j]:
                colour = "white" if m[i, j] > m.max() / 2 else "black"
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7, color=colour)
    ax.set(
        xticks=range(n),
        yticks=range(n),
        xlabel=figure_label("predicted class", language),
        ylabel=figure_label("true class", language),
        title=title,
    )
    _save(fig, target)


def plot_history(history: list[dict[str, float]], target: str | Path, title: str) -> None:
    """Loss and accuracy per epoch, train and val, as a PNG (renders offline, unlike dvc plots)."""
    plt = _plt()
    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key, label in (("loss", "train"), ("val_loss", "val")):
        ax_loss.plot(epochs, [row.get(key) for row in history], label=label)
    for key, label in (("accuracy", "train"), ("val_accuracy", "val")):
        ax_acc.plot(epochs, [row.get(key) for row in history], label=label)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    _save(fig, target)


def plot_convergence(
    curves: dict[str, list[dict]], target: str | Path, title: str, y: str = "best_score"
) -> None:
    """Best-so-far vs training epochs spent (the compute every algorithm gets the same budget
    of), or vs evaluations for curves without an `epochs` column; one line per algorithm."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    by_epochs = all(rows and "epochs" in rows[0] for rows in curves.values())
    x = "epochs" if by_epochs else "evaluation"
    for name, rows in sorted(curves.items()):
        xs = [int(r[x]) for r in rows]
        ys = [float(r[y]) for r in rows]
        ax.step(xs, ys, where="post", label=name, marker="o", markersize=3)
    xlabel = "training epochs spent" if by_epochs else "evaluations (models trained)"
    ax.set(xlabel=xlabel, ylabel=y.replace("_", " "), title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, target)
