"""Regenerate the paper's tables from run records (or a W&B project).

Examples:
    python scripts/make_tables.py --runs results/runs/synthetic_grid --out results/tables
    python scripts/make_tables.py --runs results/runs/paper results/runs/losses --out results/tables
    python scripts/make_tables.py --wandb my-team/lossd --out results/tables/wandb

Writes main.{md,tex,csv} (each dataset's headline metric), main_<metric>.*, per-class tables
per_class_<dataset>_<metric>.*, when the runs hold other losses losses.*, and when the records
hold per-image counts paired.* (bootstrap intervals and permutation tests); see docs/grid.md.
With --figures, also the error-profile figures errors_<dataset>_<model>.{png,svg} (runs trained
with metrics.diagnostics=true), by default in results/figures/<name of the --out folder>.
"""

import argparse
import logging
import sys
from pathlib import Path

from lossd.errors import LossdError
from lossd.results import load_reference, load_runs, load_wandb_runs, write_tables
from lossd.results.evidence import write_figures

DEFAULT_REFERENCE = Path("results/paper_reference.csv")
FIGURES_ROOT = Path("results/figures")
_BESIDE_TABLES = "__beside_tables__"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--runs",
        nargs="+",
        default=["results/runs"],
        help="run-record folders (paths.results_dir of grids) or metrics.json files",
    )
    source.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read runs from W&B instead")
    parser.add_argument("--out", default="results/tables", help="folder for the tables")
    parser.add_argument(
        "--reference",
        default=None,
        help=f"published numbers (default {DEFAULT_REFERENCE} when present; 'none' to leave out)",
    )
    parser.add_argument("--experiment", help="only runs of this experiment_name")
    parser.add_argument(
        "--figures",
        nargs="?",
        const=_BESIDE_TABLES,
        metavar="DIR",
        help=f"also draw the error-profile figures (default folder: {FIGURES_ROOT}/<out name>)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        runs = load_wandb_runs(args.wandb) if args.wandb else load_runs(args.runs)
        if args.experiment:
            runs = runs[runs["experiment"] == args.experiment]
        reference = None
        if args.reference is None and DEFAULT_REFERENCE.is_file():
            reference = load_reference(DEFAULT_REFERENCE)
        elif args.reference not in (None, "none"):
            reference = load_reference(args.reference)
        written = write_tables(runs, args.out, reference)
        figures = []
        if args.figures:
            folder = FIGURES_ROOT / Path(args.out).name
            figures = write_figures(
                runs, folder if args.figures == _BESIDE_TABLES else args.figures
            )
    except (LossdError, OSError) as err:
        sys.exit(f"error: {err}")
    done = runs[runs["status"] == "completed"]
    print(f"{len(done)} completed runs ({len(runs) - len(done)} others) -> {len(written)} files:")
    for path in written:
        if path.suffix == ".md":
            print(f"  {path.with_suffix('')}.{{md,tex,csv}}")
    for path in figures:
        if path.suffix == ".png":
            print(f"  {path.with_suffix('')}.{{png,svg}}")


if __name__ == "__main__":
    main()
