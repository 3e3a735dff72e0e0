"""One owner per component (issue 21): a dataset's or model's name appears in code only in its
own modules, its configs and the registries.

A name "appears in code" when it is a string constant equal to it, an identifier or attribute
named so, or an imported module named so; docstrings and comments do not count. Owners:

- dataset ``d``: ``lossd/data/d.py`` or ``lossd/data/d/``, ``lossd/data/prepare/d.py``;
- model ``m``: ``lossd/models/m.py``;
- the registries: ``lossd/data/registry.py``, ``lossd/models/_factory.py`` (and the public
  face ``lossd/models/__init__.py``);
- two declared dependencies between components (:data:`ALLOWED`): the synthetic set uses
  Potsdam's class table, SFA-Net extends UNetFormer.

Configs (``conf/``) are the dataset's and model's own files by name, checked in
:func:`test_configs_that_name_a_component_are_its_own`.
"""

import ast
from pathlib import Path

import pytest

from lossd.data import DATASET_NAMES
from lossd.models import MODEL_NAMES

ROOT = Path(__file__).resolve().parents[1]
CODE = [ROOT / "src" / "lossd", ROOT / "scripts"]
REGISTRIES = {
    "src/lossd/data/registry.py",
    "src/lossd/models/_factory.py",
    "src/lossd/models/__init__.py",  # the public face: re-exports each network's class
}
ALLOWED = {
    # the synthetic set is defined with Potsdam's class table and protocol
    ("src/lossd/data/synthetic/_info.py", "potsdam"),
    # Vaihingen has Potsdam's six classes and colours (ISPRS 2D Semantic Labeling Contest;
    # docs/datasets.md §4): one class table for both
    ("src/lossd/data/vaihingen.py", "potsdam"),
    # SFA-Net's decoder is UNetFormer's (its GlobalLocalAttention, Block and WF are UNetFormer's
    # blocks, j2jeong/priv @3c442da network/models/SFANet.py:90-269) with SFA-Net's fusion in
    # front: lossd's SFANet extends UNetFormer instead of repeating it
    ("src/lossd/models/sfanet.py", "unetformer"),
}


def _owners(name: str) -> tuple[str, ...]:
    if name in DATASET_NAMES:
        return (f"src/lossd/data/{name}.py", f"src/lossd/data/{name}/",
                f"src/lossd/data/prepare/{name}.py")  # fmt: skip
    return (f"src/lossd/models/{name}.py",)


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.add(id(value))
    return found


def names_in_code(source: str, names: set[str]) -> list[tuple[int, str]]:
    """``(line, name)`` of every use of one of ``names`` in code (not docstrings, comments)."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if node.value in names:
                hits.append((node.lineno, node.value))
        elif isinstance(node, ast.Name) and node.id in names:
            hits.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute) and node.attr in names:
            hits.append((node.lineno, node.attr))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names]
            if isinstance(node, ast.ImportFrom) and node.module:
                modules += [node.module]
            hits += [(node.lineno, p) for m in modules for p in m.split(".") if p in names]
    return sorted(set(hits))


def test_the_detector_sees_code_and_skips_docstrings_and_comments() -> None:
    source = '''"""A potsdam docstring."""
import lossd.data.potsdam  # potsdam
from lossd.data import uavid
x = "loveda"  # a comment naming sfanet
y = {"unetformer": 1}
def f():
    """Mentions fcn."""
    return uavid.INFO
'''
    hits = names_in_code(source, {"potsdam", "uavid", "loveda", "sfanet", "unetformer", "fcn"})
    assert hits == [(2, "potsdam"), (3, "uavid"), (4, "loveda"), (5, "unetformer"), (8, "uavid")]


def test_dataset_and_model_names_appear_in_code_only_in_their_own_modules() -> None:
    names = set(DATASET_NAMES) | set(MODEL_NAMES)
    offences = []
    for folder in CODE:
        for path in sorted(folder.rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in REGISTRIES:
                continue
            for line, name in names_in_code(path.read_text(encoding="utf-8"), names):
                if (relative, name) in ALLOWED:
                    continue
                if not any(relative.startswith(owner) for owner in _owners(name)):
                    offences.append(f"{relative}:{line} names {name!r}")
    assert not offences, "a dataset or model named outside its own modules:\n" + "\n".join(offences)


GENERIC_OPTIONS = {
    "inference": {"none", "flip", "d4"},
    "scheduler": {"cosine", "cosine_restarts"},
}
"""The options of conf/inference and conf/scheduler that belong to no dataset (written out: any
other file there must be named after a registered dataset)."""


@pytest.mark.parametrize("group", ["dataset", "model", "inference", "scheduler", "recipe"])
def test_configs_that_name_a_component_are_its_own(group: str) -> None:
    """conf/<group>/<name>.yaml (and conf/recipe/<dataset>_<model>.yaml) for known names only:
    a config of a removed component would be a second owner left behind."""
    names = set(DATASET_NAMES) | set(MODEL_NAMES)
    for path in (ROOT / "conf" / group).glob("*.yaml"):
        parts = path.stem.split("_") if group == "recipe" else [path.stem]
        if group in ("inference", "scheduler") and path.stem in GENERIC_OPTIONS[group]:
            continue  # a generic option, not a component's
        assert set(parts) <= names, f"{path.relative_to(ROOT)} names an unknown component"
