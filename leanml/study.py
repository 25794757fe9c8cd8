"""Multi-seed studies: run the pipeline once per seed as DVC experiments, then aggregate.

Every experiment's `reports/evaluate/metrics.json` holds the best candidate of each method
(`by_method.<family>/<method>.<metric>`), of each family and the headline numbers; their
latencies are in `reports/evaluate/timings.json` beside it (both are read). Across seeds
this module reports mean ± std per method and metric, and a paired Wilcoxon signed-rank test
(seeds are the pairs) between the methods of the families that compete on one budget (search
algorithms, NAS strategies), with a Holm correction within each family and metric.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from leanml.errors import LeanmlError
from leanml.io import atomic_write_bytes, write_csv, write_json
from leanml.params.util import flatten
from leanml.report import i18n, tables
from leanml.report.tables import Column
from leanml.report.uncertainty import holm

HEADLINE_PREFIXES = ("baseline", "best", "smallest_within_pp")
METRICS = (
    "test_accuracy",
    "test_macro_f1",
    "delta_pp",
    "size_bytes",
    "ratio_weights",
    "latency_ms_p50",
)
COMPARED_FAMILIES = ("search", "nas")
AGGREGATE_COLUMNS = ["family", "method", "metric", "n", "mean", "std", "min", "max"]
TEST_COLUMNS = [
    "family",
    "metric",
    "a",
    "b",
    "n",
    "mean_a",
    "mean_b",
    "mean_diff",
    "a_wins",
    "b_wins",
    "statistic",
    "p_value",
    "p_holm",
    "note",
]


# --- running the seeds -----------------------------------------------------------------------


def queue_commands(seeds: Sequence[int], prefix: str) -> list[list[str]]:
    """One `dvc exp run --queue` per seed; experiment names are `<prefix>-seed<seed>`."""
    return [
        ["dvc", "exp", "run", "--queue", "-n", f"{prefix}-seed{s}", "-S", f"base.seed={s}"]
        for s in seeds
    ]


def run_commands(commands: Iterable[list[str]], cwd: Path) -> None:
    """Run each command, streaming its output; the first failure stops with its command line."""
    for cmd in commands:
        print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
        done = subprocess.run(cmd, cwd=cwd)
        if done.returncode != 0:
            raise LeanmlError(f"study: `{' '.join(cmd)}` failed with exit code {done.returncode}")


# --- reading the experiments -----------------------------------------------------------------


def records_from_exp_show(
    shown: Any, metrics_file: str | Sequence[str], names: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """(name, seed, metrics) of every experiment in `dvc exp show --json` output.

    Walks the JSON for entries with a `name` and `data.metrics` (the layout of DVC 3), so that
    nesting changes between DVC versions do not matter. `names` restricts to those experiments.
    Several `metrics_file`s (e.g. metrics.json and timings.json) are merged; the first one must
    be present for an experiment to count.
    """
    wanted = set(names) if names is not None else None
    files = [metrics_file] if isinstance(metrics_file, str) else list(metrics_file)
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        data = node.get("data")
        name = node.get("name")
        if isinstance(data, dict) and name and node.get("rev") != "workspace":
            shown_files = data.get("metrics") or {}
            metrics = (shown_files.get(files[0]) or {}).get("data")
            if metrics:
                for extra in files[1:]:
                    metrics = {**metrics, **((shown_files.get(extra) or {}).get("data") or {})}
            params = (data.get("params") or {}).get("params.yaml", {}).get("data") or {}
            if metrics and (wanted is None or name in wanted):
                seed = (params.get("base") or {}).get("seed")
                found[name] = {"name": name, "seed": seed, "metrics": flatten(metrics)}
        for value in node.values():
            walk(value)

    walk(shown)
    return sorted(found.values(), key=lambda r: (r["seed"] is None, r["seed"], r["name"]))


def split_key(key: str) -> tuple[str, str, str] | None:
    """`by_method.search/ga.test_accuracy` → (search, ga, test_accuracy); headline keys
    likewise."""
    head, _, metric = key.rpartition(".")
    if metric not in METRICS or not head:
        return None
    if head.startswith("by_method."):
        family, _, method = head.removeprefix("by_method.").partition("/")
        return (family, method, metric) if method else None
    if head.startswith("by_family."):
        return head.removeprefix("by_family."), "(best)", metric
    if head in HEADLINE_PREFIXES:
        return "headline", head, metric
    return None


def _values(records: Sequence[dict]) -> dict[tuple[str, str, str], dict[Any, float]]:
    """(family, method, metric) → {seed: value}."""
    out: dict[tuple[str, str, str], dict[Any, float]] = {}
    for record in records:
        for key, value in record["metrics"].items():
            where = split_key(key)
            if where is None or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if not math.isfinite(value):
                continue
            out.setdefault(where, {})[record["seed"]] = float(value)
    return out


def aggregate(records: Sequence[dict]) -> list[dict[str, Any]]:
    """Mean, sample std (ddof=1; empty for one seed), min, max per (family, method, metric)."""
    rows = []
    for (family, method, metric), by_seed in sorted(_values(records).items()):
        values = np.array(list(by_seed.values()))
        rows.append(
            {
                "family": family,
                "method": method,
                "metric": metric,
                "n": len(values),
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else None,
                "min": float(values.min()),
                "max": float(values.max()),
            }
        )
    return rows


def wilcoxon_pair(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Two-sided paired Wilcoxon signed-rank test of a vs b, with the cases it cannot decide.

    Fewer than 2 pairs: no test. Every difference zero: p = 1. Otherwise scipy's test (exact
    for small samples without ties), zero differences dropped ("wilcox"); the note says when
    the number of pairs cannot reach p < 0.05 at all.
    """
    from scipy.stats import wilcoxon

    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = a - b
    out: dict[str, Any] = {
        "n": len(diff),
        "mean_a": float(a.mean()) if len(a) else None,
        "mean_b": float(b.mean()) if len(b) else None,
        "mean_diff": float(diff.mean()) if len(diff) else None,
        "a_wins": int((diff > 0).sum()),
        "b_wins": int((diff < 0).sum()),
        "statistic": None,
        "p_value": None,
        "note": "",
    }
    nonzero = int(np.count_nonzero(diff))
    if len(diff) < 2:
        out["note"] = f"needs at least 2 paired seeds, has {len(diff)}"
        return out
    if nonzero == 0:
        out.update(statistic=0.0, p_value=1.0, note="identical on every seed")
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns that small samples are small
        result = wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
    out["statistic"], out["p_value"] = float(result.statistic), float(result.pvalue)
    smallest = 2 / 2**nonzero
    if smallest >= 0.05:
        out["note"] = (
            f"{nonzero} non-zero pair(s): the smallest attainable p is {smallest:.3g}, "
            "so no difference can be significant at 0.05; run more seeds"
        )
    return out


