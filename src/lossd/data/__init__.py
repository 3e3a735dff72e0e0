"""Datasets: class tables, the prepared-folder Dataset, transforms, synthetic data."""

from lossd.data._info import IGNORE_INDEX, DatasetInfo
from lossd.data.folder import SegmentationFolder
from lossd.data.registry import DATASET_MODULES, get_info

__all__ = ["DATASET_MODULES", "IGNORE_INDEX", "DatasetInfo", "SegmentationFolder", "get_info"]
