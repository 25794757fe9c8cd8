"""compress@auto against the hand-set `combined` variants (issue 13 item 4), over seeds.

One baseline per kind (the default params' model, trained once with seed 42 on the embedded
digits data, as bench/compress_seeds.py). Per seed (the methods' `base.seed`): the hand-set
combined grid (magnitude pruning to 70/80/90 % with one global threshold, then 2-bit k-means,
12 fine-tune epochs) and, for each hand-set variant, compress@auto with `target_bytes` = that
variant's artifact bytes: per-layer sparsity and bits searched (`--budget` policies, each fine-tuned
`trial_epochs`), the winner fine-tuned the same 12 epochs. Equal final fine-tune budget; the
search's extra epochs are reported. Selection reads val only; the table reports test.

Run from the project root with the venv active, after `dvc repro prepare`:
`python bench/compress_auto.py [--seeds 5] [--budget 12] [--finalists 2] [--algorithm tpe]
[mlp] [cnn]`.
Writes bench/out/compress_auto_<kind>_<algorithm>.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
HAND_SET = {"sparsities": [0.7, 0.8, 0.9], "bits": [2]}


class NullRun:
    """Stands in for the stage's MLflow run: the bench records its numbers in JSON."""

    @contextmanager
    def child(self, *args, **kwargs):
        yield self

    def log_metrics(self, *args, **kwargs) -> None:
        return None

    def set_tags(self, *args, **kwargs) -> None:
        return None

    def log_curve(self, *args, **kwargs) -> None:
        return None


def run(kind: str, seeds: int, budget: int, algorithm: str, finalists: int = 2) -> dict:
    from leanml import compress, data, measure, params, paths
    from leanml.compress import run as sweep
    from leanml.train import train_and_score

    splits = data.load_prepared(paths.load().prepare)
    base_cfg = params.parse({"train": {"model": {"kind": kind}}})
    baseline = train_and_score(
        base_cfg.train.model, splits, base_cfg.train, seed=42, progress=False
    ).model
    work = Path(tempfile.mkdtemp(prefix=f"bench-compress-auto-{kind}-"))
    baseline_file = measure.save_model(baseline, work / "baseline.keras")
    ref = sweep.reference(baseline, baseline_file, splits, work)
    rows = []
    for seed in range(seeds):
        cfg = params.parse({"base": {"seed": seed}, "compress": {"combined": HAND_SET}})
        hand = list(sweep.run(compress.get("combined", cfg), baseline, ref, splits, work / "h"))
        for _, row in hand:
            auto_cfg = params.parse(
                {
                    "base": {"seed": seed},
                    "compress": {
                        "auto": {
                            "algorithm": algorithm,
                            "budget": budget,
                            "finalists": finalists,
                            "target_ratio": None,
                            "target_bytes": int(row["artifact_bytes"]),
                        }
                    },
                }
            )
            method = compress.get("auto", auto_cfg)
            folder = work / f"a{seed}-{row['variant']}"
            folder.mkdir()
            ctx = sweep.Context(
                NullRun(), "bench", folder / "ckpt.jsonl", "bench", folder / "trials.csv"
            )
            start = time.perf_counter()
            method.prepare(baseline, splits, ref, ctx)
            search_seconds = time.perf_counter() - start
            [(_, auto)] = list(sweep.run(method, baseline, ref, splits, folder))
            rows.append(
                {
                    "seed": seed,
                    "hand": row["variant"],
                    "hand_test": row["test_accuracy"],
                    "hand_val": row["val_accuracy"],
                    "hand_bytes": row["artifact_bytes"],
                    "hand_gzip_ratio": row["gzip_ratio_tflite"],
                    "auto_test": auto["test_accuracy"],
                    "auto_val": auto["val_accuracy"],
                    "auto_bytes": auto["artifact_bytes"],
                    "auto_gzip_ratio": auto["gzip_ratio_tflite"],
                    "policy": auto["policy"],
                    "search_seconds": search_seconds,
                    "search_epochs": sum(t.epochs for t in method.trials),
                    "hand_seconds": row["seconds"],
                    "auto_seconds": auto["seconds"],
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return {
        "kind": kind,
        "algorithm": algorithm,
        "budget": budget,
        "baseline": {k: ref[k] for k in ("test_accuracy", "val_accuracy", "weight_bytes")},
        "rows": rows,
    }


def _ms(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{scale * statistics.mean(values):.{digits}f} ± {scale * sd:.{digits}f}"


def table(result: dict) -> str:
    base = result["baseline"]
    lines = [
        f"{result['kind']}, {result['algorithm']}, budget {result['budget']}; baseline test "
        f"{100 * base['test_accuracy']:.2f} %",
        "",
        "| hand-set | hand test % | hand bytes | auto test % | auto bytes "
        "| Δ test pp (auto − hand) | auto dominates | auto on the front | search epochs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for hand in sorted({r["hand"] for r in result["rows"]}):
        rs = [r for r in result["rows"] if r["hand"] == hand]
        delta = [100 * (r["auto_test"] - r["hand_test"]) for r in rs]
        dominates = sum(
            r["auto_bytes"] <= r["hand_bytes"] and r["auto_test"] > r["hand_test"] for r in rs
        )
        # not dominated by any hand-set variant of its seed (extends or moves the front)
        front = 0
        for r in rs:
            same = [h for h in result["rows"] if h["seed"] == r["seed"]]
            hands = {(h["hand_bytes"], h["hand_test"]) for h in same}
            a_bytes, a_test = r["auto_bytes"], r["auto_test"]
            front += not any(
                b <= a_bytes and t >= a_test and (b < a_bytes or t > a_test) for b, t in hands
            )
        lines.append(
            f"| {hand} | {_ms([r['hand_test'] for r in rs], 100)} | "
            f"{_ms([r['hand_bytes'] for r in rs], digits=0)} | "
            f"{_ms([r['auto_test'] for r in rs], 100)} | "
            f"{_ms([r['auto_bytes'] for r in rs], digits=0)} | {_ms(delta)} | "
            f"{dominates}/{len(rs)} | {front}/{len(rs)} | "
            f"{statistics.mean(r['search_epochs'] for r in rs):.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kinds", nargs="*", default=["mlp"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=12)
    parser.add_argument("--algorithm", default="tpe")
    parser.add_argument("--finalists", type=int, default=2)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for kind in args.kinds:
        result = run(kind, args.seeds, args.budget, args.algorithm, args.finalists)
        target = OUT / f"compress_auto_{kind}_{args.algorithm}.json"
        target.write_text(json.dumps(result, indent=1))
        print(table(result))


if __name__ == "__main__":
    main()
