"""Compression over fine-tune seeds (issue 13): distillation off/on, k-means weight sharing and the
entropy-coded `.packed` format against the baseline's float32 TFLite file.

One baseline per kind (`mlp`, `cnn`: the default params' models, trained once with base.seed 42 on
the embedded digits data), then every setting below fine-tuned from it with `--seeds` fine-tune
seeds (the methods' seed is `base.seed`), distillation off (alpha 0) and on (alpha 0.5, T 1).
Sizes are gzip bytes of each variant's most compact real file (`artifact_gzip_bytes`) against the
gzip bytes of the baseline's float32 TFLite file (`gzip_ratio_tflite`), as issue 13 measures.

Run from the project root with the venv active, after `dvc repro prepare`:
`python bench/compress_seeds.py [--seeds 5] [mlp] [cnn]`. Writes bench/out/compress_seeds_<kind>.json
and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"

# The pipeline's default sweeps, narrowed to the points the issue's targets are about.
METHODS = {
    "prune": {"criteria": ["magnitude"], "sparsities": [0.9], "structured": {"fractions": []}},
    "quantize": {
        "tflite": {"modes": []},
        "ptq": {"bits": [4], "granularities": ["per_tensor"], "schemes": ["symmetric"]},
        "qat": {"bits": []},
    },
    "cluster": {"bits": [3, 4]},
    "combined": {"sparsities": [0.7, 0.8, 0.9], "bits": [2]},
}
DISTILL = {"off": {"alpha": 0.0}, "on": {"alpha": 0.5, "temperature": 1.0}}


def run(kind: str, seeds: int) -> dict:
    from leanml import compress, data, measure, params, paths
    from leanml.compress import run as sweep
    from leanml.train import train_and_score

    splits = data.load_prepared(paths.load().prepare)
    base_cfg = params.parse({"train": {"model": {"kind": kind}}})
    baseline = train_and_score(
        base_cfg.train.model, splits, base_cfg.train, seed=42, progress=False
    ).model
    import tempfile

    work = Path(tempfile.mkdtemp(prefix=f"bench-compress-seeds-{kind}-"))
    baseline_file = measure.save_model(baseline, work / "baseline.keras")
    ref = sweep.reference(baseline, baseline_file, splits, work)
    rows = []
    for distill, knobs in DISTILL.items():
        for seed in range(seeds):
            cfg = params.parse(
                {
                    "base": {"seed": seed},
                    "compress": {**METHODS, "fine_tune": {"distill": knobs}},
                }
            )
            for name in METHODS:
                method = compress.get(name, cfg)
                out = work / f"{distill}-{seed}" / name
                for _, row in sweep.run(method, baseline, ref, splits, out):
                    rows.append({**row, "distill": distill, "seed": seed})
    keep = ("test_accuracy", "artifact_bytes", "artifact_gzip_bytes", "tflite_gzip_bytes")
    return {"kind": kind, "baseline": {k: ref.get(k) for k in (*keep, "params")}, "rows": rows}


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {sd:.2f}"


def table(result: dict) -> str:
    base = result["baseline"]
    lines = [
        f"Baseline test accuracy {100 * base['test_accuracy']:.2f} %, float32 TFLite "
        f"{base['tflite_gzip_bytes']} gzip bytes.",
        "",
        "| variant | distill | Δ test (pp) | gzip bytes | × float TFLite (gzip) |",
        "|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in result["rows"]:
        groups.setdefault((f"{row['method']}/{row['variant']}", row["distill"]), []).append(row)
    for (name, distill), rows in groups.items():
        lines.append(
            f"| {name} | {distill} | {_mean_sd([r['delta_pp'] for r in rows])} | "
            f"{_mean_sd([r['artifact_gzip_bytes'] for r in rows])} | "
            f"{_mean_sd([r['gzip_ratio_tflite'] for r in rows])} |"
        )
    lines += ["", "Smallest variant within each loss band, per seed (distillation off / on):", ""]
    for band in (1.0, 3.0):
        for distill in DISTILL:
            picks = []
            for seed in sorted({r["seed"] for r in result["rows"]}):
                ok = [
                    r
                    for r in result["rows"]
                    if r["seed"] == seed and r["distill"] == distill and r["delta_pp"] >= -band
                ]
                if ok:
                    best = min(ok, key=lambda r: r["artifact_gzip_bytes"])
                    picks.append(best)
            names = sorted({f"{p['method']}/{p['variant']}" for p in picks})
            ratios = [p["gzip_ratio_tflite"] for p in picks]
            lines.append(
                f"- ≤ {band:g} pp, distillation {distill}: {_mean_sd(ratios)}× "
                f"(min {min(ratios):.1f}×) over {len(picks)} seeds; {', '.join(names)}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kinds", nargs="*", default=["mlp", "cnn"])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for kind in args.kinds:
        start = time.perf_counter()
        result = run(kind, args.seeds)
        result["seconds"] = time.perf_counter() - start
        (OUT / f"compress_seeds_{kind}.json").write_text(json.dumps(result, indent=1))
        print(f"\n### {kind} ({result['seconds']:.0f} s, {args.seeds} fine-tune seeds)\n")
        print(table(result))


if __name__ == "__main__":
    main()
