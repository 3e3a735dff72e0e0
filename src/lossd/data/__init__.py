"""Datasets: class tables, the prepared-folder Dataset, transforms, synthetic data.

``SegmentationFolder`` (which needs torch and albumentations) is imported on first use, so the
preparation tools and their worker processes import only NumPy, OpenCV and rasterio.
"""

from typing import TYPE_CHECKING, Any

from lossd.data.info import IGNORE_INDEX, DatasetInfo
from lossd.data.registry import DATASET_MODULES, DATASET_NAMES, get_info

if TYPE_CHECKING:
    from lossd.data.folder import SegmentationFolder

__all__ = [
    "DATASET_MODULES",
    "DATASET_NAMES",
    "IGNORE_INDEX",
    "DatasetInfo",
    "SegmentationFolder",
    "get_info",
]


def __getattr__(name: str) -> Any:
    if name == "SegmentationFolder":
        from lossd.data.folder import SegmentationFolder

        return SegmentationFolder
    raise AttributeError(f"module 'lossd.data' has no attribute {name!r}")
