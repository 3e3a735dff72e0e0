"""The package's layers point one way, and no private module is used outside its package.

Layers, bottom to top (docs/extending.md, "Layers"): ``errors``/``conventions``/``ops``/``io``
→ ``data``/``models``/``losses``/``metrics`` (independent of each other) → ``records`` →
``engine`` → ``results`` → ``scripts``. Checked on the source text (every ``import`` statement,
including those inside functions and ``TYPE_CHECKING`` blocks), so nothing has to be imported.
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
