"""compress@<method>: sweep one compression method over the baseline, measure every variant,
write models/compress/<method>/ and reports/compress/<method>/, one MLflow child run per variant.
"""

import sys

from leanml import data, params, paths, stage, tracking
from leanml.errors import LeanmlError
from leanml.io import write_csv, write_json, write_metrics


def main() -> None:
    all_paths = paths.load()
    # the methods dvc.yaml runs (`foreach` over members.compress), known without importing them
    methods = paths.members("compress")
    if len(sys.argv) != 2:
        raise LeanmlError(f"usage: python stages/compress.py <{'|'.join(methods)}>")
    name = sys.argv[1]
    if name not in methods:
        raise LeanmlError(
            f"compress: unknown method {name!r}; registered methods are {', '.join(methods)}"
        )
    cfg = params.load()  # bad params stop the stage before TensorFlow is even imported

    from leanml import compress, models
    from leanml.compress import run as sweep

    method = compress.get(name, cfg)  # configured from its own compress.<name> section
    out, base = paths.item(all_paths.compress, name), cfg.base
    models_dir = all_paths.compress.models / name
    section = {
        "base": base,
        "compress.fine_tune": cfg.compress.fine_tune,
        f"compress.{name}": getattr(cfg.compress, name),
    }
    # inputs are read before a run is opened: a missing or corrupt one names its stage
    splits = data.load_prepared(all_paths.prepare)
    baseline = models.load(all_paths.train.model, "train")
    with tracking.stage_run(
        f"compress@{name}", base.tracking, section, {"seed": base.seed, "method": name}
    ) as run:
        ref = sweep.reference(baseline, all_paths.train.model, splits, models_dir)
        rows = []
        for variant, row in sweep.run(method, baseline, ref, splits, models_dir):
            rows.append(row)
            with run.child(variant.name, params=variant.setting, tags={"method": name}) as child:
                child.log_metrics({k: row[k] for k in sweep.METRICS})
                child.log_artifact(variant.model_file, "model")
                if variant.artifact != variant.model_file:
                    child.log_artifact(variant.artifact, "model")
            print(
                f"compress@{name}: {variant.name}: test_accuracy {row['test_accuracy']:.4f} "
                f"({row['delta_pp']:+.2f} pp), {row['artifact_bytes']} bytes "
                f"({row['ratio_weights']:.1f}x float32 weights, {row['ratio_tflite']:.1f}x float "
                f"TFLite), gzip {row['artifact_gzip_bytes']} bytes",
                file=sys.stderr,
            )
        write_csv(out.results, rows, sweep.columns(method))
        write_json(out.settings, sweep.settings(method, rows))
        write_metrics(out.metrics, out.timings, sweep.flat_metrics(ref, rows))
        sweep.plot(method, rows, ref, out.figure)
        for path in (out.results, out.settings, out.metrics, out.timings, out.figure):
            run.log_artifact(path)
        best = max(rows, key=lambda r: (r["test_accuracy"], r["compression_ratio"]))
        run.log_metrics({"variants": len(rows), "best_test_accuracy": best["test_accuracy"]})
        print(f"compress@{name}: {len(rows)} variants -> {out.results}")


if __name__ == "__main__":
    stage.run(main, f"compress@{sys.argv[1] if len(sys.argv) > 1 else '?'}")
