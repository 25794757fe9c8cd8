"""Meta-learned NAS: learn from earlier tasks to start well on a new one.

1. A meta-dataset of (task meta-features, architecture, val accuracy) is built once, by its own
   cached DVC stage (`nas_metadata`), from source tasks that ship with the project: disjoint
   class subsets of the digits data, scikit-learn's bundled iris / wine / breast-cancer, and
   seeded synthetic classification tasks. The best model of each source task is kept for
   weight transfer.
2. Meta-features: log sample and feature counts, class count, normalised class entropy, and two
   landmarkers (validation accuracy of 1-nearest-neighbour and of logistic regression).
3. On the target task, source tasks are ranked by distance in z-scored meta-feature space; the
   best architectures of the nearest tasks are tried first (warm start, as auto-sklearn), then a
   random-forest surrogate trained on the meta-dataset (and on every target result so far)
   ranks random candidates and the best untried one is trained next. Warm-start children whose
   layer shapes fit are initialised from the source model's weights (transfer).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leanml.data import Splits
from leanml.errors import LeanmlError
from leanml.nas.space import Arch, ArchSpace
from leanml.nas.tasks import source_tasks
from leanml.trials.base import Algorithm

FEATURES = (
    "log_samples",
    "log_features",
    "classes",
    "class_entropy",
    "knn_accuracy",
    "linear_accuracy",
)


# Landmarkers (1-NN, logistic regression) are fitted on at most this many train samples and
# scored on at most this many val samples: a descriptor, not a model, so a fixed-size
# stratified subsample keeps them cheap on large data (digits, 1257 samples, is used whole).
LANDMARK_SAMPLES = 2000


def _subsample(x: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `n` rows, stratified by class where every class has 2+ rows, seeded."""
    if len(x) <= n:
        return x, y
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    x_s, _, y_s, _ = train_test_split(x, y, train_size=n, stratify=stratify, random_state=seed)
    return x_s, y_s


def meta_features(splits: Splits, seed: int = 0) -> dict[str, float]:
    """Cheap descriptors of a task, from its train and val splits only.

    Sizes and class entropy use every train sample; the two landmarkers use a seeded stratified
    subsample of `LANDMARK_SAMPLES` train and val samples (the whole splits when smaller), and
    the logistic regression's convergence warning is not shown (300 iterations is enough for a
    descriptor).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    x_tr = splits.train.x.reshape(len(splits.train.x), -1)
    x_va = splits.val.x.reshape(len(splits.val.x), -1)
    counts = np.bincount(splits.train.y)
    p = counts[counts > 0] / counts.sum()
    k = len(counts)
    lx_tr, ly_tr = _subsample(x_tr, splits.train.y, LANDMARK_SAMPLES, seed)
    lx_va, ly_va = _subsample(x_va, splits.val.y, LANDMARK_SAMPLES, seed)
    knn = KNeighborsClassifier(1).fit(lx_tr, ly_tr).score(lx_va, ly_va)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        linear = LogisticRegression(max_iter=300).fit(lx_tr, ly_tr).score(lx_va, ly_va)
    return {
        "log_samples": math.log10(len(x_tr)),
        "log_features": math.log10(x_tr.shape[1]),
        "classes": float(k),
        "class_entropy": float(-(p * np.log(p)).sum() / math.log(k)) if k > 1 else 0.0,
        "knn_accuracy": float(knn),
        "linear_accuracy": float(linear),
    }


@dataclass
class MetaRow:
    task: str
    features: dict[str, float]
    arch: Arch
    score: float


def load_metadataset(path: Path) -> tuple[list[MetaRow], dict[str, str]]:
    """Rows and {task: path of its best model} from the nas_metadata stage's JSON."""
    path = Path(path)
    payload = json.loads(path.read_text())
    rows = [MetaRow(**row) for row in payload["rows"]]
    models = {task: str(path.parent / name) for task, name in payload.get("models", {}).items()}
    return rows, models


