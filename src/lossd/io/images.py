"""Reading and writing of images and masks, with clear errors and atomic writes.

PNG/JPEG go through OpenCV (colour converted to RGB), TIFF through rasterio (any band count,
georeferencing available to callers that ask for it). Writes go through
:func:`lossd.io.files.atomic_path`, so an interrupted run never leaves a truncated file.
"""

from pathlib import Path

import cv2
import numpy as np
import rasterio
from rasterio.errors import RasterioIOError

from lossd.errors import DataFormatError, DatasetNotFoundError
from lossd.io.files import atomic_path

__all__ = ["TIFF_SUFFIXES", "read_image", "read_mask", "write_image", "write_mask"]

TIFF_SUFFIXES = (".tif", ".tiff")


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise DatasetNotFoundError(f"file not found: '{path}'")


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as an ``H×W×C`` uint8 array (RGB order for PNG/JPEG; band order for TIFF).

    Raises:
        DatasetNotFoundError: If the file does not exist.
        DataFormatError: If the file cannot be decoded or is not 8-bit.
    """
    path = Path(path)
    _check_exists(path)
    if path.suffix.lower() in TIFF_SUFFIXES:
        try:
            with rasterio.open(path) as src:
                array = src.read()
        except RasterioIOError as err:
            raise DataFormatError(f"cannot read TIFF '{path}': {err}") from err
        array = np.moveaxis(array, 0, -1)
    else:
        array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if array is None:
            raise DataFormatError(f"cannot decode image '{path}' (truncated or not an image?)")
        if array.ndim == 2:
            array = array[:, :, None]
        elif array.shape[2] == 3:
            array = cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
        elif array.shape[2] == 4:
            array = cv2.cvtColor(array, cv2.COLOR_BGRA2RGBA)
    if array.dtype != np.uint8:
        raise DataFormatError(f"image '{path}' has dtype {array.dtype}; expected uint8")
    return np.ascontiguousarray(array)


def read_mask(path: str | Path) -> np.ndarray:
    """Read a prepared mask: a single-channel uint8 PNG of class indices (255 = ignore).

    Raises:
        DatasetNotFoundError: If the file does not exist.
        DataFormatError: If it cannot be decoded or is not a single-channel 8-bit image.
    """
    path = Path(path)
    _check_exists(path)
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise DataFormatError(f"cannot decode mask '{path}' (truncated or not an image?)")
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise DataFormatError(
            f"mask '{path}' has shape {mask.shape} and dtype {mask.dtype}; expected a "
            "single-channel uint8 image of class indices (run scripts/prepare_data.py)"
        )
    return mask


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write an ``H×W×3`` RGB (or ``H×W``) uint8 image as PNG/JPEG, atomically."""
    if image.dtype != np.uint8:
        raise DataFormatError(f"cannot write '{path}': dtype {image.dtype}, expected uint8")
    array = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), array):
            raise DataFormatError(f"OpenCV could not write '{path}'")


def write_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write a single-channel uint8 mask of class indices as PNG, atomically."""
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise DataFormatError(
            f"cannot write mask '{path}': shape {mask.shape}, dtype {mask.dtype}; "
            "expected H×W uint8"
        )
    write_image(path, mask)
