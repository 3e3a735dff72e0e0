"""A window of an image or mask that may reach beyond its edges (the rest filled).

Shared by the patch grid of the preparation (patches starting in GeoSeg's top/left padding)
and the training crops (GeoSeg's ``SmartCropV1`` pads a small image before cropping).
"""

import numpy as np

__all__ = ["cut_window"]


def cut_window(
    array: np.ndarray, top: int, left: int, size: tuple[int, int], fill: int
) -> np.ndarray:
    """The ``size`` window of ``array`` whose top-left pixel is ``(top, left)``.

    ``top``/``left`` may be negative and the window may pass the bottom/right edge: pixels
    outside ``array`` are ``fill``.

    Args:
        array: ``H×W`` or ``H×W×C`` array.
        top: Row of the window's first row in ``array`` (negative: above it).
        left: Column of the window's first column (negative: left of it).
        size: Window ``(height, width)``.
        fill: Value of the pixels outside ``array``.

    Returns:
        ``height×width[×C]`` array of ``array``'s dtype.
    """
    height, width = array.shape[:2]
    out = np.full(size + array.shape[2:], fill, dtype=array.dtype)
    r0, r1 = max(top, 0), min(top + size[0], height)
    c0, c1 = max(left, 0), min(left + size[1], width)
    if r1 > r0 and c1 > c0:
        out[r0 - top : r1 - top, c0 - left : c1 - left] = array[r0:r1, c0:c1]
    return out
