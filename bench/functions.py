"""Search algorithms alone on classic test functions: simple regret over many seeds (issue 12).

Every registered algorithm (`leanml.search.ALGORITHMS`) is driven through the real engine
(`search.create` + `trials.runner.run`: budget, cache, bounds) on a synthetic objective with a
known global minimum, so the algorithms are compared without Keras and without noise. Score
maximised = −f; simple regret = best f found − f*. Per (function, algorithm): mean, median,
std and a bootstrap 95% CI of the mean over seeds, and a Wilcoxon signed-rank test against
random search (seed i of one algorithm paired with seed i of random).

    python bench/functions.py [--budget 40] [--seeds 20] [--acq-points 1000]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from leanml import params, search
from leanml.search.space import Dim, Space
from leanml.trials import runner
from leanml.trials.base import Config, Trial

OUT = Path(__file__).with_name("out") / "functions.md"


@dataclass(frozen=True)
class TestFunction:
    """A function to minimise over a typed space, with its known global minimum."""

    name: str
    space: Space
    f: Callable[[Config], float]
    optimum: float  # f* (the global minimum)
    argmin: Config  # one point where f = f*


def branin(c: Config) -> float:
    x1, x2 = c["x1"], c["x2"]
    b, cc, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + cc * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def hartmann6(c: Config) -> float:
    x = np.array([c[f"x{i}"] for i in range(1, 7)])
    return float(-_H_ALPHA @ np.exp(-(_H_A * (x - _H_P) ** 2).sum(axis=1)))


def ackley(c: Config) -> float:
    x = np.array([c[k] for k in sorted(c)])
    d = len(x)
    return float(
        -20 * math.exp(-0.2 * math.sqrt((x**2).sum() / d))
        - math.exp(np.cos(2 * math.pi * x).sum() / d)
        + 20
        + math.e
    )


# The mixed function: each choice of `kind` moves the best integers and learning rate and adds
# its own floor, so a search that settles on a good-looking but wrong category stays above 0.
MIXED_KINDS = {  # kind: (best n1, best n2, best log10(lr), floor)
    "a": (3, 17, -3.0, 0.5),
    "b": (14, 6, -1.5, 0.0),
    "c": (8, 10, -2.5, 0.2),
}


def mixed(c: Config) -> float:
    n1, n2, lg, floor = MIXED_KINDS[c["kind"]]
    return (
        ((c["n1"] - n1) / 5) ** 2
        + ((c["n2"] - n2) / 5) ** 2
        + (math.log10(c["lr"]) - lg) ** 2
        + 4 * (c["x"] - 0.3) ** 2
        # an interaction: the best x depends on n1 too (not separable), zero at the optimum
        + 0.5 * ((c["x"] - 0.3) * (c["n1"] - n1) / 5) ** 2
        + floor
    )


def _reals(names: list[str], low: float, high: float) -> Space:
    return Space([Dim(n, "real", low, high) for n in names])


FUNCTIONS = {
    fn.name: fn
    for fn in (
        TestFunction(
            "branin",
            Space([Dim("x1", "real", -5.0, 10.0), Dim("x2", "real", 0.0, 15.0)]),
            branin,
            5 / (4 * math.pi),  # 0.397887…, at three points
            {"x1": math.pi, "x2": 2.275},
        ),
        TestFunction(
            "hartmann6",
            _reals([f"x{i}" for i in range(1, 7)], 0.0, 1.0),
            hartmann6,
            -3.322368011415511,
            dict(
                zip(
                    [f"x{i}" for i in range(1, 7)],
                    [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573],
                    strict=True,
                )
            ),
        ),
        TestFunction(
            "ackley5",
            _reals([f"x{i}" for i in range(1, 6)], -32.768, 32.768),
            ackley,
            0.0,
            {f"x{i}": 0.0 for i in range(1, 6)},
        ),
        TestFunction(
            "mixed",
            Space(
                [
                    Dim("n1", "int", 0, 20),
                    Dim("n2", "int", 0, 20),
                    Dim("lr", "real", 1e-4, 1e-1, log=True),
                    Dim("x", "real", 0.0, 1.0),
                    Dim("kind", "categorical", choices=tuple(MIXED_KINDS)),
                ]
            ),
            mixed,
            0.0,
            {"n1": 14, "n2": 6, "lr": 10**-1.5, "x": 0.3, "kind": "b"},
        ),
    )
}


def objective_for(fn: TestFunction) -> Callable[[Config, int], dict[str, Any]]:
    """A runner objective: f's value travels as `f`, its negative as the maximised number."""

    def objective(config: Config, seed: int) -> dict[str, Any]:
        value = fn.f(config)
        return {"val_accuracy": -value, "params": 0, "file_bytes": 0, "status": "ok", "f": value}

    return objective


def score(trial: Trial) -> float:
    """−f; a failed trial cannot happen here (f is finite everywhere), so it would be a bug."""
    if not trial.ok:
        raise RuntimeError(f"trial {trial.proposal} {trial.status}: {trial.error}")
    return -trial.extra["f"]


def simple_regret(trials: list[Trial], optimum: float) -> float:
    """Best f among the trained trials minus the known minimum f*."""
    return min(t.extra["f"] for t in trials if not t.from_cache) - optimum


def search_cfg(budget: int, acq_points: int) -> Any:
    """The `search` section: default algorithm settings, sizes for a `budget`-evaluation run."""
    return params.parse(
        {
            "search": {
                "budget": budget,
                # 8 per generation / swarm step: 5 generations or iterations in 40 evaluations
                "ga": {"population": 8},
                "pso": {"particles": 8},
                # skopt's own default start (10 random points), then 30 GP-guided asks
                "bayes": {"initial_points": 10, "acq_points": acq_points},
            }
        }
    ).search


