"""The meta-dataset's bundled source tasks (no network needed): disjoint class subsets of the
digits data, scikit-learn's iris / wine / breast-cancer tables and seeded synthetic tasks; and
the rule that keeps the target's own data out of them (`exclusion`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leanml.data import Split, Splits
from leanml.nas.space import ArchSpace

# A source task sharing at least this share of its samples with the target is a split of the
# target's data (digits 0-4 when the target is digits), not another task.
SHARED_LIMIT = 0.5


@dataclass
class RawTask:
    """A source task before its split: its samples as bundled, and how they were made."""

    name: str
    x: np.ndarray  # (n, features) or (n, H, W, C)
    y: np.ndarray
    # built from the target's own train split (the digits target's class subsets): kept on
    # purpose (no val/test sample of the target), reported as the same data, not transfer
    from_target_train: bool = False


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
    """Share of `source`'s samples that also occur in `target` (0 when their feature counts
    differ): values compared at float32, rounded to 3 decimals, as stored and also with each
    array scaled by its own overall min and max (digits as 0-16 or as 0-1 are the same
    images)."""
    flat_s, flat_t = source.reshape(len(source), -1), target.reshape(len(target), -1)
    if not len(flat_s) or flat_s.shape[1] != flat_t.shape[1]:
        return 0.0

    def variants(a: np.ndarray) -> list[np.ndarray]:
        a = a.astype(np.float32).astype(np.float64)
        lo, hi = a.min(), a.max()
        return [a, (a - lo) / (hi - lo if hi > lo else 1.0)]

    def rows(a: np.ndarray) -> set[bytes]:
        return {r.tobytes() for r in np.round(a, 3) + 0.0}  # + 0.0: no negative zeros

    pairs = zip(variants(flat_s), variants(flat_t), strict=True)
    return max(len(rows(s) & rows(t)) for s, t in pairs) / len(flat_s)


def _features(x: np.ndarray) -> int:
    return int(np.prod(x.shape[1:]))


def data_digest(x: np.ndarray) -> str:
    """sha256 of a task's samples that ignores their order and any per-feature affine scaling
    (a table and its min-max-scaled copy, digits as 0-16 or as 0-1, give one digest): each
    feature min-max scaled over all samples, rounded to 3 decimals, one hash per sample, the
    sorted hashes hashed with the feature count. Chunked: a 70,000-image set stays small."""
    flat = x.reshape(len(x), -1)
    lo = flat.min(axis=0).astype(np.float32).astype(np.float64)
    hi = flat.max(axis=0).astype(np.float32).astype(np.float64)
    scale = np.where(hi > lo, hi - lo, 1.0)
    hashes = []
    for start in range(0, len(flat), 4096):
        chunk = flat[start : start + 4096].astype(np.float32).astype(np.float64)
        for row in np.round((chunk - lo) / scale, 3) + 0.0:  # + 0.0: no negative zeros
            hashes.append(hashlib.sha256(row.tobytes()).digest())
    digest = hashlib.sha256(str(flat.shape[1]).encode())
    for h in sorted(hashes):
        digest.update(h)
    return digest.hexdigest()


def exclusion(source_x: np.ndarray, target_x: np.ndarray, target_digest: str | None = None) -> str:
    """Why a source task may not serve this target ("" when it may): the same data (equal
    `data_digest`), or a split of it (at least `SHARED_LIMIT` of its samples are the
    target's). Evaluating on either measures memory, not transfer; through weight transfer
    the target's val/test samples would reach the children."""
    if _features(source_x) == _features(target_x):
        if data_digest(source_x) == (target_digest or data_digest(target_x)):
            return "same data as the target (equal data digest)"
    shared = shared_rows(source_x, target_x)
    if shared >= SHARED_LIMIT:
        return f"{shared:.0%} of its samples are the target's (a split of the same data)"
    return ""


def bundled_tasks(
    seed: int, synthetic: int, digits_xy: tuple[np.ndarray, np.ndarray] | None = None
) -> list[RawTask]:
    """Every bundled source task, unsplit. `digits_xy` (the digits target's train split)
    replaces the bundled digits images for the two class-subset tasks."""
    from sklearn import datasets

    if digits_xy is None:
        digits = datasets.load_digits()
        x_img, y_img = digits.images.astype(np.float32)[..., None] / 16.0, digits.target
    else:
        x_img, y_img = digits_xy
    tasks = []
    for lo_class, hi_class in ((0, 5), (5, 10)):
        mask = (y_img >= lo_class) & (y_img < hi_class)
        name = f"digits_{lo_class}to{hi_class - 1}"
        tasks.append(RawTask(name, x_img[mask], y_img[mask] - lo_class, digits_xy is not None))
    for loader in (datasets.load_iris, datasets.load_wine, datasets.load_breast_cancer):
        bunch = loader()
        tasks.append(RawTask(loader.__name__.removeprefix("load_"), bunch.data, bunch.target))
    for i in range(synthetic):
        x, y = datasets.make_classification(
            n_samples=400, n_features=20, n_informative=8, n_classes=3 + i, random_state=seed + i
        )
        tasks.append(RawTask(f"synthetic_{i}", x, y))
    return tasks


def select_sources(
    tasks: list[RawTask], target_x: np.ndarray | None
) -> tuple[list[RawTask], list[dict[str, str]]]:
    """The tasks that may serve as sources for `target_x` (the target's samples as loaded,
    every split), and the ones left out, each {task, reason}, with one line each."""
    if target_x is None:
        return list(tasks), []
    kept, excluded = [], []
    digest = None
    for task in tasks:
        reason = ""
        if not task.from_target_train:  # built from the target's train split on purpose
            if _features(task.x) == _features(target_x) and digest is None:
                digest = data_digest(target_x)  # only when some task could match
            reason = exclusion(task.x, target_x, digest)
        if reason:
            excluded.append({"task": task.name, "reason": reason})
            print(f"nas_metadata: {task.name} left out: {reason}")
        else:
            kept.append(task)
    return kept, excluded


def split_task(task: RawTask, seed: int) -> tuple[str, Splits]:
    """Seeded 70/30 train/val split, min-max scaled on train. Test splits are empty: never used.
    Image tasks keep their sample shape."""
    shape = task.x.shape[1:]
    name, sp = _tabular(task.name, task.x.reshape(len(task.x), -1), task.y, seed)
    if len(shape) == 1:
        return name, sp
    return name, Splits(*[Split(p.x.reshape(-1, *shape), p.y) for p in (sp.train, sp.val, sp.test)])


def source_tasks(
    seed: int,
    synthetic: int,
    digits_xy: tuple[np.ndarray, np.ndarray] | None = None,
    target_x: np.ndarray | None = None,
) -> list[tuple[str, Splits]]:
    """The bundled source tasks for a target, split: no network needed.

    `digits_xy` replaces the bundled digits images: when the target task is digits itself, pass
    its train split so that no target val/test image reaches the meta-dataset (or, through
    weight transfer, a child network). `target_x` (the target's samples): a bundled task with
    the same data or a split of it (`exclusion`) is left out, with one line.
    """
    kept, _ = select_sources(bundled_tasks(seed, synthetic, digits_xy), target_x)
    return [split_task(task, seed) for task in kept]


def excluded_tag(payload: dict) -> str:
    """The left-out source tasks and why, for an MLflow tag ("" when none)."""
    return "; ".join(f"{e['task']}: {e['reason']}" for e in payload["excluded"])


def describe_sources(payload: dict) -> str:
    """One line: the source tasks, the same-data ones, the ones left out and why."""
    names = [t["task"] for t in payload["tasks"]]
    line = f"nas_metadata: sources {', '.join(names)}"
    if payload["same_data"]:
        line += (
            f"; {', '.join(payload['same_data'])} built from the target's train split "
            "(the same data: a warm start, not transfer)"
        )
    return line + (f"; left out: {excluded_tag(payload)}" if payload["excluded"] else "")


def earlier_runs(folder: Path, space: ArchSpace) -> list[dict]:
    """Meta-dataset rows from earlier NAS runs a user kept: `<folder>/<name>/trials.csv` and
    `strategy.json` copied from `reports/nas/<strategy>/` of any earlier run (any dataset).

    The run's task is described by the meta-features its `strategy.json` recorded; rows whose
    decisions do not fit `space` (an image space is the widest) are skipped.
    """
    import csv

    from leanml.nas.meta import FEATURES  # meta imports this module

    rows = []
    for trials in sorted(Path(folder).glob("*/trials.csv")):
        info = trials.with_name("strategy.json")
        if not info.is_file():
            print(f"nas_metadata: skipping {trials}: no strategy.json beside it")
            continue
        features = json.loads(info.read_text()).get("target_features")
        if not features or set(features) != set(FEATURES):
            print(f"nas_metadata: skipping {trials}: strategy.json has no target_features")
            continue
        with open(trials) as handle:
            for record in csv.DictReader(handle):
                if record.get("status") != "ok" or record.get("from_cache") == "True":
                    continue
                arch = {}
                for d in space.decisions:
                    value = next((c for c in d.choices if str(c) == record.get(d.name)), None)
                    if value is None:
                        break
                    arch[d.name] = value
                else:
                    rows.append(
                        {
                            "task": f"run:{trials.parent.name}",
                            "features": features,
                            "arch": space.canonical(arch),
                            "score": float(record["val_accuracy"]),
                        }
                    )
    return rows
