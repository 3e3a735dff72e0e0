"""Shared file helpers of every layer: atomic writes, image and GeoTIFF I/O, colour maps.

The bottom layer of the package (with :mod:`lossd.ops` and :mod:`lossd.errors`): it imports no
other ``lossd`` subpackage, so data, engine and results all build on it (docs/extending.md,
"Layers").
"""

from lossd.io.colours import Palette, colorize, overlay, plot_segmentation
from lossd.io.files import atomic_path, read_arrays, write_arrays, write_json
from lossd.io.geotiff import write_geotiff
from lossd.io.images import TIFF_SUFFIXES, read_image, read_mask, write_image, write_mask

__all__ = [
    "TIFF_SUFFIXES",
    "Palette",
    "atomic_path",
    "colorize",
    "overlay",
    "plot_segmentation",
    "read_arrays",
    "read_image",
    "read_mask",
    "write_arrays",
    "write_geotiff",
    "write_image",
    "write_json",
    "write_mask",
]