def compare(
    records: Sequence[dict],
    families: Sequence[str] = COMPARED_FAMILIES,
    metrics: Sequence[str] = ("test_accuracy", "size_bytes", "latency_ms_p50"),
) -> list[dict[str, Any]]:
    """Every pair of methods within each family, per metric, paired on the seeds both ran."""
    values = _values(records)
    rows = []
    for family in families:
        methods = sorted({m for (f, m, _) in values if f == family and m != "(best)"})
        for metric in metrics:
            group = []
            for a, b in itertools.combinations(methods, 2):
                va, vb = values.get((family, a, metric), {}), values.get((family, b, metric), {})
                seeds = sorted(set(va) & set(vb), key=str)
                test = wilcoxon_pair([va[s] for s in seeds], [vb[s] for s in seeds])
                group.append({"family": family, "metric": metric, "a": a, "b": b, **test})
            for row, p in zip(group, holm([r["p_value"] for r in group]), strict=True):
                row["p_holm"] = p
            rows += group
    return rows


# --- writing -----------------------------------------------------------------------------------


def _mean_std(row: dict) -> str:
    percent = row["metric"] in ("test_accuracy", "test_macro_f1")
    scale = 100 if percent else 1
    mean = row["mean"] * scale
    std = None if row["std"] is None else row["std"] * scale
    if row["metric"] == "size_bytes":
        text = f"{mean:,.0f}" + ("" if std is None else f" ± {std:,.0f}")
    else:
        digits = 2 if percent or row["metric"] in ("delta_pp", "ratio_weights") else 3
        text = f"{mean:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")
    return text


def _p(value: Any) -> str:
    return "–" if value is None else f"{value:.3g}"


