"""The tables committed under results/tables are exactly what the committed run records give."""

from pathlib import Path

import pytest

from lossd.results import load_reference, load_runs, write_tables

ROOT = Path(__file__).resolve().parents[2]
# table folder -> the run-record folders its README command reads
COMMITTED = {
    "synthetic_grid": ["synthetic_grid"],
    "synthetic_lambda": ["synthetic_grid", "synthetic_lambda"],
}


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
