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


def _save(fig, target: str | Path, layout: bool = True) -> None:
    plt = _plt()
    if layout:  # off when labels were placed in pixels after the figure's own tight_layout
        fig.tight_layout()
    with atomic_path(target, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


# The accuracy axis of the Pareto figure shows the band a reader compares models in: from the
# baseline down to ZOOM_PP points below it (lower if a front point there is lower still), never
# less than FLOOR_PP below it. Models further down are drawn on the bottom edge, counted.
ZOOM_PP = 10.0
FLOOR_PP = 2.0
# Figure labels this module adds, English → Chinese (used like i18n.FIGURE_ZH; see `_label`).


def _label(english: str, language: str, **fields) -> str:
    return figure_label(english, language, **fields)


def accuracy_band(rows: Sequence[dict]) -> tuple[float, float]:
    """(lower, upper) limits in % of the Pareto figure's accuracy axis (see ZOOM_PP)."""
    accs = [100 * r["accuracy"] for r in rows]
    baseline = next((r for r in rows if r["family"] == "train"), None)  # the train stage's
    ref = 100 * baseline["accuracy"] if baseline else max(accs)
    front = [100 * r["accuracy"] for r in rows if r.get("pareto_size") or r.get("pareto_latency")]
    shown = [a for a in [*front, ref] if a >= ref - ZOOM_PP]
    low = min(min(shown), ref - FLOOR_PP)
    if min(accs) >= low:  # nothing far below: every model in view, no edge
        low = min(accs)
    pad = max(0.5, 0.04 * (max(accs) - low))
    return low - pad, max(accs) + pad


def _place_labels(ax, points: list[tuple[float, float, str]], fontsize: float) -> list:
    """Number labels beside their points, none overlapping another label or a point.

    Deterministic: points in the given order, each takes the first free spot among offsets
    around it at growing distances (a spot's box is estimated from the text's length).
    """
    fig = ax.figure
    px = fig.dpi / 72 * fontsize  # font size in pixels
    to_px = ax.transData.transform
    centres = [tuple(to_px((x, y))) for x, y, _ in points]
    dot = 0.5 * px
    taken = [(cx - dot, cy - dot, cx + dot, cy + dot) for cx, cy in centres]
    (x0, y0), (x1, y1) = ax.bbox.get_points()  # spots stay inside the panel
    directions = [(1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)]
    texts = []
    for (x, y, text), (cx, cy) in zip(points, centres, strict=True):
        w, h = 0.62 * px * len(text) + 2, px + 2
        spot = None
        for step in range(1, 12):
            for dx, dy in directions:
                ox, oy = dx * (dot + 2 + 0.55 * px * step), dy * (dot + 2 + 0.55 * px * step)
                box = (cx + ox - w / 2, cy + oy - h / 2, cx + ox + w / 2, cy + oy + h / 2)
                inside = x0 <= box[0] and box[2] <= x1 and y0 <= box[1] and box[3] <= y1
                if inside and not any(_overlap(box, other) for other in taken):
                    spot = (ox, oy, box)
                    break
            if spot:
                break
        ox, oy, box = spot or (0.0, dot + h, (cx - w / 2, cy + dot, cx + w / 2, cy + dot + h))
        taken.append(box)
        texts.append(
            ax.annotate(
                text,
                (x, y),
                xytext=(ox * 72 / fig.dpi, oy * 72 / fig.dpi),
                textcoords="offset points",
                fontsize=fontsize,
                ha="center",
                va="center",
                arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.5", "shrinkA": 0},
            )
        )
    return texts


def _overlap(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def plot_pareto(
    rows: Sequence[dict], target: str | Path, size_label: str, language: str = "en"
) -> dict:
    """Accuracy vs size and accuracy vs latency, one colour per family, fronts drawn as steps.

    Front models carry a number (the same in both panels) listed with its name in a table on
    the right; number labels are placed so that none overlaps another. The accuracy axis is the
    band of `accuracy_band`; models below it are drawn as ▼ on the bottom edge and counted.
    `language` "zh" only when the caller has found a font that draws the labels (`i18n.cjk_font`).
    Returns what was drawn: the figure, the axis limits, the count below, the numbers.
    """
    plt = _plt()
    from matplotlib.ticker import EngFormatter, LogLocator, NullFormatter

    def tr(label: str, **fields) -> str:
        return _label(label, language, **fields)

    families = sorted({r["family"] for r in rows})
    colours = {f: plt.cm.tab10(i % 10) for i, f in enumerate(families)}
    on_front = [r for r in rows if r.get("pareto_size") or r.get("pareto_latency")]
    # numbered by accuracy (best first), then name: the same rows give the same numbers
    numbers = {
        r["name"]: i + 1
        for i, r in enumerate(sorted(on_front, key=lambda r: (-r["accuracy"], r["name"])))
    }
    low, high = accuracy_band(rows)
    below = [r for r in rows if 100 * r["accuracy"] < low]
    lines = [f"{n:>2}  {name}" for name, n in sorted(numbers.items(), key=lambda kv: kv[1])]
    # the right column: the legend above the number table, as wide as its longest line
    below_label = tr("{n} below {edge:.1f}% (on the edge)", n=len(below), edge=low)
    widest = max([0.06 * len(line) for line in lines] + [0.055 * len(below_label) + 0.45])
    side = max(1.6, widest + 0.3)  # inches, from the longest table line or legend label
    fig = plt.figure(figsize=(11 + side, 4.8))
    grid = fig.add_gridspec(2, 3, width_ratios=[5.5, 5.5, side], height_ratios=[0.4, 0.6])
    axes = [fig.add_subplot(grid[:, 0]), fig.add_subplot(grid[:, 1])]
    panels = (("size_bytes", "pareto_size"), ("latency_ms_p50", "pareto_latency"))
    for ax, (cost, flag) in zip(axes, panels, strict=True):
        if cost == "size_bytes":
            ax.set_xscale("log")
            # short labels at 1, 2, 5 × 10^k (20k, 50k, ...): the default minor labels of a
            # narrow log range (2×10⁴ 3×10⁴ 4×10⁴) run into each other
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(EngFormatter(places=0, sep=""))
            ax.xaxis.set_minor_formatter(NullFormatter())
        for family in families:
            members = [r for r in rows if r["family"] == family and 100 * r["accuracy"] >= low]
            ax.scatter(
                [r[cost] for r in members],
                [100 * r["accuracy"] for r in members],
                color=colours[family],
                label=family,
                s=30,
                alpha=0.8,
            )
            edge = [r[cost] for r in below if r["family"] == family]
            if edge:  # on the bottom edge, half outside: below the band
                ax.scatter(edge, [low] * len(edge), color=colours[family], marker="v", s=30)
                ax.collections[-1].set_clip_on(False)
        front = sorted((r for r in rows if r[flag]), key=lambda r: r[cost])
        ax.step(
            [r[cost] for r in front],
            [max(100 * r["accuracy"], low) for r in front],
            where="post",
            color="black",
            lw=1,
            label=tr("Pareto front"),
        )
        ax.set_ylim(low, high)
        ax.set_xlim(*ax.get_xlim())  # fixed before labels are placed in pixel space
        ax.set_ylabel(tr("test accuracy (%)"))
        ax.grid(alpha=0.3)
        if below:
            ax.scatter(
                [],
                [],
                color="0.4",
                marker="v",
                s=30,
                label=below_label,
            )
    runtime = next((r.get("latency_runtime") for r in rows if r.get("latency_runtime")), None)
    latency = (
        tr("CPU latency, batch 1, p50 (ms, {runtime})", runtime=runtime)
        if runtime
        else tr("CPU latency, batch 1, p50 (ms)")
    )
    axes[0].set(
        xlabel=tr("size on disk (bytes, {size})", size=size_label), title=tr("accuracy vs size")
    )
    axes[1].set(xlabel=latency, title=tr("accuracy vs latency"))
    fig.tight_layout()
    legend = fig.add_subplot(grid[0, 2])
    legend.axis("off")
    legend.legend(*axes[0].get_legend_handles_labels(), fontsize=7, loc="upper left")
    labels = []
    for ax, (cost, _) in zip(axes, panels, strict=True):
        points = [
            (r[cost], max(100 * r["accuracy"], low), str(numbers[r["name"]]))
            for r in sorted(rows, key=lambda r: (numbers.get(r["name"], 0), r["name"]))
            if r["name"] in numbers
        ]
        labels.append(_place_labels(ax, points, fontsize=7))
    table = fig.add_subplot(grid[1, 2])
    table.axis("off")
    table.text(
        0,
        1,
        "\n".join(lines),
        va="top",
        ha="left",
        fontsize=7,
        family="monospace",
        transform=table.transAxes,
    )
    _save(fig, target, layout=False)
    return {
        "figure": fig,
        "axes": axes,
        "ylim": (low, high),
        "below": len(below),
        "numbers": numbers,
        "labels": labels,
        "table": lines,
    }


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
    curves: dict[str, list[dict]],
    target: str | Path,
    title: str,
    y: str = "best_score",
    language: str = "en",
) -> dict:
    """Best-so-far vs evaluations (models trained) and vs training epochs spent (the compute
    budget), side by side, one line per algorithm; curves without an `epochs` column are left
    out of the second panel (and it is left out when no curve has one). Returns the figure and
    its axes."""
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    with_epochs = {name: rows for name, rows in curves.items() if rows and "epochs" in rows[0]}
    panels = [("evaluation", "evaluations (models trained)", curves)]
    if with_epochs:
        panels.append(("epochs", "training epochs spent", with_epochs))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4), squeeze=False)
    colours = {name: plt.cm.tab10(i % 10) for i, name in enumerate(sorted(curves))}
    ylabel = _label("best score so far", language) if y == "best_score" else y.replace("_", " ")
    for ax, (x, xlabel, drawn) in zip(axes[0], panels, strict=True):
        for name, rows in sorted(drawn.items()):
            xs = [int(float(r[x])) for r in rows]
            ys = [float(r[y]) for r in rows]
            ax.step(xs, ys, where="post", label=name, marker="o", markersize=3, color=colours[name])
        ax.set(xlabel=_label(xlabel, language), ylabel=ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # counts: whole numbers
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8)
    fig.suptitle(title)
    _save(fig, target)
    return {"figure": fig, "axes": list(axes[0])}
