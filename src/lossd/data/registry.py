"""Name -> :class:`DatasetInfo` lookup; each dataset module is imported only when asked for."""

import importlib

from lossd.data.info import DatasetInfo
from lossd.errors import InvalidOptionError

__all__ = ["DATASET_MODULES", "DATASET_NAMES", "get_info"]

DATASET_MODULES: dict[str, str] = {
    "loveda": "lossd.data.loveda",
    "uavid": "lossd.data.uavid",
    "potsdam": "lossd.data.potsdam",
    "vaihingen": "lossd.data.vaihingen",
    "synthetic": "lossd.data.synthetic",
}
"""Config option ``dataset=<name>`` -> module holding that dataset's ``INFO``; the order is the
order of datasets in tables and figures."""

DATASET_NAMES: tuple[str, ...] = tuple(DATASET_MODULES)
"""Every dataset name, in table order."""


def get_info(name: str) -> DatasetInfo:
    """Return the :class:`DatasetInfo` of dataset ``name``.

    Raises:
        InvalidOptionError: If ``name`` is not a known dataset (the message lists them).
    """
    if name not in DATASET_MODULES:
        raise InvalidOptionError(
            f"unknown dataset '{name}'; expected one of {sorted(DATASET_MODULES)}"
        )
    info = importlib.import_module(DATASET_MODULES[name]).INFO
    if not isinstance(info, DatasetInfo):
        raise TypeError(f"{DATASET_MODULES[name]}.INFO is not a DatasetInfo")
    return info
