"""The meta-dataset's bundled source tasks (no network needed): disjoint class subsets of the
digits data, scikit-learn's iris / wine / breast-cancer tables and seeded synthetic tasks; and
the check that keeps a user's own data out of them."""

from __future__ import annotations

import numpy as np

from leanml.data import Split, Splits


def _tabular(name: str, x: np.ndarray, y: np.ndarray, seed: int) -> tuple[str, Splits]:
    from sklearn.model_selection import train_test_split

    x = x.astype(np.float32)
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.3, stratify=y, random_state=seed)
    lo, hi = x_tr.min(axis=0), x_tr.max(axis=0)
    scale = np.where(hi > lo, hi - lo, 1.0)

    def s(a):
        return np.clip((a - lo) / scale, 0, 1).astype(np.float32)

    empty = Split(s(x_va[:0]), y_va[:0])
    return name, Splits(Split(s(x_tr), y_tr), Split(s(x_va), y_va), empty)


def shared_rows(source: np.ndarray, target: np.ndarray) -> float:
    """Share of `source`'s samples that also occur in `target` (values compared at float32,
    rounded to 3 decimals; 0 when their feature counts differ)."""
    flat_s, flat_t = source.reshape(len(source), -1), target.reshape(len(target), -1)
    if not len(flat_s) or flat_s.shape[1] != flat_t.shape[1]:
        return 0.0

    def rows(a: np.ndarray) -> set[bytes]:
        return {r.tobytes() for r in np.round(a.astype(np.float32).astype(np.float64), 3)}

    return len(rows(flat_s) & rows(flat_t)) / len(flat_s)


def source_tasks(
    seed: int,
    synthetic: int,
    digits_xy: tuple[np.ndarray, np.ndarray] | None = None,
    target_x: np.ndarray | None = None,
) -> list[tuple[str, Splits]]:
    """The bundled source tasks: no network needed. Test splits are empty: never used.

    `digits_xy` replaces the bundled digits images: when the target task is digits itself, pass
    its train split so that no target val/test image reaches the meta-dataset (or, through
    weight transfer, a child network). `target_x` (a user's own data, raw): a bundled table that
    shares at least half of its samples with it (the user brought wine as wine.npz) is left out
    with one line, for the same reason.
    """
    from sklearn import datasets

    if digits_xy is None:
        digits = datasets.load_digits()
        x_img, y_img = digits.images.astype(np.float32)[..., None] / 16.0, digits.target
    else:
        x_img, y_img = digits_xy
    tasks = []
    for lo_class, hi_class in ((0, 5), (5, 10)):
        mask = (y_img >= lo_class) & (y_img < hi_class)
        name, sp = _tabular(
            f"digits_{lo_class}to{hi_class - 1}",
            x_img[mask].reshape(mask.sum(), -1),
            y_img[mask] - lo_class,
            seed,
        )
        parts = [Split(p.x.reshape(-1, 8, 8, 1), p.y) for p in (sp.train, sp.val, sp.test)]
        tasks.append((name, Splits(*parts)))
    for loader in (datasets.load_iris, datasets.load_wine, datasets.load_breast_cancer):
        bunch, name = loader(), loader.__name__.removeprefix("load_")
        shared = 0.0 if target_x is None else shared_rows(bunch.data, target_x)
        if shared >= 0.5:
            print(f"nas_metadata: {name} left out: {shared:.0%} of its samples are the target's")
            continue
        tasks.append(_tabular(name, bunch.data, bunch.target, seed))
    for i in range(synthetic):
        x, y = datasets.make_classification(
            n_samples=400, n_features=20, n_informative=8, n_classes=3 + i, random_state=seed + i
        )
        tasks.append(_tabular(f"synthetic_{i}", x, y, seed))
    return tasks
