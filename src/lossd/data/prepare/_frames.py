"""Preparing sources that fit in memory: one PNG image (and label) -> PNG patches.

Used by LoveDA (1024² images, kept whole by default) and UAVid (4K frames). The dataset
module supplies the label decoder and, for UAVid, the bottom-right region that is kept;
everything here is dataset-independent.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from lossd.data._labels import UnknownPolicy
from lossd.data.info import IGNORE_INDEX
from lossd.data.prepare._grid import PatchWindow, patch_grid, patch_name, region_grid
from lossd.data.prepare._outputs import PatchOutputs, SourceResult, png_size
from lossd.data.windows import cut_window
from lossd.errors import DataFormatError
from lossd.io import read_image, write_image, write_mask

__all__ = ["FrameJob", "process_frame", "size_mismatch"]

Decoder = Callable[..., np.ndarray]


@dataclass(frozen=True)
class FrameJob:
    """One source image to cut into patches (picklable: sent to worker processes).

    Attributes:
        stem: Source stem of the patch names (unique within the split).
        image: Raw RGB image file.
        label: Raw label file, or ``None`` for an unlabelled split.
        src: Raw root folder; ``meta.json`` records file names relative to it.
        split_dir: Output split folder.
        decode: The dataset's ``decode(raw, unknown=..., source=...)``.
        unknown: Policy for label values the dataset does not define.
        patch_size: Patch ``(height, width)``; ``None`` keeps the image whole.
        stride: Step between patches; ``None`` = the patch size.
        link: Hard-link (instead of re-encode) an image that is kept whole.
        region: Keep only this ``(rows, columns)`` region at the image's bottom-right corner
            and cut it into patches (:func:`region_grid`; parts beyond the image's top/left
            edge are padding: image 0, mask 255); ``None`` = the whole image.
    """

    stem: str
    image: Path
    label: Path | None
    src: Path
    split_dir: Path
    decode: Decoder
    unknown: UnknownPolicy
    patch_size: tuple[int, int] | None
    stride: tuple[int, int] | None
    link: bool = False
    region: tuple[int, int] | None = None


def size_mismatch(
    image: Path, image_hw: tuple[int, ...], label: Path, label_hw: tuple[int, ...]
) -> str:
    """The error message for an image and a label of different sizes."""
    return (
        f"image '{image}' is {image_hw[0]}×{image_hw[1]} px but its label '{label}' is "
        f"{label_hw[0]}×{label_hw[1]} px; they must be the same size (re-download the pair)"
    )


def _read_rgb(path: Path) -> np.ndarray:
    image = read_image(path)
    if image.shape[2] != 3:
        raise DataFormatError(
            f"image '{path}' has {image.shape[2]} channels; expected a 3-channel RGB image"
        )
    return image


def _write_patches(
    out: PatchOutputs,
    job: FrameJob,
    windows: list[PatchWindow],
    patch: tuple[int, int],
    whole: bool,
) -> None:
    image = _read_rgb(job.image)
    mask: np.ndarray | None = None
    if job.label is not None:
        mask = job.decode(read_image(job.label), unknown=job.unknown, source=str(job.label))
        if mask.shape != image.shape[:2]:
            raise DataFormatError(size_mismatch(job.image, image.shape, job.label, mask.shape))
    for window in windows:
        name = patch_name(job.stem, window.row, window.col)
        if whole and job.link:
            out.link(f"images/{name}.png", job.image)
        else:
            image_patch = cut_window(image, window.row, window.col, patch, 0)
            out.write(f"images/{name}.png", partial(write_image, image=image_patch))
        if mask is not None:
            mask_patch = cut_window(mask, window.row, window.col, patch, IGNORE_INDEX)
            out.write(f"masks/{name}.png", partial(write_mask, mask=mask_patch))


def process_frame(job: FrameJob) -> SourceResult:
    """Cut one image (and label) into patches; skip outputs that exist; undo on failure.

    Returns:
        The source's ``meta.json`` record and the bookkeeping of written files.

    Raises:
        DataFormatError: If a file is unreadable or truncated, not 3-channel RGB, of another
            size than its label, or the label holds unknown values (``unknown="error"``).
    """
    with PatchOutputs(job.split_dir) as out:
        height, width = png_size(job.image)
        patch = job.patch_size or (height, width)
        step = job.stride or patch
        if job.region is None:
            windows = patch_grid(height, width, patch, step)
        else:
            windows = region_grid(height, width, job.region, patch, step)
        folders = ["images"] if job.label is None else ["images", "masks"]
        names = [patch_name(job.stem, w.row, w.col) for w in windows]
        files = [[f"{folder}/{name}.png" for folder in folders] for name in names]
        flat = [name for group in files for name in group]
        if out.all_exist(flat):
            out.keep(flat)
        else:
            whole = job.region is None and (job.patch_size is None or patch == (height, width))
            _write_patches(out, job, windows, patch, whole)
        record: dict[str, Any] = {
            "stem": job.stem,
            "files": {"image": str(job.image.relative_to(job.src))}
            | ({} if job.label is None else {"label": str(job.label.relative_to(job.src))}),
            "height": height,
            "width": width,
            "crs": None,
            "transform": None,
            "patches": [
                {
                    "name": name,
                    "row": w.row,
                    "col": w.col,
                    "height": w.height,
                    "width": w.width,
                    "files": out.md5s(group),
                }
                for name, w, group in zip(names, windows, files, strict=True)
            ],
        }
        return out.result(record)
