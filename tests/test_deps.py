"""dvc.yaml deps = the code that runs: every leanml module a stage imports is a dependency.

For each stage (foreach members resolved by DVC itself) the checker follows the stage script's
imports statically (`ast`: imports inside functions too, `from leanml import x` where x is a
module, each package's `__init__`, relative imports) and the registries' lazy
"leanml.module:attr" entries, adds the non-Python files a module names beside itself (e.g.
`paths.yaml`), and reports every file no dep covers (a file dep, or a directory dep holding it).
"""

from __future__ import annotations

import ast
import functools
import re
import shutil
from pathlib import Path

import yaml

from tests.conftest import ROOT

# Files a stage imports that cannot change any of its outputs, each with the reason; the one
# place to exempt a module from the check. Anything not listed here must be a dvc.yaml dep.
EXEMPT = {
    # where MLflow records a run (mlflow.db, mlartifacts/): not a DVC output of any stage
    "leanml/tracking.py": "MLflow logging only; writes no file a stage declares in outs",
    "leanml/tracking_reap.py": "closes MLflow runs left RUNNING by killed processes; logging only",
    "leanml/tracking_provenance.py": "the git/stage/params tags of MLflow runs; logging only",
    "leanml/tracking_registry.py": "registers the evaluate picks in MLflow's Model Registry; logging only",
    "leanml/glossary.py": "checks metric names (a stage passes or stops); no output depends on it",
    "leanml/tracking_models.py": "logs candidate files as MLflow pyfunc models; logging only",
    # a run that completes never reaches them; they only shape how a failure is reported
    "leanml/errors.py": "the exception type of a failed stage; a stage that succeeds never uses it",
    "leanml/stage.py": "maps errors and Ctrl-C to exit codes and checks argv; no output depends on it",
    # it says where files are, not what they hold: the paths a stage declares come from it
    # through dvc.yaml's `vars:`, so a changed path or member list already changes the resolved
    # stages (members: checked against the report deps by tests/test_registry.py); as a dep it
    # would rerun all stages for a comment or another stage's path
    "leanml/paths.yaml": "reaches the stages through dvc.yaml vars (resolved paths and members)",
    "leanml/search/pyswarms_logging.yaml": "quiets PySwarms' log output; no result depends on it",
}

# the families whose members are foreach stages (compress@prune, search@ga, nas@rl, ...)
FAMILIES = set(yaml.safe_load((ROOT / "leanml/paths.yaml").read_text())["members"])
# "leanml.search.ga:GASearch": a registry entry, imported on use (leanml/registry.py)
_ENTRY = re.compile(r"^(leanml(?:\.\w+)+):\w+$")
# "paths.yaml": a bare file name with an extension
_FILE_NAME = re.compile(r"^[\w-]+(?:\.[\w-]+)+$")


