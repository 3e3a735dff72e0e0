"""Raster I/O for prediction: headers, windowed reads of GeoTIFF rows, class-raster profiles.

Rasters of any size are read and written in bands of rows with rasterio windows, inside a
bounded GDAL block cache (:data:`GDAL_CACHE_MB`), so memory never holds a whole tile.
"""

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from rasterio import open as rasterio_open
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetReader
from rasterio.windows import Window

from lossd.errors import DataFormatError
from lossd.io.images import TIFF_SUFFIXES

__all__ = ["GDAL_CACHE_MB", "class_raster_profile", "image_header", "open_raster", "read_rows"]

GDAL_CACHE_MB = 256
"""GDAL block cache while reading and writing rasters: bounds memory on huge tiles."""


def open_raster(path: Path) -> DatasetReader:
    """Open a TIFF for reading (a plain TIFF without georeferencing is fine).

    Raises:
        DataFormatError: If rasterio cannot read it.
    """
    try:
        with warnings.catch_warnings():  # plain TIFFs carry no georeferencing: fine
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio_open(path)
    except RasterioError as err:
        raise DataFormatError(f"cannot read '{path}' (truncated or not a GeoTIFF?): {err}") from err


def image_header(path: Path) -> tuple[int, str]:
    """``(bands, dtype)`` of an image from its header, without decoding the pixels.

    Raises:
        DataFormatError: If the file cannot be read as an image.
    """
    if path.suffix.lower() in TIFF_SUFFIXES:
        with open_raster(path) as src:
            dtypes = set(src.dtypes)
            return src.count, dtypes.pop() if len(dtypes) == 1 else "mixed " + str(dtypes)
    try:
        with Image.open(path) as image:
            bands = len(image.getbands())
            mode = image.mode
    except (OSError, UnidentifiedImageError) as err:
        raise DataFormatError(f"cannot read '{path}' (truncated or not an image?): {err}") from err
    dtype = "uint8" if mode in {"1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "YCbCr"} else mode
    if mode == "P":
        bands = 3  # palette images decode to RGB
    return bands, dtype


def read_rows(
    src: DatasetReader, indexes: list[int], start: int, stop: int, path: Path
) -> np.ndarray:
    """Rows ``start..stop`` of the bands ``indexes`` (1-based) as ``[C, rows, width]``.

    Raises:
        DataFormatError: If the rows cannot be read (truncated or corrupt file).
    """
    try:
        data: np.ndarray = src.read(indexes, window=Window(0, start, src.width, stop - start))
    except RasterioError as err:
        raise DataFormatError(
            f"cannot read rows {start}..{stop} of '{path}' (truncated or corrupt?): {err}"
        ) from err
    return data


def class_raster_profile(src: DatasetReader) -> dict[str, Any]:
    """Profile of a single-band uint8 class raster with ``src``'s size, CRS and transform."""
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": src.height,
        "width": src.width,
        "count": 1,
        "dtype": "uint8",
        "compress": "deflate",
    }
    if src.crs is not None:
        profile["crs"] = src.crs
    if not src.transform.is_identity:
        profile["transform"] = src.transform
    return profile
