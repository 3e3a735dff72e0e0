"""Execute a notebook top to bottom and save it with its outputs (default: the analysis one).

The committed notebook is evidence (README, "Grids, tables and the analysis notebook"):
regenerate it with this script (``make notebook``) after the records change, never by hand.
Cell timings are not recorded, so the same records and package versions give the same file.

Examples:
    python scripts/execute_notebook.py
    LOSSD_RUNS=results/runs/synthetic_grid python scripts/execute_notebook.py --out /tmp/grid.ipynb
"""

import argparse
import sys
from pathlib import Path

from lossd.errors import LossdError
from lossd.results.notebooks import execute_notebook

DEFAULT = Path("notebooks/analysis.ipynb")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", default=str(DEFAULT), help="the notebook to run")
    parser.add_argument("--out", help="where to save it (default: in place)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    try:
        written = execute_notebook(args.notebook, args.out, timeout=args.timeout)
    except (LossdError, OSError) as err:
        sys.exit(f"error: {err}")
    print(f"executed: {written}")


if __name__ == "__main__":
    main()
