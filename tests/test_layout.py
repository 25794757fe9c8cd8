"""The package's shape: no file under leanml/ grows past 400 lines (split it by concept instead)."""

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
