"""The documentation points at tests that exist: every test named in docs/reliability.md."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_ID = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    }


def test_every_test_named_in_the_reliability_page_exists() -> None:
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    named = TEST_ID.findall(text)
    assert len(named) > 100, "the page should name a test for each of its rows"
    missing = [
        f"{file}::{name}"
        for file, name in named
        if not (ROOT / file).is_file() or name not in _test_functions(ROOT / file)
    ]
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"


def test_every_row_of_the_reliability_tables_names_a_test() -> None:
    # Issue 8: each bad input the project handles has a test; rows of the tables of sections
    # 1-7 (after the error-type table) all end with a test id.
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    body = text[text.index("### 1.") :]
    rows = [
        line
        for line in body.splitlines()
        if line.startswith("| ")
        and not line.lower().startswith("| bad input")
        and "---" not in line
    ]
    without = [row[:80] for row in rows if not TEST_ID.search(row)]
    assert rows and not without, f"rows without a test: {without}"
