"""notebooks/analysis.ipynb runs top to bottom on run records and is committed executed.

The committed notebook carries its outputs on the committed synthetic_lambda_full records; every
table it shows must equal the file of the same name in results/tables/synthetic_lambda_full,
both as committed and when executed again here.
"""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.results.test_plots import HISTOGRAM_RECORDS
from tests.results.test_tables import RECORDS, write_runs

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "analysis.ipynb"
STUDY = "synthetic_lambda_full"
TABLES = ROOT / "results" / "tables" / STUDY


def _execute(runs: Path | None, monkeypatch) -> nbformat.NotebookNode:
    if runs is None:
        monkeypatch.delenv("LOSSD_RUNS", raising=False)  # the committed default
    else:
        monkeypatch.setenv("LOSSD_RUNS", str(runs))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    return notebook


def _outputs(notebook: nbformat.NotebookNode) -> tuple[str, str, int]:
    """(stream text, Markdown outputs, number of PNG figures) of the executed notebook."""
    streams, markdown, figures = [], [], 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", output
            if output["output_type"] == "stream":
                streams.append(output["text"])
            data = output.get("data", {})
            markdown.append(data.get("text/markdown", ""))
            figures += "image/png" in data
    return "".join(streams), "\n".join(markdown), figures


def _tables_shown(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """Markdown tables the notebook shows, keyed by the committed table file they equal."""
    committed = {p.read_text(encoding="utf-8"): p.name for p in TABLES.glob("*.md")}
    shown = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/markdown")
            if text and text.startswith("**"):
                assert text in committed, f"a table the notebook shows is not in {TABLES}:\n{text}"
                shown[committed[text]] = text
    return shown


def test_committed_notebook_is_executed_and_reads_lossd_results() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count == i for i, cell in enumerate(code, start=1))
    assert all(o["output_type"] != "error" for cell in code for o in cell.outputs)
    assert "parameters" in code[0].metadata.get("tags", [])
    assert 'os.environ.get("LOSSD_RUNS"' in code[0].source
    assert f"results/runs/{STUDY}" in code[0].source.replace('" / "', "/")
    assert "from lossd.results import" in code[1].source
    assert not any(line.lstrip().startswith("def ") for c in code for line in c.source.splitlines())
    # the committed outputs show the committed tables, the paired statistics and the figures
    assert {"main.md", "paired.md", "losses.md"} <= set(_tables_shown(notebook))
    _, _, figures = _outputs(notebook)
    assert figures >= 1 + 2 + 1  # the error profile, the per-class deltas, the scatter


@pytest.mark.slow
def test_notebook_executed_again_shows_the_committed_tables(monkeypatch) -> None:
    executed = _execute(None, monkeypatch)
    committed = nbformat.read(NOTEBOOK, as_version=4)
    assert _tables_shown(executed) == _tables_shown(committed)
    streams, _, _ = _outputs(executed)
    assert f"12 run records under results/runs/{STUDY} (12 completed)" in streams
    # every printed line of the committed notebook comes back (no machine paths in them)
    assert streams == _outputs(committed)[0]


def test_notebook_runs_on_records_with_histograms(tmp_path: Path, monkeypatch) -> None:
    runs = write_runs(tmp_path / "runs", RECORDS + HISTOGRAM_RECORDS)
    streams, markdown, figures = _outputs(_execute(runs, monkeypatch))
    assert f"13 run records under {runs} (12 completed)" in streams
    assert (
        "| LoveDA    | UNetFormer | mIoU     | test    | original   | 52.00 ± 2.00 | 55.00 ± 1.73 |"
        in markdown
    )
    assert "| Potsdam   | UNetFormer | mF1      | test    |" in markdown
    assert "**Per-class IoU on LoveDA" in markdown and "**Per-class IoU on Potsdam" in markdown
    # 2 datasets × (IoU, BIoU) deltas + the scatter + the Potsdam histograms; no checkpoints here.
    assert figures == 4 + 1 + 1
    assert "over/under-segmentation histograms in these records" not in streams
    assert "loveda/unetformer/base: no predictions (run record" in streams
    assert "No predictions shown" in streams


@pytest.mark.slow
def test_notebook_says_when_records_have_no_histograms(tmp_path: Path, monkeypatch) -> None:
    streams, _, figures = _outputs(_execute(write_runs(tmp_path / "runs"), monkeypatch))
    assert "No error profiles or over/under-segmentation histograms in these records" in streams
    assert figures == 4 + 1
