"""Weight-sharing NAS (ENAS, Pham et al. 2018): the RL controller learns on a shared supernet.

The first `ask` runs the search, which trains no child on its own:

1. `warmup_steps` supernet batches, each through a uniformly sampled child (the weights of
   every op get some training before the controller judges them);
2. `updates` rounds of: `supernet_steps` batches, each through a child the controller samples;
   then `children_per_update` children sampled by the controller and scored on the first
   `reward_samples` val samples *with the shared weights* (no training: a forward pass), and
   one REINFORCE update of the controller on those rewards. The controller and its update are
   `leanml.nas.rl`'s (`RLNAS`: the LSTM or independent `Policy`, moving-average baseline,
   entropy bonus), driven here by the supernet's rewards instead of full trainings;
3. `candidates` children sampled from the trained controller, ranked by their shared-weight
   reward; the best `children` distinct ones (after the baseline, if `nas.include_baseline`)
   are proposed to the trial engine, which trains them from scratch like any other strategy's.

Which weights are shared, and how: see `leanml.nas.supernet`. Everything is seeded (the
supernet's initial weights, its batches, dropout, the controller), so the search is re-derived
identically after a kill: the resume checkpoint only holds the trained children, and a resumed
run repeats the (cheap) supernet phase to the same proposals. The shared-weight reward is val
accuracy; `nas.reward` (e.g. a params target) scores the children trained by the engine.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import numpy as np

from leanml.nas.rl import RLNAS
from leanml.nas.space import Arch
from leanml.nas.supernet import FusedAdam, Supernet
from leanml.trials.base import Algorithm, Report, key


class ENAS(Algorithm):
    """ENAS: supernet + REINFORCE controller, then its best children trained from scratch."""

    def __init__(self, *args: Any, data: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.data = data
        self.proposed = False
        self.log: list[dict] = []
        self.metrics: dict[str, float] = {}

    def ask(self) -> list[Arch]:
        if self.proposed:
            return []  # one batch: the final children
        self.proposed = True
        first = self.take_initial()
        seen = {key(arch) for arch in first}
        best = [arch for arch in self.search() if key(arch) not in seen]
        return first + best[: self.cfg.enas.children]

    def tell(self, configs, scores) -> None:
        pass  # the controller learnt from the supernet; the trained children are the result

    def search(self) -> list[Arch]:
        """The supernet phase; returns the sampled candidates, best shared-weight reward first."""
        cfg, space, data = self.cfg.enas, self.space, self.data
        start = time.perf_counter()
        net = Supernet(
            space, data.input_shape, data.n_classes, self.seed, cfg.supernet_learning_rate
        )
        # RLNAS reads its settings from a `rl` section: the enas section has every one of them
        controller = RLNAS(space, SimpleNamespace(rl=cfg), self.seed, self.budget)
        # the same Adam, fused: a hundred updates cost seconds instead of tens of seconds
        policy = controller.policy
        policy.optimizer = FusedAdam(cfg.learning_rate, policy.variables)
        self.controller = controller  # kept: its policy is the search's result too
        x_val = data.val.x[: cfg.reward_samples]
        y_val = data.val.y[: cfg.reward_samples]
        batches = _batches(len(data.train.y), cfg.batch_size, np.random.default_rng([self.seed, 3]))
        step = 0

        def train(arch: Arch) -> float:
            nonlocal step
            index = next(batches)
            step += 1
            return net.train_step(arch, data.train.x[index], data.train.y[index], step)

        uniform = np.random.default_rng([self.seed, 5])
        for _ in range(cfg.warmup_steps):
            train(space.sample(uniform))
        for _ in range(cfg.updates):
            losses = [
                train(space.decode(controller.policy.sample(controller.rng)))
                for _ in range(cfg.supernet_steps)
            ]
            children = controller.ask()
            rewards = [net.accuracy(arch, x_val, y_val) for arch in children]
            controller.tell(children, rewards)
            controller.log[-1]["supernet_loss"] = float(np.mean(losses))
        scored: dict[str, tuple[float, int, Arch]] = {}
        for i in range(cfg.candidates):
            arch = space.decode(controller.policy.sample(controller.rng))
            if key(arch) not in scored:
                scored[key(arch)] = (net.accuracy(arch, x_val, y_val), i, arch)
        ranked = sorted(scored.values(), key=lambda s: (-s[0], s[1]))
        self.log = [{"phase": "controller", **entry} for entry in controller.log]
        self.log += [
            {
                "phase": "candidate",
                "rank": r + 1,
                "shared_val_accuracy": acc,
                "sample": i,
                "architecture": space.describe(arch),
            }  # fmt: skip
            for r, (acc, i, arch) in enumerate(ranked)
        ]
        self.metrics = {
            "controller_updates": len(controller.log),
            "supernet_steps": step,
            "supernet_train_samples": step * cfg.batch_size,
            # forward passes of scoring: rewards, then candidates
            "supernet_scored_children": cfg.updates * cfg.children_per_update + len(scored),
            "supernet_seconds": time.perf_counter() - start,
        }
        return [arch for _, _, arch in ranked]

    def report(self) -> Report:
        """The controller's updates and the ranked candidates; per-update reward and entropy."""
        steps = [
            (
                e["update"],
                {"controller_mean_reward": e["mean_reward"], "controller_entropy": e["entropy"]},
            )
            for e in self.log
            if e["phase"] == "controller"
        ]
        return Report(log=list(self.log), steps=steps, metrics=dict(self.metrics))


def _batches(n: int, size: int, rng: np.random.Generator):
    """Endless minibatch indices: a fresh permutation each epoch (the last batch may be short)."""
    while True:
        order = rng.permutation(n)
        for i in range(0, n, size):
            yield order[i : i + size]
