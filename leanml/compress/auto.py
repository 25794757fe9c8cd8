"""compress@auto: compression policy search (AMC, He et al. 2018; HAQ, Wang et al. 2019).

A policy is a k-means bit width per Dense/Conv2D layer (HAQ's mixed precision) and, with `scope:
per_layer`, each layer's relative density (AMC's per-layer sparsity); its overall sparsity is
then fitted so that the file meets the size target (`policy.py`: every trial uses the whole byte
budget, none is spent over it). Applied as `combined` does: gradual magnitude pruning with masks
fixed, each kernel's survivors shared among 2^bits k-means centroids, sparse entropy-coded
`.packed`. The policies are searched by one of the project's search algorithms (GA, PSO, BO,
random, TPE) through the shared trial engine: one budget, the cache, the resume checkpoint, one
nested MLflow run per trial. Each candidate is scored on val after a short fine-tune
(`trial_epochs`, the low fidelity) by

    score = val accuracy − max(0, log2(artifact bytes / target bytes))

(a policy that still ends over the target loses a whole accuracy unit per doubling). The best
`finalists` are fine-tuned fully (`epochs`) and the best val score there is the stage's variant.
Test data is never read by the search.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np

from leanml.compress import policy as policies
from leanml.compress.base import WEIGHTED, Method, Variant, recording, sequential_layers
from leanml.compress.policy import Policy, packed_bytes
from leanml.compress.ptq import save_quantized
from leanml.data import Splits
from leanml.errors import LeanmlError
from leanml.io import write_csv
from leanml.search.space import Dim, Space
from leanml.train import evaluate, seed_everything
from leanml.trials import runner
from leanml.trials.base import Config, Trial, key
from leanml.trials.checkpoint import Checkpoint

# One doubling over the target costs as much as the whole accuracy range.
OVER_TARGET_PENALTY = 1.0
KEEP_LOW = 0.05  # per_layer: the least relative density a layer may get


def penalised(val_accuracy: float, size: int, target: int) -> float:
    """Val accuracy, less one unit per doubling of the artifact over the target."""
    return val_accuracy - OVER_TARGET_PENALTY * max(0.0, math.log2(size / target))


def layer_names(model: keras.Model) -> list[str]:
    """The Dense/Conv2D layers a policy sets, in order."""
    return [layer.name for layer in sequential_layers(model, "auto") if isinstance(layer, WEIGHTED)]


class Auto(Method):
    name = "auto"
    columns = (
        "target_bytes",
        "algorithm",
        "scope",
        "policy",
        "sparsity",
        "trial",
        "trial_val_accuracy",
        "sparsity_achieved",
    )

    def __init__(self, cfg: Any, fine_tune: Any, seed: int):
        super().__init__(cfg, fine_tune, seed)
        self.winner: dict[str, Any] | None = None
        self.trials: list[Trial] = []
        # finalist trial -> (val accuracy, bytes, val loss) at full fidelity
        self.final: dict[int, tuple[float, int, float]] = {}
        self._models: dict[str, tuple[keras.Model, dict]] = {}  # the finalists' models
        self._curves: dict[str, list[float]] = {}  # and their val accuracy per epoch
        self._fits: dict[Policy, float] = {}  # a policy's fitted overall sparsity
        self._target = 0  # bytes, set by `prepare`

    def finalists(self, start: list[Config]) -> list[Trial]:
        """The `finalists` best distinct policies by their low-fidelity score, and the uniform
        `start` policies (the hand-set kind competes at full fidelity, as the baseline does in
        a search: a mixed policy wins only by scoring higher on val)."""
        done = [t for t in self.trials if t.ok and not t.from_cache]
        ranked = sorted(done, key=lambda t: (-t.score, t.extra.get("val_loss", 0.0), t.proposal))
        starts = {key(c) for c in start}
        chosen = ranked[: self.cfg.finalists]
        return chosen + [t for t in ranked if key(t.config) in starts and t not in chosen]

    def full_fidelity(
        self, baseline: keras.Model, data: Splits, config: Config, names: list[str]
    ) -> tuple[float, int, float]:
        """(val accuracy, packed bytes, val loss) of a policy fine-tuned `epochs` from the
        method's seed: exactly the variant `apply` makes of it (kept, not made twice)."""
        t = self.fitted(baseline, data, Policy.of(config, names))  # before the seeding
        seed_everything(self.seed)  # as `run.run` seeds each variant
        with recording() as curve:
            model, tensors = self.compress(baseline, data, config, names, self.cfg.epochs, t)
        self._models[key(config)] = (model, tensors)
        self._curves[key(config)] = curve
        val = evaluate(model, data.val)
        return val["accuracy"], packed_bytes(model, tensors), val["loss"]

    # --- the search space and the score -------------------------------------------------
    def space(self, names: list[str]) -> Space:
        """`<layer>.bits`, and with scope per_layer `<layer>.keep` (relative density)."""
        b_low, b_high = self.cfg.bits
        dims = []
        for n in names:
            if self.cfg.scope == "per_layer":
                dims.append(Dim(f"{n}.keep", "real", KEEP_LOW, 1.0))
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
            return penalised(trial.val_accuracy, trial.file_bytes, target)

        return scalar

    def initial(self, names: list[str]) -> list[Config]:
        """Uniform policies, the same bits everywhere (`start_bits`: combined's hand-set kind)."""
        out = []
        for bits in self.cfg.start_bits:
            config: Config = {f"{n}.bits": bits for n in names}
            if self.cfg.scope == "per_layer":
                config.update({f"{n}.keep": 1.0 for n in names})
            out.append(config)
        return out

    # --- one policy applied ------------------------------------------------------------
    def fitted(self, baseline: keras.Model, data: Splits, policy: Policy) -> float:
        """The policy's overall sparsity, fitted to the target once (`policy.fit`)."""
        if policy not in self._fits:
            bounds = (float(self.cfg.sparsity[0]), float(self.cfg.sparsity[1]))
            self._fits[policy] = policies.fit(
                baseline, data, policy, self._target, bounds, self.cfg.init, self.seed
            )
        return self._fits[policy]

    def compress(
        self,
        baseline: keras.Model,
        data: Splits,
        config: Config,
        names: list[str],
        epochs: int,
        t: float,
    ) -> tuple[keras.Model, dict[int, Any]]:
        """The policy of `config` at overall sparsity t (fitted: `fitted`, which builds models,
        so it runs before the caller seeds), fine-tuned `epochs`: the plain model and its
        clustered kernels by weight index."""
        return policies.apply(
            baseline,
            data,
            Policy.of(config, names),
            t,
            epochs=epochs,
            fine=self.fine_tune,
            init=self.cfg.init,
            seed=self.seed,
        )

    def objective(self, baseline: keras.Model, data: Splits, names: list[str]):
        """A runner `Objective`: the policy at low fidelity, scored on val, sized on disk."""

        def trial(config: Config, seed: int) -> dict[str, Any]:
            t = self.fitted(baseline, data, Policy.of(config, names))  # before the seeding
            seed_everything(seed)
            with recording() as curve:
                model, tensors = self.compress(
                    baseline, data, config, names, self.cfg.trial_epochs, t
                )
            size = packed_bytes(model, tensors)
            nonzero = sum(int(np.count_nonzero(w)) for w in model.get_weights())
            val = evaluate(model, data.val)
            return {
                "val_accuracy": val["accuracy"],
                "val_loss": val["loss"],  # breaks ties of accuracy (a few hundred val samples)
                "sparsity": t,  # fitted to the target
                "params": nonzero,
                "file_bytes": size,
                "epochs_run": self.cfg.trial_epochs,
                "status": "ok",
                "val_curve": curve,  # per fine-tune epoch, steps of the trial's MLflow run
            }

        return trial

    # --- the stage's hooks ---------------------------------------------------------------
    def prepare(self, baseline: keras.Model, data: Splits, ref: dict, ctx: Any) -> None:
        """Search the policy (before `settings`): trials, checkpoint, nested runs, trials.csv."""
        from leanml import search

        names = layer_names(baseline)
        space = self.space(names)
        target = self._target = self.target(ref)
        score = self.score(target)
        algo = self.cfg.algorithm
        scfg = self.cfg.search_section()
        initial = [space.project(c) for c in self.initial(names)]
        algorithm = search.create(algo, space, scfg, self.seed, self.cfg.budget, initial)

        def on_trial(t: Trial) -> None:
            tags = {"status": t.status, "from_cache": t.from_cache, "seed": t.seed}
            with ctx.run.child(f"trial-{t.proposal:03d}", t.config, tags, t.span) as child:
                child.log_metrics(
                    {
                        "val_accuracy": t.val_accuracy,
                        "artifact_bytes": t.file_bytes,
                        "n_nonzero_params": t.params,
                        "score": t.score,
                        "evaluation": t.evaluation,
                        "epochs": t.epochs,
                        "seconds": t.seconds,
                    }
                )
                if t.extra.get("val_curve"):  # per fine-tune epoch
                    child.log_curve("epoch_val_accuracy", t.extra["val_curve"])
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
        if runner.best_trial(self.trials) is None:
            first = next((t.error for t in self.trials if t.error), "no trial ran")
            raise LeanmlError(f"{ctx.label}: every policy failed; first error: {first}")
        # The low fidelity ranks, the full fidelity decides: the top `finalists` policies are
        # fine-tuned `epochs` (from the seed the variant is made with) and the best val score
        # there wins, which spares the winner's curse of picking the luckiest short fine-tune.
        final = {}
        for trial in self.finalists(initial):
            final[trial.proposal] = self.full_fidelity(baseline, data, trial.config, names)
            val, size, loss = final[trial.proposal]
            tags = {"trial": trial.proposal}
            with ctx.run.child(f"finalist-{trial.proposal:03d}", trial.config, tags) as child:
                child.log_metrics({"val_accuracy": val, "artifact_bytes": size, "val_loss": loss})
                child.log_curve("epoch_val_accuracy", self._curves[key(trial.config)])

        def rank(t: Trial) -> tuple:  # val score, then val cross-entropy, then the earlier
            val, size, loss = final[t.proposal]
            return (penalised(val, size, target), -loss, -t.proposal)

        best = max((t for t in self.trials if t.proposal in final), key=rank)
        self.winner = {
            "name": f"auto_r{self.cfg.target_ratio:g}"
            if self.cfg.target_bytes is None
            else f"auto_{target}b",
            "target_bytes": target,
            "algorithm": algo,
            "scope": self.cfg.scope,
            "policy": Policy.of(best.config, names).describe(best.extra["sparsity"]),
            "trial": best.proposal,
            "trial_val_accuracy": best.val_accuracy,
            "sparsity": best.extra["sparsity"],
            "config": dict(best.config),
            "names": names,
        }
        self.final = final
        rows = [
            {
                "proposal": t.proposal,
                "evaluation": t.evaluation,
                **{d: t.config.get(d) for d in space.names},
                "sparsity": t.extra.get("sparsity"),
                "val_accuracy": t.val_accuracy,
                "artifact_bytes": t.file_bytes,
                "within_target": int(0 < t.file_bytes <= target),
                "final_val_accuracy": final[t.proposal][0] if t.proposal in final else None,
                "final_artifact_bytes": final[t.proposal][1] if t.proposal in final else None,
                "val_loss": t.extra.get("val_loss"),
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
            f"{ctx.label}: {algo} over {len(names)} layers ({self.cfg.scope} sparsity), "
            f"{best.evaluation} of "
            f"{self.cfg.budget} policies; best within {target} bytes: {self.winner['policy']} "
            f"(val {best.val_accuracy:.4f} at {best.file_bytes} bytes after "
            f"{self.cfg.trial_epochs} fine-tune epochs; {final[best.proposal][0]:.4f} at "
            f"{final[best.proposal][1]} bytes after {self.cfg.epochs}, best of {len(final)} "
            "finalists)",
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
            "search.best_trial.proposal": self.winner["trial"],
            "search.best_trial.val_accuracy": self.winner["trial_val_accuracy"],
            "search.finalists": len(self.final),
            "search.final_val_accuracy": self.final[self.winner["trial"]][0],
        }

    def settings(self) -> list[dict[str, Any]]:
        if self.winner is None:
            raise LeanmlError("compress.auto: the policy search has not run (call prepare first)")
        return [self.winner]

    def apply(
        self, baseline: keras.Model, data: Splits, setting: dict[str, Any], out_dir: Path
    ) -> Variant:
        config, names = setting["config"], setting["names"]
        if key(config) in self._models:  # made by `full_fidelity` from the same seed
            model, tensors = self._models.pop(key(config))
            curve = self._curves.pop(key(config))
        else:  # seeded by `run.run`; the fitted sparsity is in the setting (no model built)
            t = setting["sparsity"]
            curve = None  # recorded by `run.run` around this call
            model, tensors = self.compress(baseline, data, config, names, self.cfg.epochs, t)
        shown = {k: v for k, v in setting.items() if k not in ("config", "names")}
        shown.update(config)  # the policy's values, one column each in MLflow
        variant = save_quantized(shown, model, tensors, out_dir, sparsity=True)
        if curve:  # the finalist's fine-tune: the variant's own
            variant.extra["val_curve"] = curve
        return variant
