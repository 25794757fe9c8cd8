"""The package's shape: no file under leanml/ grows past 400 lines, and imports point one way."""

from tests.conftest import ROOT

MAX_LINES = 400


def test_no_file_under_leanml_exceeds_400_lines():
    files = [
        p for p in (ROOT / "leanml").rglob("*") if p.is_file() and "__pycache__" not in p.parts
    ]
    assert len(files) > 20  # the walk found the package
    too_long = {}
    for path in files:
        with open(path, "rb") as handle:
            count = sum(1 for _ in handle)
        if count > MAX_LINES:
            too_long[str(path.relative_to(ROOT))] = count
    assert too_long == {}, f"split these files (lines > {MAX_LINES}): {too_long}"


def _imports(path) -> set[str]:
    """Every leanml module a file imports (absolute imports, at any depth of the file)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] in ("leanml", "stages")}


# (package, packages it must never import): the arrows of the architecture (README, Layout)
FORBIDDEN = {
    "leanml/trials": ("leanml.search", "leanml.nas", "leanml.compress"),
    "leanml/search": ("leanml.nas",),
    "leanml/nas": ("leanml.search",),
    "leanml": ("stages",),
}


def test_imports_point_one_way():
    wrong = []
    for folder, banned in FORBIDDEN.items():
        files = list((ROOT / folder).rglob("*.py"))
        assert files, folder
        for path in files:
            for name in _imports(path):
                if any(name == b or name.startswith(b + ".") for b in banned):
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert wrong == [], wrong
