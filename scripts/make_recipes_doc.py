"""Regenerate docs/recipes.md: the training recipe of every paper cell, with its source lines.

Examples:
    python scripts/make_recipes_doc.py                  # writes docs/recipes.md
    python scripts/make_recipes_doc.py --out /tmp/recipes.md

Composes each dataset × model cell of conf/experiment/paper.yaml and lists every setting with
the YAML line that sets it and its comment (lossd.results.recipes); tests/test_recipes.py fails
when the committed file differs from what this writes.
"""

import argparse
from pathlib import Path

from lossd.results.recipes import write_recipes_doc

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "recipes.md"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output Markdown file")
    args = parser.parse_args(argv)
    print(f"wrote {write_recipes_doc(args.out)}")


if __name__ == "__main__":
    main()