class MetaNAS(Algorithm):
    """Warm start from the nearest source tasks, then a surrogate-ranked search."""

    def __init__(
        self,
        *args,
        rows: list[MetaRow],
        target: dict[str, float],
        models: dict[str, str] | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        cfg = self.cfg.meta
        self.rows, self.target, self.models = rows, target, models or {}
        self.rng = np.random.default_rng(self.seed)
        tasks = sorted({r.task for r in rows})
        feats = {r.task: r.features for r in rows}
        matrix = np.array([[feats[t][f] for f in FEATURES] for t in tasks])
        mean, std = matrix.mean(axis=0), matrix.std(axis=0)
        std[std == 0] = 1.0
        self._mean, self._std = mean, std
        target_vec = (np.array([target[f] for f in FEATURES]) - mean) / std
        distances = {
            t: float(np.linalg.norm((matrix[i] - mean) / std - target_vec))
            for i, t in enumerate(tasks)
        }
        self.nearest = sorted(tasks, key=lambda t: (distances[t], t))[: cfg.neighbours]
        self.distances = distances
        ranked = sorted(
            (r for r in rows if r.task in self.nearest),
            key=lambda r: (-r.score, self.nearest.index(r.task)),
        )
        self.warm: list[tuple[Arch, str]] = []
        # warm starts whose source architecture had layers of a kind this space lacks (conv on
        # tabular data): tried as projected, but not initialised from the source model
        self.no_transfer: dict[str, str] = {}
        source_arch: dict[str, Arch] = {}  # each task's first best row: the model it kept
        for r in sorted(rows, key=lambda r: -r.score):  # stable: ties keep training order
            source_arch.setdefault(r.task, r.arch)
        seen = set()
        for r in ranked:
            arch = self.space.canonical(self._fit_to_space(r.arch))
            k = json.dumps(arch, sort_keys=True)
            if k not in seen and len(self.warm) < cfg.warm_start:
                seen.add(k)
                self.warm.append((arch, r.task))
                lost = {x["kind"] for x in self.space.layers(source_arch[r.task])}
                lost -= set(self.space.kinds)
                if lost and cfg.transfer and r.task in self.models:
                    self.no_transfer[k] = (
                        f"warm start from {r.task}: not initialised from its model (its "
                        f"{'/'.join(sorted(lost))} layers are not in this space, kinds: "
                        f"[{', '.join(self.space.kinds)}])"
                    )
                    print(f"nas@meta: {self.no_transfer[k]}")
        # the baseline (no source task: not transferred) first, then the meta warm starts
        self.warm = [(dict(arch), "baseline") for arch in self.take_initial()] + self.warm
        self.transfer_from: dict[str, str] = {}
        self.proposed: set[str] = set()
        self.observed: list[tuple[Arch, float]] = []
        self.log: list[dict] = [
            {
                "nearest": self.nearest,
                "distances": distances,
                "warm_start": [{"task": t, "arch": a} for a, t in self.warm],
                "transfer_skipped": sorted(set(self.no_transfer.values())),
            }
        ]

    def _fit_to_space(self, arch: Arch) -> Arch:
        """Map a source architecture into the target space (e.g. conv → dense on tabular data)."""
        out = {}
        for d in self.space.decisions:
            value = arch.get(d.name, d.choices[0])
            if value not in d.choices:
                value = "dense" if d.name.endswith(".kind") else d.choices[0]
            out[d.name] = value
        return out

    def _x(self, arch: Arch, features: dict[str, float]) -> np.ndarray:
        f = (np.array([features[k] for k in FEATURES]) - self._mean) / self._std
        enc = [
            i / max(n - 1, 1)
            for i, n in zip(self.space.encode(arch), self.space.sizes, strict=True)
        ]
        return np.concatenate([f, enc])

    def _surrogate(self):
        from sklearn.ensemble import RandomForestRegressor

        xs, ys = [], []
        for r in self.rows:
            xs.append(self._x(self.space.canonical(self._fit_to_space(r.arch)), r.features))
            ys.append(r.score)
        for arch, score in self.observed:
            xs.append(self._x(arch, self.target))
            ys.append(score)
        return RandomForestRegressor(n_estimators=60, random_state=self.seed).fit(xs, ys)

    def ask(self) -> list[Arch]:
        warm = []  # every warm start in one batch (they are independent: parallel workers)
        while self.warm:
            arch, task = self.warm.pop(0)
            k = json.dumps(arch, sort_keys=True)
            if k not in self.proposed:
                self.proposed.add(k)
                if self.cfg.meta.transfer and task in self.models and k not in self.no_transfer:
                    self.transfer_from[k] = self.models[task]
                warm.append(arch)
        if warm:
            return warm
        model = self._surrogate()
        candidates, keys = [], []
        for _ in range(self.cfg.meta.candidates):
            arch = self.space.sample(self.rng)
            k = json.dumps(arch, sort_keys=True)
            if k not in self.proposed and k not in keys:
                candidates.append(arch)
                keys.append(k)
        if not candidates:
            return [self.space.sample(self.rng)]
        predicted = model.predict(np.array([self._x(a, self.target) for a in candidates]))
        best = int(np.argmax(predicted))
        self.proposed.add(keys[best])
        return [candidates[best]]

    def tell(self, configs, scores) -> None:
        for arch, score in zip(configs, scores, strict=True):
            self.observed.append((arch, float(score)))

    def init_source(self, arch: Arch) -> str | None:
        """The source model to initialise this child from, if it is a transferred warm start."""
        return self.transfer_from.get(json.dumps(arch, sort_keys=True))


def transfer_weights(model, source_path: str | Path) -> int:
    """Copy weights of same-named layers whose shapes fit; return how many layers were copied."""
    import keras

    source = keras.models.load_model(source_path, safe_mode=True, compile=False)
    by_name = {layer.name: layer for layer in source.layers}
    copied = 0
    for layer in model.layers:
        other = by_name.get(layer.name)
        if other is None or layer.name == "output" or not layer.weights:
            continue
        theirs = other.get_weights()
        if [w.shape for w in theirs] == [w.shape for w in layer.get_weights()]:
            layer.set_weights(theirs)
            copied += 1
    return copied


def earlier_runs(folder: Path, space: ArchSpace) -> list[dict]:
    """Meta-dataset rows from earlier NAS runs a user kept: `<folder>/<name>/trials.csv` and
    `strategy.json` copied from `reports/nas/<strategy>/` of any earlier run (any dataset).

    The run's task is described by the meta-features its `strategy.json` recorded; rows whose
    decisions do not fit `space` (an image space is the widest) are skipped.
    """
    import csv

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


def build_metadataset(
    space_for: Callable[[bool], ArchSpace],
    train: Callable,
    seed: int,
    n_archs: int,
    synthetic: int,
    model_dir: Path,
    digits_xy: tuple[np.ndarray, np.ndarray] | None = None,
    target_x: np.ndarray | None = None,
) -> dict:
    """Train `n_archs` sampled architectures on every source task; keep each task's best model.

    `space_for(image_input)` gives the architecture space; `train(space, arch, splits, seed)`
    returns (TrainResult). Returns the JSON payload of the metadata stage.
    """
    from leanml import measure

    rows, models, tasks_out = [], {}, []
    rng = np.random.default_rng(seed)
    for name, splits in source_tasks(seed, synthetic, digits_xy, target_x):
        try:
            space = space_for(len(splits.input_shape) == 3)
        except LeanmlError:  # kinds: [conv] and a tabular source task: nothing to sample
            print(f"nas_metadata: {name} skipped: its samples are not images (kinds: [conv])")
            continue
        features = meta_features(splits)
        best = None
        for i in range(n_archs):
            arch = space.sample(rng)
            result = train(space, arch, splits, seed + i)
            score = float(result.metrics["val_accuracy"]) if result.ok else 0.0
            rows.append({"task": name, "features": features, "arch": arch, "score": score})
            if best is None or score > best[0]:
                best = (score, result.model)
        path = model_dir / f"{name}.keras"
        measure.save_model(best[1], path)
        models[name] = path.name  # relative to the metadata file's folder
        tasks_out.append({"task": name, "features": features, "best_score": best[0]})
        print(f"nas_metadata: {name}: {n_archs} architectures, best {best[0]:.4f}")
    return {"rows": rows, "models": models, "tasks": tasks_out}
