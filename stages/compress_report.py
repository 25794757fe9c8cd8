"""compress_report: every compress method's variants on one accuracy-vs-bytes chart, plus a
summary (per method: the most accurate variant, the smallest within 1 pp of the baseline)."""

from leanml import params, paths, stage
from leanml.errors import LeanmlError
from leanml.io import read_json, write_json
from leanml.report import compress as sweep


def main() -> None:
    params.load()  # reads no params, but a broken params.yaml stops every stage the same way
    # (no TensorFlow here: the report reads CSV files)
    all_paths = paths.load()

    results, ref = {}, None
    for name in paths.members("compress"):
        out = paths.item(all_paths.compress, name)
        if not out.results.is_file():
            continue
        results[name] = sweep.read_results(out.results)
        metrics = read_json(out.metrics)
        ref = {k.removeprefix("baseline."): v for k, v in metrics.items() if "baseline." in k}
    if ref is None:
        raise LeanmlError(
            f"no compress results yet (no {all_paths.compress.files.results} under "
            f"{all_paths.compress.reports}/<method>/); run `dvc repro compress`"
        )
    report = all_paths.compress_report
    sweep.plot_all(results, ref, report.figure, "compression: test accuracy vs bytes")
    write_json(report.summary, sweep.summarize(results, ref))
    print(f"compress_report: {', '.join(results)} -> {report.figure}")


if __name__ == "__main__":
    stage.run(main, "compress_report")
