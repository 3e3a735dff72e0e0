"""Tile windows, rotated rectangles and convex polygons rasterised with OpenCV.

Polygons are filled at 1/16 px precision (``shift=4``); windows clip every shape to the tile
so that each layer touches only the pixels near it.
"""

import math
from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "Box",
    "Window",
    "coverage",
    "disc_box",
    "fill_polygons",
    "perpendicular",
    "polygon_mask",
    "rect_corners",
    "stripes",
    "unit_vector",
]


Window = tuple[slice, slice]
"""Rows and columns of a rectangular part of the tile."""


class Box:
    """A rectangular window ``[y0, y1) × [x0, x1)`` of the tile (a plain class: made often)."""

    __slots__ = ("window", "x0", "x1", "y0", "y1")

    def __init__(self, x0: int, y0: int, x1: int, y1: int) -> None:
        self.x0, self.y0, self.x1, self.y1 = x0, y0, x1, y1
        self.window: Window = (slice(y0, y1), slice(x0, x1))

    @property
    def shape(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0

    @property
    def x(self) -> np.ndarray:
        """1×w float32 column coordinates."""
        return np.arange(self.x0, self.x1, dtype=np.float32)[None, :]

    @property
    def y(self) -> np.ndarray:
        """h×1 float32 row coordinates."""
        return np.arange(self.y0, self.y1, dtype=np.float32)[:, None]


def unit_vector(angle: float) -> np.ndarray:
    """Unit vector (x, y) at ``angle`` radians from the x axis (float32)."""
    return np.array([math.cos(angle), math.sin(angle)], np.float32)


def perpendicular(axis: np.ndarray) -> np.ndarray:
    """``axis`` rotated by 90°: (x, y) -> (-y, x) (float32)."""
    return np.array([-axis[1], axis[0]], np.float32)


def rect_corners(
    centre: np.ndarray, axis: np.ndarray, half_len: float, half_wid: float
) -> np.ndarray:
    """Corners (x, y) of a rotated rectangle with long axis ``axis`` (a unit vector)."""
    cx, cy = float(centre[0]), float(centre[1])
    ax, ay = float(axis[0]) * half_len, float(axis[1]) * half_len
    bx, by = -float(axis[1]) * half_wid, float(axis[0]) * half_wid
    return np.array(
        [
            [cx + ax + bx, cy + ay + by],
            [cx - ax + bx, cy - ay + by],
            [cx - ax - bx, cy - ay - by],
            [cx + ax - bx, cy + ay - by],
        ],
        np.float32,
    )


def _box(x_lo: float, y_lo: float, x_hi: float, y_hi: float, size: int) -> Box | None:
    """The window covering ``[x_lo, x_hi] × [y_lo, y_hi]`` (plus a margin), clipped; or None."""
    x0, y0 = max(math.floor(x_lo) - 1, 0), max(math.floor(y_lo) - 1, 0)
    x1, y1 = min(math.ceil(x_hi) + 2, size), min(math.ceil(y_hi) + 2, size)
    if x1 <= x0 or y1 <= y0:
        return None
    return Box(x0, y0, x1, y1)


def disc_box(cx: float, cy: float, radius: float, size: int) -> Box | None:
    """The window covering a disc (plus a margin), clipped; or None."""
    return _box(cx - radius, cy - radius, cx + radius, cy + radius, size)


def polygon_mask(points: np.ndarray, size: int) -> tuple[Box, np.ndarray] | None:
    """Window and boolean inside-mask of a convex polygon (x, y, 1/16 px precise); or None."""
    x, y, w, h = cv2.boundingRect(points)
    box = _box(x, y, x + w, y + h, size)
    if box is None:
        return None
    canvas = np.zeros(box.shape, np.uint8)
    origin = np.array([box.x0, box.y0], np.float32)
    fixed = np.rint((points - origin) * np.float32(16)).astype(np.int32)
    cv2.fillConvexPoly(canvas, fixed, 1, lineType=cv2.LINE_8, shift=4)
    return box, canvas.view(bool)


def stripes(coord: np.ndarray, period: float, width: float) -> np.ndarray:
    """Where ``coord mod period < width`` (floor-based: numpy's float modulo is 20× slower)."""
    scaled = coord * np.float32(1.0 / period)
    return scaled - np.floor(scaled) < np.float32(width / period)


def fill_polygons(size: int, polygons: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Boolean H×W mask of the union of convex polygons (x, y vertices, 1/16 px precise).

    One ``fillConvexPoly`` call per polygon: a single ``fillPoly`` call with several contours
    would leave their overlaps empty (even-odd rule).
    """
    canvas = np.zeros((size, size), np.uint8)
    for polygon in polygons:
        fixed = np.rint(polygon * np.float32(16)).astype(np.int32)
        cv2.fillConvexPoly(canvas, fixed, 1, lineType=cv2.LINE_8, shift=4)
    return canvas.view(bool)


def coverage(masks: Sequence[np.ndarray]) -> np.ndarray:
    """How many of the boolean masks cover each pixel (uint8)."""
    count = np.zeros(masks[0].shape, np.uint8)
    for mask in masks:
        count += mask
    return count