AGG_TABLE = [
    Column("family", "Family", "l"),
    Column("method", "Method", "l"),
    Column("metric", "Metric", "l"),
    Column("n", "Seeds"),
    Column("mean_std", "Mean ± std"),
]
TEST_TABLE = [
    Column("family", "Family", "l"),
    Column("metric", "Metric", "l"),
    Column("a", "A", "l"),
    Column("b", "B", "l"),
    Column("n", "Seeds"),
    Column("a_wins", "A wins"),
    Column("b_wins", "B wins"),
    Column("statistic", "W", fmt=tables.number),
    Column("p_value", "p", fmt=_p),
    Column("p_holm", "p (Holm)", fmt=_p),
]
SHOWN_METRICS = ("test_accuracy", "size_bytes", "ratio_weights", "latency_ms_p50")


def write(records: Sequence[dict], out_dir: Path, language: str = "en") -> dict[str, Path]:
    """runs.csv, aggregate.csv, wilcoxon.csv, summary.md and LaTeX tables under `out_dir`.

    `language` (`evaluate.language`) sets the tables' headers, captions and notes; the CSV
    files and every number are the same in both languages.
    """
    if not records:
        raise LeanmlError(
            "study: no finished experiment has reports/evaluate/metrics.json; run the seeds "
            "first (`make study SEEDS=5`) or check `dvc exp show`"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "runs": out_dir / "runs.csv",
        "aggregate": out_dir / "aggregate.csv",
        "wilcoxon": out_dir / "wilcoxon.csv",
        "summary": out_dir / "summary.md",
        "aggregate_tex": out_dir / "aggregate.tex",
        "wilcoxon_tex": out_dir / "wilcoxon.tex",
        "records": out_dir / "records.json",
    }
    keys = sorted({k for r in records for k in r["metrics"] if split_key(k)})
    write_csv(
        files["runs"],
        (
            {"name": r["name"], "seed": r["seed"], **{k: r["metrics"].get(k) for k in keys}}
            for r in records
        ),
        ["name", "seed", *keys],
    )
    agg = aggregate(records)
    write_csv(files["aggregate"], agg, AGGREGATE_COLUMNS)
    tests = compare(records)
    write_csv(files["wilcoxon"], tests, TEST_COLUMNS)
    write_json(files["records"], {"records": list(records)})

    shown = [  # the train family's best is the baseline, already in the headline rows
        {**r, "mean_std": _mean_std(r)}
        for r in agg
        if r["metric"] in SHOWN_METRICS and r["family"] != "train"
    ]
    groups = [i for i in range(1, len(shown)) if shown[i]["family"] != shown[i - 1]["family"]]
    seeds = sorted({r["seed"] for r in records}, key=str)
    agg_table, test_table = i18n.columns(AGG_TABLE, language), i18n.columns(TEST_TABLE, language)
    caption = i18n.text("study.caption", language, n=len(seeds))
    atomic_write_bytes(
        files["aggregate_tex"],
        tables.latex(
            shown, agg_table, caption, "tab:leanml-study", groups=groups, language=language
        ).encode(),
    )
    test_groups = [i for i in range(1, len(tests)) if tests[i]["family"] != tests[i - 1]["family"]]
    atomic_write_bytes(
        files["wilcoxon_tex"],
        tables.latex(
            tests,
            test_table,
            i18n.text("study.tests.caption", language),
            "tab:leanml-wilcoxon",
            groups=test_groups,
            note=i18n.text("study.tests.note", language),
            language=language,
        ).encode(),
    )
    notes = sorted({t["note"] for t in tests if t["note"]})
    md = [
        "# Multi-seed study\n",
        f"{len(records)} experiments, seeds {', '.join(str(s) for s in seeds)}: "
        + ", ".join(f"`{r['name']}`" for r in records)
        + ".\n",
        "Every number is the test-split score of the best candidate of a method (or family) in "
        "one seed's pipeline run (`reports/evaluate/metrics.json`).\n",
        i18n.text("study.md.mean", language),
        tables.markdown(shown, agg_table),
        i18n.text("study.md.tests", language),
        "Two-sided, seeds as pairs, zero differences dropped; p (Holm) is corrected within each "
        "family and metric.\n",
        tables.markdown(tests, test_table) if tests else "No family with two or more methods.\n",
        *(f"- {n}\n" for n in notes),
        "## Files\n",
        "`aggregate.csv` (every metric), `wilcoxon.csv`, `runs.csv` (one row per seed), "
        "`aggregate.tex` and `wilcoxon.tex` (booktabs).\n",
    ]
    atomic_write_bytes(files["summary"], "\n".join(md).encode())
    return files
