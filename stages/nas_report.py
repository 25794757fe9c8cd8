"""nas_report: overlay every NAS strategy's convergence curve on one figure."""

from leanml import params, paths, stage
from leanml.report.convergence import convergence_report


def main() -> None:
    params.load()  # reads no params, but a broken params.yaml stops every stage the same way
    group = paths.load().nas
    found = convergence_report(group, paths.members("nas"), "NAS: best reward so far")
    print(f"nas_report: {', '.join(found)} -> {group.figure}")


if __name__ == "__main__":
    stage.run(main, "nas_report")
