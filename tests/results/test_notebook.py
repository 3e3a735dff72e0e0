"""notebooks/analysis.ipynb runs top to bottom on run records and is committed executed.

The committed notebook carries its outputs on the committed synthetic_lambda_full records and,
in its last section, on the losses study's (losses_full); every table it shows must equal the
file of the same name in results/tables/<study>, both as committed and when executed again here.
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
LOSSES_STUDY = "losses_full"
TABLES = ROOT / "results" / "tables" / STUDY
LOSSES_TABLES = ROOT / "results" / "tables" / LOSSES_STUDY


def _execute(
    runs: Path | None, monkeypatch, losses_runs: Path | None = None
) -> nbformat.NotebookNode:
    if runs is None:
        monkeypatch.delenv("LOSSD_RUNS", raising=False)  # the committed defaults
        monkeypatch.delenv("LOSSD_LOSSES_RUNS", raising=False)
    else:
        monkeypatch.setenv("LOSSD_RUNS", str(runs))
        monkeypatch.setenv("LOSSD_LOSSES_RUNS", str(losses_runs or runs / "no_losses_study"))
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
    """Markdown tables the notebook shows, keyed by the committed table file they equal
    (``<study>/<name>.md``)."""
    committed = {
        p.read_text(encoding="utf-8"): f"{folder.name}/{p.name}"
        for folder in (TABLES, LOSSES_TABLES)
        for p in folder.glob("*.md")
    }
    shown = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/markdown")
            if text and text.startswith("**"):
                assert text in committed, f"a table the notebook shows is not committed:\n{text}"
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
    shown = set(_tables_shown(notebook))
    assert {f"{STUDY}/{name}" for name in ("main.md", "paired.md", "losses.md")} <= shown
    assert {f"{LOSSES_STUDY}/losses.md", f"{LOSSES_STUDY}/paired.md"} <= shown
    _, _, figures = _outputs(notebook)
    # the error profile, the per-class deltas, the scatter; the losses study's profile and scatter
    assert figures >= 1 + 2 + 1 + 1 + 1


@pytest.mark.slow
def test_notebook_executed_again_shows_the_committed_tables(monkeypatch) -> None:
    executed = _execute(None, monkeypatch)
    committed = nbformat.read(NOTEBOOK, as_version=4)
    assert _tables_shown(executed) == _tables_shown(committed)
    streams, _, _ = _outputs(executed)
    assert f"12 run records under results/runs/{STUDY} (12 completed)" in streams
    assert f"33 run records under results/runs/{LOSSES_STUDY} (33 completed)" in streams
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
    assert "No records under" in streams and "experiment=losses_full" in streams


@pytest.mark.slow
def test_notebook_says_when_records_have_no_histograms(tmp_path: Path, monkeypatch) -> None:
    streams, _, figures = _outputs(_execute(write_runs(tmp_path / "runs"), monkeypatch))
    assert "No error profiles or over/under-segmentation histograms in these records" in streams
    assert figures == 4 + 1


@pytest.mark.slow
def test_the_losses_section_shows_any_study(tmp_path: Path, monkeypatch) -> None:
    runs = write_runs(tmp_path / "runs")
    streams, markdown, _ = _outputs(_execute(runs, monkeypatch, losses_runs=runs))
    assert streams.count(f"10 run records under {runs} (9 completed)") == 2
    assert "**Loss comparison: each loss added to the base recipe**" in markdown
    assert "| LoveDA    | UNetFormer | +RMI" in markdown
