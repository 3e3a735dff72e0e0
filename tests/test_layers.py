"""The package's layers point one way, and no private module is used outside its package.

Layers, bottom to top (docs/extending.md, "Layers"): ``errors``/``conventions``/``ops``/``io``
→ ``data``/``models``/``losses``/``metrics`` (independent of each other) → ``records`` →
``engine`` → ``results`` → ``scripts``. Checked on the source text (every ``import`` statement,
including those inside functions and ``TYPE_CHECKING`` blocks), so nothing has to be imported.
Inside a package, the imports that run (module level and inside functions, not the
``TYPE_CHECKING`` ones) form no cycle: a deferred import must not hide one.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "lossd"

LAYERS: dict[str, int] = {
    "lossd": 0,
    "lossd.errors": 0,
    "lossd.conventions": 0,
    "lossd.ops": 0,
    "lossd.io": 0,
    "lossd.data": 1,
    "lossd.models": 1,
    "lossd.losses": 1,
    "lossd.metrics": 1,
    "lossd.records": 2,
    "lossd.engine": 3,
    "lossd.results": 4,
}
SCRIPTS_LAYER = 5


def _unit(module: str) -> str:
    """The layer unit of a dotted module name: ``lossd.<first part>`` or ``lossd``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and parts[1] != "__init__" else "lossd"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported lossd module) for every import statement of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("lossd")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if name.startswith("lossd"):
                found.append((node.lineno, name))
                # `from lossd.data import _labels` names a module too
                found += [(node.lineno, f"{name}.{a.name}") for a in node.names if a.name[0] == "_"]
    return found


def _private_owner(imported: str) -> str | None:
    """The package that owns the first private part of ``imported`` (None: all public)."""
    parts = imported.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def _violations(path: Path, module: str, layer: int) -> list[str]:
    problems = []
    own_unit = _unit(module) if layer < SCRIPTS_LAYER else None
    for line, imported in _imports(path, module):
        unit = _unit(imported)
        if unit not in LAYERS:
            problems.append(f"{path}:{line} imports {imported}, which has no layer in this test")
            continue
        target = LAYERS[unit]
        if target > layer:
            problems.append(f"{path}:{line}: {module} (layer {layer}) imports {imported} upward")
        elif target == layer == 1 and unit != own_unit:
            problems.append(f"{path}:{line}: {module} imports its sibling leaf {imported}")
        owner = _private_owner(imported)
        if owner is not None and not module.startswith(owner):
            problems.append(f"{path}:{line}: {module} uses the private module {imported}")
    return problems


def _sources() -> list[tuple[Path, str, int]]:
    sources = []
    for path in sorted(SRC.rglob("*.py")):
        module = _module_name(path)
        sources.append((path, module, LAYERS[_unit(module)]))
    for folder in ("scripts", "bench"):
        for path in sorted((ROOT / folder).glob("*.py")):
            sources.append((path, f"{folder}.{path.stem}", SCRIPTS_LAYER))
    return sources


def test_every_module_has_a_layer() -> None:
    units = {_unit(module) for _, module, layer in _sources() if layer < SCRIPTS_LAYER}
    assert units <= set(LAYERS), f"add {sorted(units - set(LAYERS))} to LAYERS and to the docs"


def test_no_module_imports_upward_or_a_private_module_of_another_package() -> None:
    problems = [p for source in _sources() for p in _violations(*source)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("module", "layer", "text", "expected"),
    [
        ("lossd.engine.run", 3, "from lossd.results import load_runs\n", "upward"),
        ("lossd.data.folder", 1, "from lossd.metrics import SegmentationMetrics\n", "sibling"),
        ("lossd.engine.run", 3, "from lossd.data._labels import decode_values\n", "private"),
        ("lossd.results.x", 4, "def f():\n    from lossd.data import _labels\n", "private"),
        ("lossd.io.x", 0, "if True:\n    import lossd.records\n", "upward"),
    ],
)
def test_the_check_catches_what_it_should(
    tmp_path: Path, module: str, layer: int, text: str, expected: str
) -> None:
    path = tmp_path / "module.py"
    path.write_text(text, encoding="utf-8")
    problems = _violations(path, module, layer)
    assert len(problems) == 1 and expected in problems[0], problems


def test_a_downward_and_same_package_import_passes(tmp_path: Path) -> None:
    path = tmp_path / "module.py"
    path.write_text(
        "from lossd.io import atomic_path\nfrom lossd.data._labels import decode_values\n",
        encoding="utf-8",
    )
    assert _violations(path, "lossd.data.loveda", 1) == []


# --- no import cycle inside a package, deferred imports included --------------------------------


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _runtime_imports(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> list[str]:
    """Modules of ``known`` that ``tree`` imports when it runs: at module level and inside
    functions (deferred imports), not in ``TYPE_CHECKING`` blocks. ``from pkg import name``
    counts as an import of ``pkg.name`` when that is a module."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child):
                continue
            if isinstance(child, ast.Import):
                found.extend(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    name = ".".join([*base, child.module] if child.module else base)
                else:
                    name = child.module or ""
                found.extend(
                    f"{name}.{a.name}" if f"{name}.{a.name}" in known else name for a in child.names
                )
            visit(child)

    visit(tree)
    resolved = []
    for name in found:
        while name not in known and "." in name:
            name = name.rpartition(".")[0]
        if name in known and name != module:
            resolved.append(name)
    return resolved


def _package_cycles(modules: dict[str, tuple[ast.AST, bool]]) -> list[list[str]]:
    """Import cycles among modules of the same layer unit (``lossd.<package>``)."""
    known = set(modules)
    graph = {
        name: list(
            dict.fromkeys(
                target
                for target in _runtime_imports(tree, name, is_package, known)
                if _unit(target) == _unit(name)
            )
        )
        for name, (tree, is_package) in modules.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in graph[node]:
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    return cycles


def test_imports_inside_a_package_form_no_cycle() -> None:
    """A deferred import (inside a function) must not hide a cycle: e.g. ``results.tables``
    importing ``results.evidence`` in a function while ``evidence`` imports ``tables``."""
    modules = {
        _module_name(path): (
            ast.parse(path.read_text(encoding="utf-8")),
            path.name == "__init__.py",
        )
        for path in sorted(SRC.rglob("*.py"))
    }
    cycles = _package_cycles(modules)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_cycle_check_sees_a_deferred_import() -> None:
    tables = "from lossd.results.evidence import paired_results\n"
    evidence = "def f():\n    from lossd.results.tables import BASE_LOSS\n"
    typed = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import lossd.results.tables\n"
    modules = {
        "lossd.results.tables": (ast.parse(tables), False),
        "lossd.results.evidence": (ast.parse(evidence), False),
    }
    assert _package_cycles(modules) == [
        ["lossd.results.evidence", "lossd.results.tables", "lossd.results.evidence"]
    ]
    modules["lossd.results.evidence"] = (ast.parse(typed), False)  # type-only: no cycle
    assert _package_cycles(modules) == []
