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


# Issue "every pixel as the original code": every document the repository cites is in it, and
# a cited section ("docs/datasets.md §3", 'docs/reference.md, "Competing losses"') exists.
CITING = ("src", "conf", "scripts", "bench", "tests", "docs", "notebooks")
DOC_PATH = re.compile(r"(?<![\w./-])docs/([\w-]+\.md)")
BARE_IN_DOCS = re.compile(r"\]\(([\w-]+\.md)(?:#[\w-]+)?\)")  # relative links between docs
SECTION = re.compile(r"docs/([\w-]+\.md)(?:,? (?:§|section )(\d+)|, \"([^\"]+)\")")


def _cited_texts() -> dict[Path, str]:
    files = [ROOT / "README.md"]
    for folder in CITING:
        files += [
            p
            for p in (ROOT / folder).rglob("*")
            if p.is_file() and p.suffix in {".py", ".yaml", ".md", ".ipynb", ".cfg", ".toml"}
        ]
    return {p: p.read_text(encoding="utf-8") for p in files}


def _headings(doc: Path) -> list[str]:
    return [
        line.lstrip("#").strip() for line in doc.read_text().splitlines() if line.startswith("#")
    ]


def test_every_cited_document_exists() -> None:
    missing = set()
    for path, text in _cited_texts().items():
        names = DOC_PATH.findall(text)
        if path.parent == ROOT / "docs":
            names += BARE_IN_DOCS.findall(text)
        missing |= {f"docs/{n} (cited in {path.relative_to(ROOT)})" for n in names
                    if not (ROOT / "docs" / n).is_file()}  # fmt: skip
    assert not missing, f"cited documents that are not in docs/: {sorted(missing)}"


def test_no_citation_names_a_briefing_document_without_its_folder() -> None:
    """A bare ``datasets.md`` in code is ambiguous; the repository's documents are docs/..."""
    bare = re.compile(r"(?<![\w./\"'-])(datasets|design|reference|style|lossd|recipes)\.md")
    found = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path, text in _cited_texts().items()
        if path.parent != ROOT / "docs" and path.name != "test_docs.py"
        for match in bare.finditer(text)
    ]
    assert not found, f"write docs/<name>.md: {found[:10]}"


def test_every_cited_section_exists() -> None:
    missing = []
    for path, text in _cited_texts().items():
        for name, number, title in SECTION.findall(text):
            doc = ROOT / "docs" / name
            if not doc.is_file():
                continue  # reported by test_every_cited_document_exists
            headings = _headings(doc)
            title = " ".join(title.split())  # a citation may wrap across lines
            if number and not any(h.startswith(f"{number}.") for h in headings):
                missing.append(f"{name} §{number} (cited in {path.relative_to(ROOT)})")
            if title and not any(title.lower() in h.lower() for h in headings):
                missing.append(f'{name}, "{title}" (cited in {path.relative_to(ROOT)})')
    assert not missing, f"cited sections that do not exist: {sorted(set(missing))}"
