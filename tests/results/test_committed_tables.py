"""The tables and figures committed under results/ are exactly what the committed records give."""

from pathlib import Path

import pytest

from lossd.results import load_reference, load_runs, write_figures, write_tables

ROOT = Path(__file__).resolve().parents[2]
# table folder -> the run-record folders its README command reads
COMMITTED = {
    "synthetic_grid": ["synthetic_grid"],
    "synthetic_lambda": ["synthetic_grid", "synthetic_lambda"],
    "synthetic_lambda_full": ["synthetic_lambda_full"],
    "losses_full": ["losses_full"],
}
FIGURES = ("synthetic_lambda_full", "losses_full")  # make_tables.py --figures


@pytest.mark.parametrize("tables", sorted(COMMITTED))
def test_committed_tables_regenerate_from_the_committed_records(
    tables: str, tmp_path: Path
) -> None:
    runs = load_runs([ROOT / "results" / "runs" / name for name in COMMITTED[tables]])
    reference = load_reference(ROOT / "results" / "paper_reference.csv")
    written = write_tables(runs, tmp_path, reference)
    committed = ROOT / "results" / "tables" / tables
    assert sorted(p.name for p in written) == sorted(
        p.name for p in committed.iterdir() if p.suffix in {".md", ".tex", ".csv"}
    )
    for path in written:
        assert path.read_text(encoding="utf-8") == (committed / path.name).read_text(
            encoding="utf-8"
        ), f"results/tables/{tables}/{path.name} differs from what its records give"


@pytest.mark.parametrize("study", FIGURES)
def test_committed_figures_regenerate_byte_for_byte(study: str, tmp_path: Path) -> None:
    runs = load_runs(ROOT / "results" / "runs" / study)
    written = write_figures(runs, tmp_path)
    committed = ROOT / "results" / "figures" / study
    assert sorted(p.name for p in written) == sorted(p.name for p in committed.iterdir())
    for path in written:
        assert path.read_bytes() == (committed / path.name).read_bytes(), (
            f"results/figures/{study}/{path.name} differs from what its records give"
        )
