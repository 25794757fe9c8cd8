"""study: run the whole pipeline over several seeds as DVC experiments, then aggregate them.

    python stages/study.py --seeds 5            # queue seeds 1..5, run them, aggregate
    python stages/study.py --aggregate-only     # aggregate the study experiments that exist

Not a dvc stage (it drives `dvc exp run`); writes reports/study/.
"""

import argparse
import json
import subprocess
import time

from leanml import params, paths, stage, study
from leanml.errors import LeanmlError
from leanml.io import read_json, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (default 5)")
    parser.add_argument("--first-seed", type=int, default=1, help="first seed (default 1)")
    parser.add_argument("--jobs", type=int, default=1, help="experiments run at once (default 1)")
    parser.add_argument("--prefix", default=None, help="experiment name prefix (default: dated)")
    parser.add_argument(
        "--aggregate-only", action="store_true", help="do not run; aggregate the last study"
    )
    args = parser.parse_args()
    if args.seeds < 1 or args.jobs < 1:
        raise LeanmlError("study: --seeds and --jobs must be ≥ 1")
    language = params.load().evaluate.language  # the tables' language, as evaluate's
    all_paths = paths.load()
    root = all_paths.evaluate.models.parent
    out_dir = all_paths.study.dir
    manifest = out_dir / "experiments.json"
    metrics_files = [
        str(all_paths.evaluate.metrics.relative_to(root)),
        str(all_paths.evaluate.timings.relative_to(root)),  # the latencies
    ]

    if args.aggregate_only:
        if not manifest.is_file():
            raise LeanmlError(f"study: {manifest} not found; run `make study` first")
        names = read_json(manifest)["names"]
    else:
        prefix = args.prefix or time.strftime("study-%Y%m%d-%H%M")
        seeds = list(range(args.first_seed, args.first_seed + args.seeds))
        commands = study.queue_commands(seeds, prefix)
        names = [cmd[cmd.index("-n") + 1] for cmd in commands]
        write_json(manifest, {"names": names, "seeds": seeds})
        study.run_commands(commands, root)
        study.run_commands([["dvc", "exp", "run", "--run-all", "-j", str(args.jobs)]], root)

    shown = subprocess.run(
        ["dvc", "exp", "show", "--json"], cwd=root, capture_output=True, text=True
    )
    if shown.returncode != 0:
        raise LeanmlError(f"study: `dvc exp show --json` failed: {shown.stderr.strip()}")
    records = study.records_from_exp_show(json.loads(shown.stdout), metrics_files, names)
    missing = sorted(set(names) - {r["name"] for r in records})
    if missing:
        print(f"study: no evaluate metrics for {', '.join(missing)} (failed?)")
    files = study.write(records, out_dir, language)
    print(f"study: {len(records)} experiments aggregated -> {files['summary']}")


if __name__ == "__main__":
    stage.run(main, "study")
