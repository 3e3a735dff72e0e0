"""Preparation of the official downloads into patches in the prepared layout.

Every dataset with a raw download has a preparation module, named by its
:attr:`lossd.data.DatasetInfo.preparation` (``lossd.data.prepare.<name>``), which defines
``prepare(src, dst, **options)``, its ``SPLITS`` and ``DEFAULT_PATCH_SIZE``, and optionally
``add_arguments``/``cli_options`` for its own command-line options. :func:`prepare` and
:func:`preparation` reach them by dataset name; this package's own modules (the patch grid,
the runner, ``meta.json``) know no dataset.

>>> from lossd.data.prepare import prepare, check_prepared
>>> prepare("loveda", "raw/loveda", "data/loveda", workers=2)  # doctest: +SKIP
>>> check_prepared("data/loveda")  # doctest: +SKIP

The command line is ``python scripts/prepare_data.py <dataset> --src RAW --dst OUT``. Output
layout: ``<dst>/<split>/{images,masks}/<stem>_<row>_<col>.<ext>`` and
``<dst>/<split>/meta.json`` (docs/design.md, Conventions).
"""

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from lossd.data.prepare._grid import PatchWindow, parse_patch_name, patch_grid, patch_name
from lossd.data.prepare._meta import check_prepared
from lossd.data.prepare._runner import SplitSummary
from lossd.data.prepared import META_FILE, read_meta
from lossd.data.registry import DATASET_NAMES, get_info
from lossd.errors import InvalidOptionError

__all__ = [
    "META_FILE",
    "PatchWindow",
    "SplitSummary",
    "check_prepared",
    "parse_patch_name",
    "patch_grid",
    "patch_name",
    "preparation",
    "prepare",
    "prepared_datasets",
    "read_meta",
]


def prepared_datasets() -> tuple[str, ...]:
    """The datasets with a preparation tool, in table order."""
    return tuple(name for name in DATASET_NAMES if get_info(name).preparation is not None)


def preparation(dataset: str) -> ModuleType:
    """The preparation module of ``dataset`` (``prepare``, ``SPLITS``, ``DEFAULT_PATCH_SIZE``).

    Raises:
        InvalidOptionError: If the dataset has no preparation from a raw download.
    """
    module = get_info(dataset).preparation
    if module is None:
        raise InvalidOptionError(
            f"dataset {dataset!r} is not prepared from a download; expected one of "
            f"{list(prepared_datasets())}"
        )
    return importlib.import_module(module)


def prepare(
    dataset: str, src: str | Path, dst: str | Path, **options: Any
) -> dict[str, SplitSummary]:
    """Prepare ``dataset`` from its raw download ``src`` into ``dst`` (its module's ``prepare``).

    Returns:
        ``{split: SplitSummary}``.
    """
    summaries: dict[str, SplitSummary] = preparation(dataset).prepare(src, dst, **options)
    return summaries
