"""search_report: overlay every search algorithm's convergence curve on one figure."""

from leanml import params, paths, stage
from leanml.report.convergence import convergence_report


def main() -> None:
    params.load()  # reads no params, but a broken params.yaml stops every stage the same way
    group = paths.load().search
    found = convergence_report(group, paths.members("search"), "search: best so far")
    print(f"search_report: {', '.join(found)} -> {group.figure}")


if __name__ == "__main__":
    stage.run(main, "search_report")
