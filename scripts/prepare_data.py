"""Prepare a dataset from its official download into patches (LoveDA, UAVid, ISPRS Potsdam, ...).

Usage:
    python scripts/prepare_data.py loveda  --src RAW --dst data/loveda  [--workers 2]
    python scripts/prepare_data.py uavid   --src RAW --dst data/uavid   [--patch-size 1024]
    python scripts/prepare_data.py potsdam --src RAW --dst data/potsdam [--bands RGBIR]
    python scripts/prepare_data.py potsdam --dst data/potsdam --check

All logic lives in :mod:`lossd.data.prepare`; see its docstrings for the layouts.
"""

import argparse
import sys
from typing import Any

from lossd.data.prepare import check_prepared, preparation, prepare, prepared_datasets
from lossd.errors import (
    DataFormatError,
    DatasetNotFoundError,
    InvalidOptionError,
    OutputExistsError,
)


def _size(option: str, values: list[int] | None) -> int | tuple[int, int] | None:
    if values is None:
        return None
    if len(values) not in (1, 2):
        raise InvalidOptionError(
            f"{option} {' '.join(map(str, values))}: expected 1 or 2 numbers (HEIGHT [WIDTH])"
        )
    return values[0] if len(values) == 1 else (values[0], values[1])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = prepared_datasets()
    sub = parser.add_subparsers(dest="dataset", required=True, metavar="{" + ",".join(names) + "}")
    for name in names:
        module = preparation(name)
        p = sub.add_parser(name, help=f"prepare {name}")
        p.add_argument("--src", help="raw download folder (unpacked archives)")
        p.add_argument("--dst", required=True, help="output folder of the prepared splits")
        p.add_argument("--check", action="store_true", help="verify --dst against meta.json")
        p.add_argument(
            "--splits",
            nargs="+",
            choices=module.SPLITS,
            help="splits to prepare (default: all) or to --check (default: those present)",
        )
        p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
        default = module.DEFAULT_PATCH_SIZE
        p.add_argument(
            "--patch-size",
            type=int,
            nargs="+",
            default=None if default is None else [default],
            metavar="N",
            help="patch HEIGHT [WIDTH]"
            + (f" ({default})" if default else " (default: keep the images whole)"),
        )
        p.add_argument("--stride", type=int, nargs="+", metavar="N", help="default: patch size")
        p.add_argument(
            "--unknown-colour",
            choices=["error", "ignore"],
            default="error",
            help="label colours/values not in the dataset's table: stop (error) or map to 255",
        )
        p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        if hasattr(module, "add_arguments"):  # the dataset's own options
            module.add_arguments(p)
    return parser


def run(args: argparse.Namespace) -> str:
    if args.check:
        counts = check_prepared(args.dst, args.splits)
        return "; ".join(f"{split}: {n} patches OK" for split, n in counts.items())
    if args.src is None:
        raise InvalidOptionError("--src is required unless --check is given")
    module = preparation(args.dataset)
    options: dict[str, Any] = {
        "splits": args.splits or module.SPLITS,
        "patch_size": _size("--patch-size", args.patch_size),
        "stride": _size("--stride", args.stride),
        "unknown_colour": args.unknown_colour,
        "workers": args.workers,
        "progress": not args.no_progress,
    }
    if hasattr(module, "cli_options"):
        options |= module.cli_options(args)
    summaries = prepare(args.dataset, args.src, args.dst, **options)
    return "; ".join(
        f"{s.split}: {s.patches} patches from {s.sources} images "
        f"({s.files_written} files written, {s.files_skipped} kept) in {s.path}"
        for s in summaries.values()
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        print(run(args))
    except (DatasetNotFoundError, DataFormatError, InvalidOptionError, OutputExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