def _file(module: str, code: Path) -> Path | None:
    """The source file of a dotted leanml module (a package is its __init__.py), if any."""
    base = code / module.replace(".", "/")
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _with_parents(module: str) -> list[str]:
    """Importing a.b.c runs a/__init__, a/b/__init__ and a/b/c."""
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@functools.cache
def _scan(path: Path, module: str, code: Path) -> tuple[set[str], list[tuple[str, str]], set[Path]]:
    """What `path` (module `module`) uses, anywhere in the file, inside functions too: the leanml
    modules it imports, its registry entries (name, module) and the files beside it it names."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    imports: set[str] = set()
    entries: list[tuple[str, str]] = []
    data: set[Path] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            imports.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package, one level up per extra dot
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(anchor + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            imports.add(source)
            for alias in node.names:  # `from leanml import data`: data is a module
                if _file(f"{source}.{alias.name}", code):
                    imports.add(f"{source}.{alias.name}")
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                text = value.value if isinstance(value, ast.Constant) else None
                match = _ENTRY.match(text) if isinstance(text, str) else None
                if match:
                    name = key.value if isinstance(key, ast.Constant) else ""
                    entries.append((str(name), match.group(1)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _FILE_NAME.match(node.value) and not node.value.endswith(".py"):
                if (path.parent / node.value).is_file():  # e.g. paths.yaml beside paths.py
                    data.add(path.parent / node.value)
    leanml = {m for name in imports if name.startswith("leanml") for m in _with_parents(name)}
    return leanml, entries, data


def _exempt(name: str, code: Path) -> bool:
    source = _file(name, code)
    return source is not None and str(source.relative_to(code)) in EXEMPT


def closure(script: Path, code: Path, member: tuple[str, str] | None = None) -> set[str]:
    """Every leanml file (relative to `code`) that running `script` can import or read.

    A registry entry counts as an import, except in a family's registry (leanml/<family>/
    __init__.py): there the member is the argument of the family's foreach stage, which imports
    that one entry only; `member` = (family, item) names it (None: a stage choosing no member).
    """
    seen: set[str] = set()
    files: set[Path] = set()
    todo = [(script, "__main__")]
    while todo:
        path, module = todo.pop()
        files.add(path)
        imports, entries, data = _scan(path, module, code)
        if module != "__main__" and str(path.relative_to(code)) in EXEMPT:
            # logging only: what it imports for itself (e.g. a model loader for a logged model)
            # serves logging only; other logging-only modules are followed
            imports = {n for n in imports if _exempt(n, code)}
        files.update(data)
        family = module.removeprefix("leanml.")
        for name, target in entries:
            if family not in FAMILIES or member == (family, name):
                imports = imports | set(_with_parents(target))
        for name in imports - seen:
            seen.add(name)
            source = _file(name, code)
            if source is not None:
                todo.append((source, name))
    return {str(f.relative_to(code)) for f in files if f.is_relative_to(code / "leanml")}


def stages(root: Path) -> dict[str, tuple[str, list[str]]]:
    """Each stage of root/dvc.yaml as DVC resolves it: name -> (cmd, dep paths)."""
    from dvc.repo import Repo

    repo = Repo(str(root))
    try:
        return {
            stage.addressing.split(":")[-1]: (stage.cmd, [str(d.def_path) for d in stage.deps])
            for stage in repo.index.stages
        }
    finally:
        repo.close()


@functools.cache  # the three checks of this project share one DVC load (about a second)
def _needed(root: Path, code: Path) -> list[tuple[str, list[str], set[str]]]:
    """(stage, its dep paths, the files its script imports or reads) for every stage."""
    out = []
    for name, (cmd, deps) in stages(root).items():
        script = next(word for word in cmd.split() if word.endswith(".py"))
        family, _, item = name.partition("@")
        out.append((name, deps, closure(code / script, code, (family, item) if item else None)))
    return out


def misses(root: Path, code: Path = ROOT) -> list[str]:
    """`stage: file` for every file a stage's script imports or reads that no dep covers."""
    problems = []
    for name, deps, needed in _needed(root, code):
        for path in sorted(needed - set(EXEMPT)):
            if not any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps):
                problems.append(f"{name}: {path}")
    return problems


def stale(root: Path, code: Path = ROOT) -> list[str]:
    """`stage: file` for every leanml file dep the stage never imports (it reruns needlessly).

    The members of one foreach/matrix stage share their deps (DVC gives a member no deps of its
    own): a dep is stale there only when no member of that stage imports it.
    """
    found = _needed(root, code)
    shared: dict[str, set[str]] = {}
    for name, _, needed in found:
        shared.setdefault(name.partition("@")[0], set()).update(needed)
    problems = []
    for name, deps, _ in found:
        needed = shared[name.partition("@")[0]]
        for dep in deps:
            if dep.startswith("leanml/") and (code / dep).is_file() and dep not in needed:
                problems.append(f"{name}: {dep}")
    return problems


