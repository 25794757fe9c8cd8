"""compress@<method>: sweep one compression method over the baseline, measure every variant,
write models/compress/<method>/ and reports/compress/<method>/, one MLflow child run per variant.

compress_winner@<source>-<method> (`python stages/compress.py <method> <source>`): the same over a
search/NAS winner listed in compress.sources, into models/compress/<source>/<method>/ and
reports/compress/<source>/<method>/ (plus source.json: which model, chosen how); every variant is
compared with that source model.
"""

import sys

from leanml import data, glossary, params, paths, sources, stage, tracking
from leanml.errors import LeanmlError
from leanml.io import read_json, write_csv, write_json, write_metrics
from leanml.params.compress import source_error


def main() -> None:
    all_paths = paths.load()
    # the methods dvc.yaml runs (`foreach` over members.compress), known without importing them
    methods = paths.members("compress")
    usage = f"usage: python stages/compress.py <{'|'.join(methods)}> [<source>]"
    if len(sys.argv) not in (2, 3):
        raise LeanmlError(usage)
    why = source_error(sys.argv[2]) if len(sys.argv) == 3 else None
    if why and sys.argv[2] != sources.BASELINE:
        raise LeanmlError(f"{usage}; <source> {why}")
    name = sys.argv[1]
    if name not in methods:
        raise LeanmlError(
            f"compress: unknown method {name!r}; registered methods are {', '.join(methods)}"
        )
    cfg = params.load()  # bad params stop the stage before TensorFlow is even imported
    origin = sys.argv[2] if len(sys.argv) == 3 else sources.BASELINE
    if origin != sources.BASELINE and origin not in cfg.compress.sources:
        raise LeanmlError(
            f"compress: source {origin!r} is not listed in compress.sources "
            f"({', '.join(cfg.compress.sources) or 'none'})"
        )
    # which model, chosen on val only; a missing one names the stage that writes it
    src = sources.resolve(origin, all_paths)
    folder = name if origin == sources.BASELINE else f"{origin}/{name}"
    label = stage_label(name, origin)

    from leanml import compress, models
    from leanml.compress import run as sweep
    from leanml.compress.base import as_sequential
    from leanml.trials.fingerprint import fingerprint

    method = compress.get(name, cfg)  # configured from its own compress.<name> section
    out, base = paths.item(all_paths.compress, folder), cfg.base
    models_dir = all_paths.compress.models / folder
    section = {
        "base": base,
        "compress.fine_tune": cfg.compress.fine_tune,
        f"compress.{name}": getattr(cfg.compress, name),
    }
    tags = {"method": name, "source": origin, "chain": src.chain(name)}
    # inputs are read before a run is opened: a missing or corrupt one names its stage
    splits = data.load_prepared(all_paths.prepare)
    baseline = models.load(src.model, sources.producer(src.member))
    if origin != sources.BASELINE:  # a NAS child is functional; a chain of layers need not be
        baseline = as_sequential(baseline)
    with tracking.stage_run(label, base.tracking, section, {"seed": base.seed, **tags}) as run:
        ref = sweep.reference(baseline, src.model, splits, models_dir)
        # a method whose settings are searched (auto) searches them first, resumably
        used = {k: v.model_dump() for k, v in section.items()}
        card = read_json(all_paths.prepare.card)
        run.log_data(splits, card, ("train", "val", "test"))  # fine-tune, select, report
        ctx = sweep.Context(
            run=run,
            label=label,
            checkpoint=sweep.checkpoint_path(models_dir),
            fingerprint=fingerprint(used, card["sha256"], src.model),
            trials=models_dir / "trials.csv",
        )
        method.prepare(baseline, splits, ref, ctx)
        rows, sample = [], splits.val.x[:5]
        for variant, row in sweep.run(method, baseline, ref, splits, models_dir):
            rows.append(row)
            chain = {**tags, "chain": src.chain(f"{name}/{variant.name}")}
            with run.child(variant.name, params=variant.setting, tags=chain) as child:
                child.log_metrics(glossary.as_metrics(row, sweep.METRICS))
                # the compact file itself as a model (the UI's Models column; loads with pyfunc)
                child.log_file_model(variant.artifact, sample, variant.predict(sample))
                if variant.extra.get("val_curve"):  # val accuracy after each fine-tune epoch
                    child.log_curve("epoch_val_accuracy", variant.extra["val_curve"])
                child.log_artifact(variant.model_file, "model")
                if variant.artifact != variant.model_file:
                    child.log_artifact(variant.artifact, "model")
            print(
                f"{label}: {variant.name}: test_accuracy {row['test_accuracy']:.4f} "
                f"({row['delta_pp']:+.2f} pp), {row['artifact_bytes']} bytes "
                f"({row['ratio_weights']:.1f}x float32 weights, {row['ratio_tflite']:.1f}x float "
                f"TFLite), gzip {row['artifact_gzip_bytes']} bytes",
                file=sys.stderr,
            )
        write_csv(out.results, rows, sweep.columns(method))
        write_json(out.settings, sweep.settings(method, rows))
        metrics = {**sweep.flat_metrics(ref, rows), **method.metrics()}  # a search's too
        write_metrics(out.metrics, out.timings, metrics)
        sweep.plot(method, rows, ref, out.figure)
        written = [out.results, out.settings, out.metrics, out.timings, out.figure]
        if ctx.trials.is_file():
            written.append(ctx.trials)
        if origin != sources.BASELINE:  # the baseline's outputs stay as they were
            write_json(out.source, sources.describe(src))
            written.append(out.source)
        for path in written:
            run.log_artifact(path)
        best = max(rows, key=lambda r: (r["test_accuracy"], r["compression_ratio"]))
        run.log_metrics({"variants": len(rows), "best.test_accuracy": best["test_accuracy"]})
        print(f"{label}: {len(rows)} variants -> {out.results}")


def stage_label(method: str, origin: str) -> str:
    """The dvc.yaml stage name: compress@<method>, or compress_winner@<source>-<method>."""
    if origin == sources.BASELINE:
        return f"compress@{method}"
    return f"compress_winner@{origin}-{method}"


if __name__ == "__main__":
    args = sys.argv[1:]
    method = args[0] if args else "?"
    stage.run(main, stage_label(method, args[1] if len(args) > 1 else sources.BASELINE))
