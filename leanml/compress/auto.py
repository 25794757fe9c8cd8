"""compress@auto: compression policy search (AMC, He et al. 2018; HAQ, Wang et al. 2019).

The policy is one sparsity and one bit width per Dense/Conv2D layer: prune to those per-layer
sparsities (magnitude, gradual, masks fixed), then share each kernel's survivors among 2^bits
k-means centroids, then encode sparse and entropy coded (what `combined` does with one setting
for every layer). The policies are searched by one of the project's search algorithms (GA, PSO,
BO, random, TPE) through the shared trial engine: one budget, the cache, the resume checkpoint,
one nested MLflow run per trial. Each candidate is scored on val after a short fine-tune
(`trial_epochs`, the low fidelity) by

    score = val accuracy − max(0, log2(artifact bytes / target bytes))

so any policy over the size target loses a whole accuracy unit per doubling (a constraint, in
practice) while the search moves freely below it. The winner is compressed again with the full
fine-tune (`epochs`) and is the stage's variant. Test data is never read by the search.
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np

from leanml.compress.base import WEIGHTED, Method, Variant, sequential_layers
from leanml.compress.cluster import cluster_model, strip_clusters
from leanml.compress.encode import encode
from leanml.compress.prune import prune_unstructured
from leanml.compress.ptq import save_quantized
from leanml.data import Splits
from leanml.errors import LeanmlError
from leanml.io import write_csv
from leanml.search.space import Dim, Space
from leanml.train import evaluate, seed_everything
from leanml.trials import runner
from leanml.trials.base import Config, Trial
from leanml.trials.checkpoint import Checkpoint

# One doubling over the target costs as much as the whole accuracy range.
OVER_TARGET_PENALTY = 1.0


def layer_names(model: keras.Model) -> list[str]:
    """The Dense/Conv2D layers a policy sets, in order."""
    return [layer.name for layer in sequential_layers(model, "auto") if isinstance(layer, WEIGHTED)]


def policy_of(config: Config, names: list[str]) -> list[tuple[float, int]]:
    """(sparsity, bits) per layer from a configuration `{<layer>.sparsity, <layer>.bits}`."""
    return [(float(config[f"{n}.sparsity"]), int(config[f"{n}.bits"])) for n in names]


def describe(policy: list[tuple[float, int]], names: list[str]) -> str:
    """One readable line: `dense_0 s0.91 b2 · output s0.40 b3`."""
    return " · ".join(f"{n} s{s:.2f} b{b}" for n, (s, b) in zip(names, policy, strict=True))


class Auto(Method):
    name = "auto"
    columns = (
        "target_bytes",
        "algorithm",
        "policy",
        "trial",
        "trial_val_accuracy",
        "sparsity_achieved",
    )

    def __init__(self, cfg: Any, fine_tune: Any, seed: int):
        super().__init__(cfg, fine_tune, seed)
        self.winner: dict[str, Any] | None = None
        self.trials: list[Trial] = []

    # --- the search space and the score -------------------------------------------------
    def space(self, names: list[str]) -> Space:
        (s_low, s_high), (b_low, b_high) = self.cfg.sparsity, self.cfg.bits
        dims = []
        for n in names:
            dims.append(Dim(f"{n}.sparsity", "real", float(s_low), float(s_high)))
            dims.append(Dim(f"{n}.bits", "int", float(b_low), float(b_high)))
        return Space(dims)

    def target(self, ref: dict[str, Any]) -> int:
        """The artifact size limit in bytes: `target_bytes`, or float32 weight bytes / ratio."""
        if self.cfg.target_bytes is not None:
            return int(self.cfg.target_bytes)
        return max(1, math.floor(ref["weight_bytes"] / self.cfg.target_ratio))

    @staticmethod
    def score(target: int):
        def scalar(trial: Trial) -> float:
            if not trial.ok or trial.file_bytes <= 0:
                return -1.0 - OVER_TARGET_PENALTY * 10
            over = max(0.0, math.log2(trial.file_bytes / target))
            return trial.val_accuracy - OVER_TARGET_PENALTY * over

        return scalar

    def initial(self, names: list[str]) -> list[Config]:
        """The uniform policies of `uniform_first` (combined's hand-set kind), proposed first."""
        return [
            {k: v for n in names for k, v in ((f"{n}.sparsity", s), (f"{n}.bits", b))}
            for s, b in self.cfg.uniform_first
        ]

    # --- one policy applied ------------------------------------------------------------
    def compress(
        self, baseline: keras.Model, data: Splits, policy: list[tuple[float, int]], epochs: int
    ) -> tuple[keras.Model, dict[int, Any]]:
        """Prune each layer to its sparsity (fine-tuning `epochs`), then k-means its survivors
        into 2^bits shared values; the plain model and its clustered kernels by weight index."""
        pruned = prune_unstructured(
            baseline,
            data,
            sparsity=[s for s, _ in policy],
            criterion="magnitude",
            scope="per_layer",
            epochs=epochs,
            ramp=0.6,
            frequency=10,
            fine=self.fine_tune,
        )
        shared = cluster_model(pruned, [b for _, b in policy], self.cfg.init, self.seed, "auto")
        return strip_clusters(shared)

    def objective(self, baseline: keras.Model, data: Splits, names: list[str]):
        """A runner `Objective`: the policy at low fidelity, scored on val, sized on disk."""

        def trial(config: Config, seed: int) -> dict[str, Any]:
            seed_everything(seed)
            model, tensors = self.compress(
                baseline, data, policy_of(config, names), self.cfg.trial_epochs
            )
            with tempfile.TemporaryDirectory(prefix="leanml-auto-") as work:
                packed = Path(work) / "trial.packed"
                encode(model, packed, quantized=tensors, sparse=True, entropy_coded=True)
                size = packed.stat().st_size
            nonzero = sum(int(np.count_nonzero(w)) for w in model.get_weights())
            return {
                "val_accuracy": evaluate(model, data.val)["accuracy"],
                "params": nonzero,
                "file_bytes": size,
                "epochs_run": self.cfg.trial_epochs,
                "status": "ok",
            }

        return trial

    # --- the stage's hooks ---------------------------------------------------------------
    def prepare(self, baseline: keras.Model, data: Splits, ref: dict, ctx: Any) -> None:
        """Search the policy (before `settings`): trials, checkpoint, nested runs, trials.csv."""
        from leanml import search

        names = layer_names(baseline)
        space = self.space(names)
        target = self.target(ref)
        score = self.score(target)
        algo = self.cfg.algorithm
        scfg = self.cfg.search_section()
        initial = [space.project(c) for c in self.initial(names)]
        algorithm = search.create(algo, space, scfg, self.seed, self.cfg.budget, initial)

        def on_trial(t: Trial) -> None:
            tags = {"status": t.status, "from_cache": t.from_cache, "seed": t.seed}
            with ctx.run.child(f"trial-{t.proposal:03d}", t.config, tags) as child:
                child.log_metrics(
                    {
                        "val_accuracy": t.val_accuracy,
                        "artifact_bytes": t.file_bytes,
                        "nonzero_params": t.params,
                        "score": t.score,
                        "evaluation": t.evaluation,
                        "epochs": t.epochs,
                        "seconds": t.seconds,
                    }
                )
                if t.error:
                    child.set_tags({"error": t.error})

        self.trials = runner.run(
            algorithm,
            self.objective(baseline, data, names),
            budget=self.cfg.budget,
            seed=self.seed,
            score=score,
            checkpoint=Checkpoint(ctx.checkpoint, ctx.fingerprint),
            on_trial=on_trial,
            label=ctx.label,
        )
        best = runner.best_trial(self.trials)
        if best is None:
            first = next((t.error for t in self.trials if t.error), "no trial ran")
            raise LeanmlError(f"{ctx.label}: every policy failed; first error: {first}")
        policy = policy_of(best.config, names)
        ratio = self.cfg.target_ratio
        self.winner = {
            "name": f"auto_r{ratio:g}" if self.cfg.target_bytes is None else f"auto_{target}b",
            "target_bytes": target,
            "algorithm": algo,
            "policy": describe(policy, names),
            "trial": best.proposal,
            "trial_val_accuracy": best.val_accuracy,
            "layers": {
                n: {"sparsity": s, "bits": b} for n, (s, b) in zip(names, policy, strict=True)
            },
        }
        rows = [
            {
                "proposal": t.proposal,
                "evaluation": t.evaluation,
                **{d: t.config.get(d) for d in space.names},
                "val_accuracy": t.val_accuracy,
                "artifact_bytes": t.file_bytes,
                "within_target": int(0 < t.file_bytes <= target),
                "nonzero_params": t.params,
                "score": t.score,
                "epochs": t.epochs,
                "status": t.status,
                "from_cache": t.from_cache,
                "seed": t.seed,
                "error": t.error,
            }
            for t in self.trials
        ]
        write_csv(ctx.trials, rows, list(rows[0]))
        print(
            f"{ctx.label}: {algo} over {len(names)} layers, {best.evaluation} of "
            f"{self.cfg.budget} policies; best within {target} bytes: {self.winner['policy']} "
            f"(val {best.val_accuracy:.4f} at {best.file_bytes} bytes after "
            f"{self.cfg.trial_epochs} fine-tune epochs)",
            file=sys.stderr,
        )

    def metrics(self) -> dict[str, Any]:
        """The search's own numbers for metrics.json (beside each variant's)."""
        if self.winner is None:
            return {}
        done = [t for t in self.trials if t.ok]
        target = self.winner["target_bytes"]
        return {
            "search.target_bytes": target,
            "search.evaluations": max((t.evaluation for t in self.trials), default=0),
            "search.cache_hits": sum(t.from_cache for t in self.trials),
            "search.within_target": sum(0 < t.file_bytes <= target for t in done),
            "search.best_trial": self.winner["trial"],
            "search.best_trial_val_accuracy": self.winner["trial_val_accuracy"],
        }

    def settings(self) -> list[dict[str, Any]]:
        if self.winner is None:
            raise LeanmlError("compress.auto: the policy search has not run (call prepare first)")
        return [self.winner]

    def apply(
        self, baseline: keras.Model, data: Splits, setting: dict[str, Any], out_dir: Path
    ) -> Variant:
        names = list(setting["layers"])
        policy = [(v["sparsity"], v["bits"]) for v in setting["layers"].values()]
        model, tensors = self.compress(baseline, data, policy, self.cfg.epochs)
        shown = {k: v for k, v in setting.items() if k != "layers"}
        shown.update({f"{n}.{k}": v for n in names for k, v in setting["layers"][n].items()})
        return save_quantized(shown, model, tensors, out_dir, sparsity=True)