def run_one(fn: TestFunction, name: str, seed: int, cfg: Any) -> dict[str, Any]:
    """One search; also checks the engine's promises (budget, bounds) from the outside."""
    calls = []
    objective = objective_for(fn)

    def counted(config: Config, s: int) -> dict[str, Any]:
        calls.append(config)
        return objective(config, s)

    algo = search.create(name, fn.space, cfg, seed, cfg.budget)
    start = time.perf_counter()
    trials = runner.run(algo, counted, budget=cfg.budget, seed=seed, score=score, progress=False)
    return {
        "regret": simple_regret(trials, fn.optimum),
        "seconds": time.perf_counter() - start,
        "calls": len(calls),
        "out_of_bounds": sum(not fn.space.contains(c) for c in calls),
        "cached": sum(t.from_cache for t in trials),
    }


def bootstrap_ci(values: list[float], n: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean."""
    rng = np.random.default_rng(seed)
    x = np.asarray(values)
    means = x[rng.integers(0, len(x), size=(n, len(x)))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def wilcoxon_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided paired Wilcoxon signed-rank p (zero differences dropped); None if all equal."""
    from scipy.stats import wilcoxon

    if all(x == y for x, y in zip(a, b, strict=True)):
        return None
    return float(wilcoxon(a, b).pvalue)


def summarise(results: dict[tuple[str, str], list[dict]]) -> list[dict[str, Any]]:
    rows = []
    for (fname, name), runs in results.items():
        regrets = [r["regret"] for r in runs]
        base = [r["regret"] for r in results.get((fname, "random"), [])]
        low, high = bootstrap_ci(regrets)
        rows.append(
            {
                "function": fname,
                "algorithm": name,
                "mean": statistics.mean(regrets),
                "median": statistics.median(regrets),
                "std": statistics.stdev(regrets) if len(regrets) > 1 else 0.0,
                "ci": (low, high),
                "p": wilcoxon_p(regrets, base) if name != "random" and base else None,
                "beats_random": statistics.mean(regrets) < statistics.mean(base) if base else None,
                "calls": sorted({r["calls"] for r in runs}),
                "out_of_bounds": sum(r["out_of_bounds"] for r in runs),
                "cached": statistics.mean(r["cached"] for r in runs),
                "seconds": sum(r["seconds"] for r in runs),
            }
        )
    return rows


def _g(x: float) -> str:
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def markdown(rows: list[dict[str, Any]], budget: int, seeds: int) -> str:
    head = (
        f"Simple regret (best f found − f*) after {budget} evaluations, {seeds} seeds; lower is "
        "better. p: two-sided paired Wilcoxon signed-rank vs random (seed i with seed i).\n\n"
        "| function | algorithm | mean | median | std | 95% CI of mean | p vs random "
        "| mean < random | evaluations | cache hits/run | seconds (all seeds) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        p = "—" if r["p"] is None else f"{r['p']:.2g}"
        beats = "—" if r["algorithm"] == "random" else ("yes" if r["beats_random"] else "**no**")
        calls = "/".join(str(c) for c in r["calls"])
        if r["out_of_bounds"]:
            calls += f" ({r['out_of_bounds']} out of bounds!)"
        lines.append(
            f"| {r['function']} | {r['algorithm']} | {_g(r['mean'])} | {_g(r['median'])} "
            f"| {_g(r['std'])} | {_g(r['ci'][0])}–{_g(r['ci'][1])} | {p} | {beats} | {calls} "
            f"| {r['cached']:.1f} | {r['seconds']:.2f} |"
        )
    return head + "\n".join(lines) + "\n"


def _task(job: tuple[str, str, int, int, int]) -> dict[str, Any]:
    fname, name, seed, budget, acq_points = job
    return run_one(FUNCTIONS[fname], name, seed, search_cfg(budget, acq_points))


def _one_blas_thread() -> None:
    # the GP's 40×40 matrices gain nothing from BLAS threads, and on a shared 2-core machine
    # OpenBLAS's spinning threads made one BO run 5-14× slower (measured: 19 s → 4 s on Branin)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--acq-points", type=int, default=1000)
    parser.add_argument("--functions", nargs="*", default=list(FUNCTIONS))
    parser.add_argument("--algorithms", nargs="*", default=list(search.ALGORITHMS))
    parser.add_argument("--jobs", type=int, default=1, help="processes; results do not change")
    args = parser.parse_args()

    _one_blas_thread()
    jobs = [
        (fname, name, seed, args.budget, args.acq_points)
        for fname in args.functions
        for name in args.algorithms
        for seed in range(args.seeds)
    ]
    start = time.perf_counter()
    pool = multiprocessing.Pool(args.jobs, _one_blas_thread) if args.jobs > 1 else None
    runs = pool.imap(_task, jobs) if pool else map(_task, jobs)  # in job order either way
    results: dict[tuple[str, str], list[dict]] = {}
    done = []
    for (fname, name, seed, *_), run in zip(jobs, runs, strict=True):
        results.setdefault((fname, name), []).append(run)
        done.append(run)
        if seed == args.seeds - 1:
            mean = statistics.mean(r["regret"] for r in results[(fname, name)])
            print(f"{fname} {name}: mean regret {mean:.4g}", file=sys.stderr, flush=True)
    if pool:
        pool.close()
    total = time.perf_counter() - start
    table = markdown(summarise(results), args.budget, args.seeds)
    cpu = sum(r["seconds"] for r in done)
    table += (
        f"\nWall time {total:.0f} s with {args.jobs} process(es); the searches themselves "
        f"{cpu:.0f} s in all (acq_points {args.acq_points}).\n"
    )
    print(table)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()
