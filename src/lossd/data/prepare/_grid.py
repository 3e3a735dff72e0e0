"""The patch grid: where patches start in a source image, their names, and bottom/right padding.

A patch is named ``<source-stem>_<row>_<col>`` with ``row``/``col`` the pixel offset of its
top-left corner in the source image (docs/design.md, Conventions), so predictions can be stitched
back. Patches start at ``0, stride, 2*stride, ...`` and the grid stops at the first patch that
reaches the image border; that last patch is padded at the bottom/right (images with 0, masks
with 255 = ignore), so every source pixel lies in at least one patch and offsets stay in
source coordinates.

:func:`region_grid` lays GeoSeg's grid over a region anchored at the bottom-right corner of the
source: where the region reaches beyond the source's top or left edge, offsets are negative and
the patch is padded at the top/left (:func:`lossd.data.windows.cut_window`). GeoSeg pads with
albumentations' ``PadIfNeeded(position='bottom_right')``, which keeps the image's bottom-right
corner, and then writes the patches that lie wholly inside the padded array
(tools/potsdam_patch_split.py:56-73, 204-211; tools/uavid_patch_split.py:101-108, 133-143
@9453fe4). UAVid's region is 2048×4096 (:data:`lossd.data.prepare.uavid.GEOSEG_REGION`), ISPRS
tiles are padded to the next multiple of the patch size (:func:`padded_region`).
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

from lossd.errors import InvalidOptionError

__all__ = [
    "PatchWindow",
    "padded_region",
    "pair",
    "parse_patch_name",
    "patch_grid",
    "patch_name",
    "patch_options",
    "patch_starts",
    "region_grid",
]

_NAME = re.compile(r"^(?P<stem>.+)_(?P<row>-?\d+)_(?P<col>-?\d+)(?:\.[A-Za-z0-9]+)?$")


@dataclass(frozen=True)
class PatchWindow:
    """One patch: its offset in the source and the extent of source pixels it holds.

    Attributes:
        row: Offset of the patch's top row in the source image (negative: the patch starts
            ``-row`` rows above the source, which are padding).
        col: Offset of the patch's left column in the source image (negative: ``-col``
            padding columns on the left).
        height: Source rows inside the patch (less than the patch height at an edge); they
            start at patch row ``max(0, -row)``.
        width: Source columns inside the patch (less than the patch width at an edge); they
            start at patch column ``max(0, -col)``.
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


def padded_region(height: int, width: int, patch_size: tuple[int, int]) -> tuple[int, int]:
    """The source size rounded up to multiples of the patch size, GeoSeg's padded tile.

    ``rh, rw = oh % patch_size, ow % patch_size``; the padding is ``patch_size - r`` where
    ``r > 0`` (GeoSeg tools/potsdam_patch_split.py:58-63 @9453fe4): 6000 -> 6144 for 1024.
    """
    return (-(-height // patch_size[0]) * patch_size[0], -(-width // patch_size[1]) * patch_size[1])


def region_grid(
    height: int,
    width: int,
    region: tuple[int, int],
    patch_size: tuple[int, int],
    stride: tuple[int, int],
) -> list[PatchWindow]:
    """GeoSeg's patches of a region anchored at the bottom-right corner of a source.

    The region covers source rows ``height - region[0] .. height - 1`` and columns
    ``width - region[1] .. width - 1``; a start below 0 means the region reaches beyond the
    source's top or left edge (padding). Patches start at ``0, stride, 2 * stride, ...`` of the
    region and only those wholly inside it are kept, as GeoSeg's ``for y in range(0, h,
    stride)`` keeps the tiles of full size (tools/potsdam_patch_split.py:204-211 @9453fe4).
    Patches that hold no source pixel (pure padding; impossible for GeoSeg's settings, where
    the padding is less than a patch) are left out; GeoSeg would write them.

    Args:
        height: Source height in pixels.
        width: Source width in pixels.
        region: ``(rows, columns)`` of the region.
        patch_size: Patch ``(height, width)``.
        stride: Step between patch starts ``(rows, cols)``; at most the patch size.

    Returns:
        One :class:`PatchWindow` per patch holding source pixels, in row-major order;
        offsets in source coordinates (may be negative).

    Raises:
        InvalidOptionError: If a stride exceeds the patch size.
    """
    if stride[0] > patch_size[0] or stride[1] > patch_size[1]:
        raise InvalidOptionError(
            f"stride {stride} is larger than patch size {patch_size}: pixels between patches "
            "would be lost; use a stride of at most the patch size"
        )
    top, left = height - region[0], width - region[1]
    windows = []
    for r in range(0, region[0] - patch_size[0] + 1, stride[0]):
        for c in range(0, region[1] - patch_size[1] + 1, stride[1]):
            row, col = top + r, left + c
            rows = min(row + patch_size[0], height) - max(row, 0)
            cols = min(col + patch_size[1], width) - max(col, 0)
            if rows > 0 and cols > 0:
                windows.append(PatchWindow(row, col, rows, cols))
    return windows


def patch_name(stem: str, row: int, col: int) -> str:
    """``<stem>_<row>_<col>``: the file stem of a patch (docs/design.md, Conventions)."""
    return f"{stem}_{row}_{col}"


def parse_patch_name(name: str) -> tuple[str, int, int]:
    """Split a patch file stem (or name with suffix) into ``(source stem, row, col)``.

    ``row`` and ``col`` may be negative (a patch reaching beyond the source's top/left edge,
    :func:`region_grid`), e.g. ``seq1_000000_112_-256`` -> ``("seq1_000000", 112, -256)``.

    Raises:
        InvalidOptionError: If the name does not end in ``_<row>_<col>``.
    """
    match = _NAME.match(PurePath(name).name)
    if match is None:
        raise InvalidOptionError(f"'{name}' is not a patch name '<stem>_<row>_<col>[.ext]'")
    return match["stem"], int(match["row"]), int(match["col"])
