"""Meta-learned NAS: learn from earlier tasks to start well on a new one.

1. A meta-dataset of (task meta-features, architecture, val accuracy) is built once, by its own
   cached DVC stage (`nas_metadata`), from source tasks that ship with the project: disjoint
   class subsets of the digits data (of its train split when digits is the target),
   scikit-learn's bundled iris / wine / breast-cancer, and seeded synthetic classification
   tasks. The best model of each source task is kept for weight transfer.
2. Meta-features: log sample and feature counts, class count, normalised class entropy, and two
   landmarkers (validation accuracy of 1-nearest-neighbour and of logistic regression).
3. On the target task, source tasks are ranked by distance in z-scored meta-feature space; the
   best architectures of the nearest tasks are tried first (warm start, as auto-sklearn), then a
   random-forest surrogate trained on the meta-dataset (and on every target result so far)
   ranks random candidates and the best untried one is trained next. Warm-start children are
   initialised from the source model's weights (transfer) only where they fit: the same input
   shape, then layer by layer the same weight shapes (`transfer_plan`); each choice is logged.
4. The target's own data never serves as a source (`tasks.select_sources`).
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
from leanml.nas.tasks import bundled_tasks, select_sources, split_task
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
        input_shape: tuple[int, ...] | None = None,
        n_classes: int | None = None,
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
        # with the target's shapes known, every other warm start is checked layer by layer
        self.transfers: list[dict] = []
        if cfg.transfer and input_shape is not None and n_classes is not None:
            for arch, task in self.warm:
                k = json.dumps(arch, sort_keys=True)
                if task in self.models and k not in self.no_transfer:
                    self._check_transfer(arch, task, tuple(input_shape), n_classes)
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
                "transfer": self.transfers,
            }
        ]

    def _check_transfer(self, arch: Arch, task: str, input_shape: tuple, n_classes: int) -> None:
        """Plan this warm start's transfer on real models; log it in one line; none fits: skip."""
        import keras

        source = keras.models.load_model(self.models[task], safe_mode=True, compile=False)
        child = self.space.build(arch, input_shape, n_classes)
        copied, skipped = transfer_plan(child, source)
        self.transfers.append({"task": task, "arch": arch, "copied": copied, "skipped": skipped})
        why = "; ".join(f"{name}: {reason}" for name, reason in skipped.items())
        if not copied:
            k = json.dumps(arch, sort_keys=True)
            self.no_transfer[k] = f"warm start from {task}: not initialised from its model ({why})"
            print(f"nas@meta: {self.no_transfer[k]}")
        else:
            print(
                f"nas@meta: warm start from {task}: {len(copied)} layer(s) initialised from its "
                f"model ({', '.join(copied)})" + (f"; skipped {why}" if skipped else "")
            )

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


def transfer_plan(model, source) -> tuple[list[str], dict[str, str]]:
    """Which layers of `model` may take `source`'s weights, and why each other one may not.

    No layer when the input shapes differ (filters learned on 8 x 8 images do not fit 28 x 28 ones:
    issue 17 measured such children 0.11-0.28 below a fresh baseline); else per layer: same
    name and same weight shapes, never the output layer (its classes are the source's).
    """
    mine, theirs = tuple(model.input_shape[1:]), tuple(source.input_shape[1:])
    if mine != theirs:
        return [], {"input": f"the source's input shape {theirs} is not the target's {mine}"}
    by_name = {layer.name: layer for layer in source.layers}
    copied, skipped = [], {}
    for layer in model.layers:
        if layer.name == "output" or not layer.weights:
            continue
        other = by_name.get(layer.name)
        shapes = [tuple(w.shape) for w in layer.weights]
        if other is None:
            skipped[layer.name] = "not in the source"
        elif [tuple(w.shape) for w in other.weights] != shapes:
            skipped[layer.name] = f"shapes {[tuple(w.shape) for w in other.weights]} != {shapes}"
        else:
            copied.append(layer.name)
    return copied, skipped


def transfer_weights(model, source_path: str | Path) -> int:
    """Copy the weights `transfer_plan` allows; return how many layers were copied."""
    import keras

    source = keras.models.load_model(source_path, safe_mode=True, compile=False)
    copied, _ = transfer_plan(model, source)
    for name in copied:
        model.get_layer(name).set_weights(source.get_layer(name).get_weights())
    return len(copied)


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
    returns (TrainResult). `target_x` (the target's samples, every split): the tasks with the
    same data or a split of it are left out (`tasks.exclusion`), listed in `excluded`; tasks
    built from `digits_xy` (the digits target's train split) are kept and listed in
    `same_data`. Returns the JSON payload of the metadata stage.
    """
    from leanml import measure

    rows, models, tasks_out = [], {}, []
    rng = np.random.default_rng(seed)
    kept, excluded = select_sources(bundled_tasks(seed, synthetic, digits_xy), target_x)
    same_data = [t.name for t in kept if t.from_target_train]
    for name, splits in (split_task(task, seed) for task in kept):
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
    payload = {"rows": rows, "models": models, "tasks": tasks_out, "excluded": excluded}
    return payload | {"same_data": same_data}