def test_every_stage_depends_on_the_code_it_imports():
    found = misses(ROOT)
    assert not found, "add to the stage's deps in dvc.yaml (or to EXEMPT, with the reason):\n" + (
        "\n".join(found)
    )


def test_no_stage_depends_on_a_module_it_never_imports():
    found = stale(ROOT)
    assert not found, "remove from dvc.yaml (the stage reruns for code it does not run):\n" + (
        "\n".join(found)
    )


def test_every_exemption_is_a_file_some_stage_reads():
    """An exemption left behind by a rename would hide nothing and mislead the reader."""
    read = set().union(*(needed for _, _, needed in _needed(ROOT, ROOT)))
    assert sorted(set(EXEMPT) - read) == []


def test_the_closure_follows_lazy_imports_and_registries():
    """Imports inside functions, relative `from leanml import x`, one registry entry, data files."""
    ga = closure(ROOT / "stages/search.py", ROOT, ("search", "ga"))
    assert {"leanml/search/ga.py", "leanml/trials/study.py", "leanml/params/base.py"} <= ga
    assert "leanml/search/pso.py" not in ga  # another member: its stage alone imports it
    assert "leanml/search/pyswarms_logging.yaml" in closure(
        ROOT / "stages/search.py", ROOT, ("search", "pso")
    )
    train = closure(ROOT / "stages/train.py", ROOT)
    assert {"leanml/measure.py", "leanml/paths.yaml", "leanml/__init__.py"} <= train
    # nas_metadata imports leanml.nas but never chooses a strategy: none of their files
    assert "leanml/nas/rl.py" not in closure(ROOT / "stages/nas_metadata.py", ROOT)


def _copy_project(tmp_path: Path, dvc_yaml: str) -> Path:
    """A DVC project in tmp_path with the given dvc.yaml and this project's paths.yaml and
    params.yaml (dvc.yaml's compress_winner matrix reads compress.sources)."""
    from dvc.repo import Repo

    (tmp_path / "leanml").mkdir()
    shutil.copy(ROOT / "leanml/paths.yaml", tmp_path / "leanml/paths.yaml")
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "dvc.yaml").write_text(dvc_yaml)
    Repo.init(str(tmp_path), no_scm=True).close()
    return tmp_path


def test_a_dep_removed_from_dvc_yaml_is_reported(tmp_path):
    """The checker on a deliberately broken dvc.yaml: each removed dep shows, for its stages."""
    text = (ROOT / "dvc.yaml").read_text()
    broken = text.replace("        - leanml/search/objective.py\n", "", 1)
    search = broken.index("\n  search:\n")  # a directory dep, from the search stage
    broken = broken[:search] + broken[search:].replace("        - leanml/trials\n", "", 1)
    evaluate = broken.index("  evaluate:")
    broken = broken[:evaluate] + broken[evaluate:].replace("      - leanml/data.py\n", "", 1)
    assert len(text.splitlines()) - len(broken.splitlines()) == 3
    root = _copy_project(tmp_path, broken)

    found = misses(root)
    algorithms = yaml.safe_load((ROOT / "leanml/paths.yaml").read_text())["members"]["search"]
    trials = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "leanml/trials").glob("*.py"))
    wanted = ["evaluate: leanml/data.py"]
    for algo in algorithms:
        wanted += [f"search@{algo}: leanml/search/objective.py"]
        wanted += [f"search@{algo}: {path}" for path in trials]
    assert sorted(found) == sorted(wanted)


def test_a_dep_on_code_the_stage_does_not_run_is_reported(tmp_path):
    text = (ROOT / "dvc.yaml").read_text()
    extra = text.replace(
        "      - leanml/report/compress.py\n",
        "      - leanml/report/compress.py\n      - leanml/discover.py\n",
        1,
    )
    assert extra != text
    assert stale(_copy_project(tmp_path, extra)) == ["compress_report: leanml/discover.py"]
