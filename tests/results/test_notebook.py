"""notebooks/analysis.ipynb runs top to bottom on run records (nbclient) and is committed clean."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.results.test_plots import HISTOGRAM_RECORDS
from tests.results.test_tables import RECORDS, write_runs

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "analysis.ipynb"


def _execute(runs: Path, monkeypatch) -> nbformat.NotebookNode:
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


def test_committed_notebook_has_no_outputs_and_reads_lossd_results() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert "parameters" in code[0].metadata.get("tags", [])
    assert 'os.environ.get("LOSSD_RUNS"' in code[0].source
    assert "results/runs/synthetic_grid" in code[0].source.replace('" / "', "/")
    assert "from lossd.results import" in code[1].source
    assert not any(line.lstrip().startswith("def ") for c in code for line in c.source.splitlines())


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
    assert "No over/under-segmentation histograms" not in streams
    assert "loveda/unetformer/base: no predictions (run record" in streams
    assert "No predictions shown" in streams


@pytest.mark.slow
def test_notebook_says_when_records_have_no_histograms(tmp_path: Path, monkeypatch) -> None:
    streams, _, figures = _outputs(_execute(write_runs(tmp_path / "runs"), monkeypatch))
    assert "No over/under-segmentation histograms in these records" in streams
    assert figures == 4 + 1
