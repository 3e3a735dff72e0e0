"""GeoTIFF writing: uint8 rasters with their coordinate reference system and transform."""

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS

from lossd.errors import DataFormatError
from lossd.io.files import atomic_path

__all__ = ["write_geotiff"]


def write_geotiff(
    path: str | Path,
    image: np.ndarray,
    *,
    crs: CRS | None = None,
    transform: Affine | None = None,
) -> None:
    """Write an ``H×W×C`` uint8 image as an uncompressed GeoTIFF, atomically.

    Args:
        path: Target ``.tif`` file.
        image: ``H×W×C`` (or ``H×W``) uint8 array; bands are written in channel order.
        crs: Coordinate reference system, if the source is georeferenced.
        transform: Affine pixel-to-map transform of the first pixel's corner.

    Raises:
        DataFormatError: If ``image`` is not uint8.
    """
    if image.dtype != np.uint8:
        raise DataFormatError(f"cannot write '{path}': dtype {image.dtype}, expected uint8")
    bands = image[:, :, None] if image.ndim == 2 else image
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": bands.shape[0],
        "width": bands.shape[1],
        "count": bands.shape[2],
        "dtype": "uint8",
        "interleave": "pixel",
    }
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = transform
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(np.moveaxis(bands, -1, 0))
