"""Figures and tables for reports (training curves now; leaderboards as stages land)."""

from __future__ import annotations

from pathlib import Path

from leanml.io import atomic_path


def plot_history(history: list[dict[str, float]], target: str | Path, title: str) -> None:
    """Loss and accuracy per epoch, train and val, as a PNG (renders offline, unlike dvc plots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.tight_layout()
    with atomic_path(target, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def plot_convergence(
    curves: dict[str, list[dict]], target: str | Path, title: str, y: str = "best_score"
) -> None:
    """Best-so-far vs evaluations, one line per algorithm, on one chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rows in sorted(curves.items()):
        xs = [int(r["evaluation"]) for r in rows]
        ys = [float(r[y]) for r in rows]
        ax.step(xs, ys, where="post", label=name, marker="o", markersize=3)
    ax.set(xlabel="evaluations (models trained)", ylabel=y.replace("_", " "), title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(target, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def convergence_report(group, names, title: str) -> list[str]:
    """Overlay the convergence curves of every item of a search-like family that has one.

    `group` is `paths.load().search` or `.nas`; writes its `figure` and `summary` (headline
    metrics per item) and returns the items found.
    """
    import csv

    from leanml.io import read_json, write_json
    from leanml.paths import item

    curves, summary = {}, {}
    for name in names:
        out = item(group, name)
        if not out.convergence.is_file():
            continue
        with open(out.convergence) as handle:
            curves[name] = list(csv.DictReader(handle))
        metrics = read_json(out.metrics)
        keys = ("best_score", "best_val_accuracy", "evaluations", "evaluations_to_best")
        summary[name] = {k: metrics[k] for k in keys}
    if not curves:
        from leanml.errors import LeanmlError

        family = group.reports.name
        raise LeanmlError(
            f"no {family} results yet: none of {group.reports}/{{{','.join(names)}}}/"
            f"{group.files.convergence} exists; run `dvc repro {family}`"
        )
    plot_convergence(curves, group.figure, title)
    write_json(group.summary, summary)
    return sorted(curves)
