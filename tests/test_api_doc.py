"""docs/api.md is runnable: every ```python block executes, and its API table is the code's."""

import inspect
import re
from pathlib import Path

import pytest
import torch

import lossd.losses as L
import lossd.losses.functional as LF

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
TEXT = DOC.read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```python\n(.*?)^```", TEXT, flags=re.MULTILINE | re.DOTALL)


def _heading_of(block: str) -> str:
    before = TEXT[: TEXT.index(block)]
    return re.findall(r"^## (.+)$", before, flags=re.MULTILINE)[-1]


def test_the_page_has_an_example_for_each_topic():
    headings = {_heading_of(block) for block in BLOCKS}
    assert headings >= {
        "One API for every loss",
        "Binary masks",
        "Maps from the data loader",
        "torch.compile",
        "segmentation_models_pytorch",
        "torchgeo",
    }
    assert "## mmsegmentation" in TEXT and "## Install" in TEXT


@pytest.mark.parametrize(
    "block", BLOCKS, ids=[f"{i}-{_heading_of(b)}" for i, b in enumerate(BLOCKS)]
)
def test_python_block_runs(block):
    torch.manual_seed(0)
    torch._dynamo.reset()
    exec(compile(block, str(DOC), "exec"), {"__name__": "api_doc"})


def test_the_api_table_lists_every_loss_with_its_arguments():
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)` \| `([^`]*)` \|$", TEXT, flags=re.MULTILINE)
    assert {cls for cls, _, _ in rows} == {n for n in L.__all__ if n.endswith("Loss")}
    for cls, function, arguments in rows:
        assert getattr(L, cls) and getattr(LF, function)
        parameters = inspect.signature(getattr(LF, function)).parameters.values()
        expected = ", ".join(
            f"{p.name}={p.default!r}" for p in parameters if p.kind is p.KEYWORD_ONLY
        )
        assert arguments == expected, cls
