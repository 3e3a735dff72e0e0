"""Preparation of the official downloads into patches in the prepared layout.

Entry points, one per dataset, plus the check of a prepared folder against its ``meta.json``:

>>> from lossd.data.prepare import prepare_loveda, check_prepared
>>> prepare_loveda("raw/loveda", "data/loveda", workers=2)  # doctest: +SKIP
>>> check_prepared("data/loveda")  # doctest: +SKIP

The command line is ``python scripts/prepare_data.py {loveda,uavid,potsdam} --src RAW --dst
OUT``. Output layout: ``<dst>/<split>/{images,masks}/<stem>_<row>_<col>.<ext>`` and
``<dst>/<split>/meta.json`` (docs/design.md, Conventions).
"""

from lossd.data.prepare._grid import PatchWindow, parse_patch_name, patch_grid, patch_name
from lossd.data.prepare._meta import META_FILE, check_prepared, read_meta
from lossd.data.prepare._runner import SplitSummary
from lossd.data.prepare.loveda import prepare_loveda
from lossd.data.prepare.potsdam import prepare_potsdam
from lossd.data.prepare.uavid import prepare_uavid

__all__ = [
    "META_FILE",
    "PREPARERS",
    "PatchWindow",
    "SplitSummary",
    "check_prepared",
    "parse_patch_name",
    "patch_grid",
    "patch_name",
    "prepare_loveda",
    "prepare_potsdam",
    "prepare_uavid",
    "read_meta",
]

PREPARERS = {"loveda": prepare_loveda, "uavid": prepare_uavid, "potsdam": prepare_potsdam}
"""Dataset name -> preparation function."""
