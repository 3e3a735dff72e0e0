"""The patch grid: where patches start in a source image, their names, and bottom/right padding.

A patch is named ``<source-stem>_<row>_<col>`` with ``row``/``col`` the pixel offset of its
top-left corner in the source image (design.md, Conventions), so predictions can be stitched
back. Patches start at ``0, stride, 2*stride, ...`` and the grid stops at the first patch that
reaches the image border; that last patch is padded at the bottom/right (images with 0, masks
with 255 = ignore), so every source pixel lies in at least one patch and offsets stay in
source coordinates.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np

from lossd.errors import InvalidOptionError

__all__ = [
    "PatchWindow",
    "pad_patch",
    "pair",
    "parse_patch_name",
    "patch_grid",
    "patch_name",
    "patch_options",
    "patch_starts",
]

_NAME = re.compile(r"^(?P<stem>.+)_(?P<row>\d+)_(?P<col>\d+)(?:\.[A-Za-z0-9]+)?$")


@dataclass(frozen=True)
class PatchWindow:
    """One patch: its offset in the source and the extent of source pixels it holds.

    Attributes:
        row: Offset of the patch's top row in the source image.
        col: Offset of the patch's left column in the source image.
        height: Source rows inside the patch (less than the patch height at the bottom edge).
        width: Source columns inside the patch (less than the patch width at the right edge).
    """

    row: int
    col: int
    height: int
    width: int


def pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """Turn ``n`` or ``(h, w)`` into a ``(h, w)`` pair of positive ints.

    Raises:
        InvalidOptionError: If the value is not one or two positive integers.
    """
    values = (value, value) if isinstance(value, int) else tuple(value)
    if len(values) != 2 or not all(isinstance(v, int) and v > 0 for v in values):
        raise InvalidOptionError(f"{name}={value!r}: expected a positive int or (height, width)")
    return values[0], values[1]


def patch_options(
    patch_size: int | Sequence[int], stride: int | Sequence[int] | None
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Validate a patch size and stride (default: the patch size) as ``(h, w)`` pairs.

    Raises:
        InvalidOptionError: If either is not positive, or the stride exceeds the patch size.
    """
    size = pair(patch_size, "patch_size")
    step = size if stride is None else pair(stride, "stride")
    if step[0] > size[0] or step[1] > size[1]:
        raise InvalidOptionError(
            f"stride {step} is larger than patch size {size}: pixels between patches would be "
            "lost; use a stride of at most the patch size"
        )
    return size, step


def patch_starts(length: int, patch: int, stride: int) -> list[int]:
    """Start offsets along one axis: ``0, stride, ...`` until a patch reaches ``length``."""
    starts = [0]
    while starts[-1] + patch < length:
        starts.append(starts[-1] + stride)
    return starts


def patch_grid(
    height: int, width: int, patch_size: tuple[int, int], stride: tuple[int, int]
) -> list[PatchWindow]:
    """All patches of a ``height×width`` source in row-major order.

    Args:
        height: Source height in pixels.
        width: Source width in pixels.
        patch_size: Patch ``(height, width)``.
        stride: Step between patch starts ``(rows, cols)``; at most the patch size, so the
            patches cover the source.

    Returns:
        One :class:`PatchWindow` per patch.

    Raises:
        InvalidOptionError: If a stride exceeds the patch size (pixels would be skipped).
    """
    if stride[0] > patch_size[0] or stride[1] > patch_size[1]:
        raise InvalidOptionError(
            f"stride {stride} is larger than patch size {patch_size}: pixels between patches "
            "would be lost; use a stride of at most the patch size"
        )
    return [
        PatchWindow(row, col, min(patch_size[0], height - row), min(patch_size[1], width - col))
        for row in patch_starts(height, patch_size[0], stride[0])
        for col in patch_starts(width, patch_size[1], stride[1])
    ]


def pad_patch(array: np.ndarray, patch_size: tuple[int, int], fill: int) -> np.ndarray:
    """Pad an ``H×W`` or ``H×W×C`` array at the bottom/right to ``patch_size`` with ``fill``."""
    extra_rows = patch_size[0] - array.shape[0]
    extra_cols = patch_size[1] - array.shape[1]
    if extra_rows == 0 and extra_cols == 0:
        return array
    widths = [(0, extra_rows), (0, extra_cols)] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, widths, mode="constant", constant_values=fill)


def patch_name(stem: str, row: int, col: int) -> str:
    """``<stem>_<row>_<col>``: the file stem of a patch (design.md, Conventions)."""
    return f"{stem}_{row}_{col}"


def parse_patch_name(name: str) -> tuple[str, int, int]:
    """Split a patch file stem (or name with suffix) into ``(source stem, row, col)``.

    Raises:
        InvalidOptionError: If the name does not end in ``_<row>_<col>``.
    """
    match = _NAME.match(PurePath(name).name)
    if match is None:
        raise InvalidOptionError(f"'{name}' is not a patch name '<stem>_<row>_<col>[.ext]'")
    return match["stem"], int(match["row"]), int(match["col"])
