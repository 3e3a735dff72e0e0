"""ISPRS tiles: large GeoTIFF tiles and colour labels cut into patches as GeoSeg cuts them.

The ISPRS 2D Semantic Labeling Contest datasets (Potsdam, Vaihingen) ship one image file and
colour label files per tile, and GeoSeg cuts both with the same procedure
(tools/potsdam_patch_split.py and tools/vaihingen_patch_split.py @9453fe4, which share
``get_img_mask_padded``, ``image_augment`` and the cutting loop line for line):

- in train mode the whole tile is also flipped left-right and top-bottom (torchvision
  ``RandomHorizontalFlip(p=1)``/``RandomVerticalFlip(p=1)`` on the PIL image) *before* it is
  padded and cut (potsdam_patch_split.py:109-127; vaihingen_patch_split.py:126-145): the
  versions :data:`FLIPS`, stems ``<stem>``, ``<stem>_hflip``, ``<stem>_vflip``;
- every version is padded to the next multiple of the patch size with the image anchored at
  the bottom-right (``PadIfNeeded(position='bottom_right')``), i.e. at the top and left
  (potsdam_patch_split.py:56-73; vaihingen_patch_split.py:55-68), and patches start at
  ``0, stride, ...`` of the padded tile, whole ones only (potsdam_patch_split.py:204-211;
  vaihingen_patch_split.py:206-212): :func:`lossd.data.prepare._grid.region_grid` over
  :func:`lossd.data.prepare._grid.padded_region`;
- image padding is 0; mask padding is written as 255 here (GeoSeg's label for it depends on
  the albumentations version; the dataset's ``original_padding_label`` applies it when
  loading under ``protocol=original``).

Each tile is read with rasterio window by window (one patch at a time, never the whole tile);
a flipped version reads the mirrored window of the file and flips the pixels. A dataset module
(``prepare/potsdam.py``, ``prepare/vaihingen.py``) supplies the file names, the band layout and
the label colours (:class:`TileFormat`), builds one :class:`TileJob` per tile version and
passes :func:`process_tile` (or its own function built on it) to the runner.
"""

import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetReader
from rasterio.windows import Window

from lossd.data._labels import (
    UnknownPolicy,
    count_unknown_colours,
    decode_colours,
    unknown_label_message,
)
from lossd.data.info import IGNORE_INDEX
from lossd.data.prepare._frames import size_mismatch
from lossd.data.prepare._grid import PatchWindow, padded_region, patch_grid, patch_name, region_grid
from lossd.data.prepare._outputs import PatchOutputs, SourceResult
from lossd.data.prepare._runner import SplitPlan, make_header
from lossd.data.windows import cut_window
from lossd.errors import DataFormatError
from lossd.io import write_geotiff, write_mask

__all__ = [
    "FLIPS",
    "OpenTile",
    "TileFormat",
    "TileJob",
    "WindowWriter",
    "index_by_name",
    "missing_details",
    "open_tile",
    "patch_record",
    "process_tile",
    "split_plan",
    "tile_jobs",
    "tile_transform",
    "window_image",
    "window_mask",
    "write_window",
]

FLIPS: tuple[str, ...] = ("", "hflip", "vflip")
"""The versions of a tile in GeoSeg's train mode, in its order ``[image, image_h_vlip,
image_v_vlip]`` (tools/potsdam_patch_split.py:121-122, tools/vaihingen_patch_split.py:137-138
@9453fe4), made by torchvision's ``RandomHorizontalFlip(p=1.0)`` / ``RandomVerticalFlip(p=1.0)``,
i.e. PIL ``FLIP_LEFT_RIGHT`` (columns reversed) and ``FLIP_TOP_BOTTOM`` (rows reversed)."""

_GDAL_CACHE_MB = 256
"""GDAL block cache per worker: holds a row of patches of a striped tile, bounds memory."""


@dataclass(frozen=True)
class TileFormat:
    """What the tile machinery needs to know of a dataset's files (picklable).

    Attributes:
        bands: Band names of the image file, in file order (its band count is checked).
        band_hint: How those bands were chosen, for messages (``--bands RGB``).
        colours: Label colour -> class index (255: ignore), the dataset's decoder table.
    """

    bands: tuple[str, ...]
    band_hint: str
    colours: Mapping[tuple[int, int, int], int]


@dataclass(frozen=True)
class TileJob:
    """One version of one tile to cut into patches (picklable: sent to worker processes).

    Attributes:
        tile: Tile id, for ``meta.json`` and messages (``2_10``, ``30``).
        base_stem: The tile's file stem (``top_potsdam_2_10``).
        image: Image file.
        labels: Output mask folder -> colour label file (``masks``, and ``masks_full``).
        src: Raw root folder; ``meta.json`` records file names relative to it.
        split_dir: Output split folder.
        format: Bands and label colours of the dataset.
        unknown: Policy for label colours the dataset does not define.
        patch_size: Patch ``(height, width)``.
        stride: Step between patches ``(rows, cols)``.
        flip: ``""``, ``"hflip"`` or ``"vflip"`` (:data:`FLIPS`).
    """

    tile: str
    base_stem: str
    image: Path
    labels: Mapping[str, Path]
    src: Path
    split_dir: Path
    format: TileFormat
    unknown: UnknownPolicy
    patch_size: tuple[int, int]
    stride: tuple[int, int]
    flip: str = ""

    @property
    def stem(self) -> str:
        """The tile's stem, plus ``_hflip``/``_vflip`` for a flipped copy."""
        return f"{self.base_stem}_{self.flip}" if self.flip else self.base_stem


@dataclass
class OpenTile:
    """A tile whose files are open, and the bookkeeping of its outputs.

    Attributes:
        job: The job being processed.
        out: Its output files (removed again if processing fails).
        image: The open image file.
        labels: Output mask folder -> the open colour label file.
    """

    job: TileJob
    out: PatchOutputs
    image: DatasetReader
    labels: dict[str, DatasetReader]


WindowWriter = Callable[[OpenTile, PatchWindow], list[dict[str, Any]]]
"""Writes the outputs of one window of a tile; returns their ``meta.json`` patch records."""


# --- reading -----------------------------------------------------------------------------------


def _open(path: Path) -> DatasetReader:
    try:
        with warnings.catch_warnings():  # labels may carry no georeferencing: not needed
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except RasterioError as err:
        raise DataFormatError(f"cannot open '{path}' (truncated or not a GeoTIFF?): {err}") from err


def _read(dataset: DatasetReader, window: Window, count: int) -> np.ndarray:
    """Read the first ``count`` bands of ``window`` as ``h×w×count``."""
    try:
        data = dataset.read(indexes=list(range(1, count + 1)), window=window)
    except RasterioError as err:
        raise DataFormatError(
            f"cannot read rows {window.row_off}..{window.row_off + window.height} of "
            f"'{dataset.name}' (truncated or corrupt?): {err}"
        ) from err
    return np.moveaxis(data, 0, -1)  # a view: write_geotiff moves the bands back for free


def _check_image(dataset: DatasetReader, tile_format: TileFormat) -> None:
    expected = len(tile_format.bands)
    if dataset.count != expected or any(d != "uint8" for d in dataset.dtypes):
        raise DataFormatError(
            f"'{dataset.name}' has {dataset.count} bands of {set(dataset.dtypes)}; expected "
            f"{expected} uint8 bands {tile_format.bands} for {tile_format.band_hint}"
        )


def _check_label(label: DatasetReader, image: DatasetReader) -> None:
    if label.count < 3 or any(d != "uint8" for d in label.dtypes[:3]):
        raise DataFormatError(
            f"label '{label.name}' has {label.count} bands of {set(label.dtypes)}; expected a "
            "uint8 colour label with 3 bands (RGB; a 4th band is ignored)"
        )
    if label.shape != image.shape:
        raise DataFormatError(
            size_mismatch(Path(image.name), image.shape, Path(label.name), label.shape)
        )


def _unknown_in_file(label: DatasetReader, job: TileJob) -> dict[tuple[int, int, int], int]:
    """Unknown colours of a whole label file (for the error message), window by window."""
    total: dict[tuple[int, int, int], int] = {}
    for w in patch_grid(label.height, label.width, job.patch_size, job.patch_size):
        raw = _read(label, Window(w.col, w.row, w.width, w.height), 3)
        for colour, count in count_unknown_colours(raw, job.format.colours).items():
            total[colour] = total.get(colour, 0) + count
    return total


def _decode(label: DatasetReader, window: Window, job: TileJob) -> np.ndarray:
    raw = _read(label, window, 3)
    try:
        return decode_colours(raw, job.format.colours, unknown=job.unknown, source=label.name)
    except DataFormatError:
        unknown = _unknown_in_file(label, job)
        if not unknown:
            raise
        message = unknown_label_message(label.name, unknown, job.format.colours)
        raise DataFormatError(message) from None


def _georeference(dataset: DatasetReader) -> tuple[str | None, list[float] | None]:
    if dataset.crs is None and dataset.transform == Affine.identity():
        return None, None
    crs = None if dataset.crs is None else dataset.crs.to_string()
    return crs, list(dataset.transform)[:6]


def _source_window(w: PatchWindow, job: TileJob, height: int, width: int) -> Window:
    """The window of the unflipped tile holding the source pixels of patch ``w``.

    ``w`` is in the coordinates of the (flipped) tile; its source pixels are rows
    ``max(w.row, 0) ..`` and columns ``max(w.col, 0) ..`` of it, which a flip maps back to the
    mirrored rows or columns of the file.
    """
    r0, c0 = max(w.row, 0), max(w.col, 0)
    if job.flip == "hflip":
        c0 = width - (c0 + w.width)
    elif job.flip == "vflip":
        r0 = height - (r0 + w.height)
    return Window(c0, r0, w.width, w.height)


def _place(pixels: np.ndarray, w: PatchWindow, job: TileJob, fill: int) -> np.ndarray:
    """Flip the source pixels like the tile and put them into a patch padded with ``fill``."""
    if job.flip == "hflip":
        pixels = pixels[:, ::-1]
    elif job.flip == "vflip":
        pixels = pixels[::-1]
    top, left = max(-w.row, 0), max(-w.col, 0)  # the padding above and left of the pixels
    return cut_window(pixels, -top, -left, job.patch_size, fill)


def tile_transform(dataset: DatasetReader, job: TileJob) -> Affine:
    """The tile's pixel-to-map transform in the coordinates of its (flipped) version."""
    tile: Affine = dataset.transform
    if job.flip == "hflip":  # column c of the copy is column width - 1 - c of the tile
        return tile @ Affine(-1.0, 0.0, dataset.width, 0.0, 1.0, 0.0)
    if job.flip == "vflip":
        return tile @ Affine(1.0, 0.0, 0.0, 0.0, -1.0, dataset.height)
    return tile


def window_image(tile: OpenTile, w: PatchWindow) -> np.ndarray:
    """Patch ``w`` of the (flipped) tile's image, padded with 0: ``h×w×bands`` uint8."""
    image = tile.image
    window = _source_window(w, tile.job, image.height, image.width)
    return _place(_read(image, window, len(tile.job.format.bands)), w, tile.job, 0)


def window_mask(tile: OpenTile, folder: str, w: PatchWindow) -> np.ndarray:
    """Patch ``w`` of the (flipped) tile's decoded label for ``folder``, padding 255."""
    label = tile.labels[folder]
    window = _source_window(w, tile.job, label.height, label.width)
    return _place(_decode(label, window, tile.job), w, tile.job, IGNORE_INDEX)


# --- writing -----------------------------------------------------------------------------------


def _write_image_patch(path: Path, tile: OpenTile, w: PatchWindow) -> None:
    """Read one window of the tile and write it, flipped and padded, georeferenced."""
    georef = tile_transform(tile.image, tile.job) @ Affine.translation(w.col, w.row)
    write_geotiff(path, window_image(tile, w), crs=tile.image.crs, transform=georef)


def _write_mask_patch(path: Path, tile: OpenTile, folder: str, w: PatchWindow) -> None:
    """Read one window of a colour label, decode it and write the flipped, padded mask."""
    write_mask(path, window_mask(tile, folder, w))


def patch_record(tile: OpenTile, name: str, w: PatchWindow, **extra: Any) -> dict[str, Any]:
    """The ``meta.json`` record of patch ``name`` (files finished): offset, extent, md5s."""
    files = [f"images/{name}.tif"] + [f"{folder}/{name}.png" for folder in tile.labels]
    return {"name": name, "row": w.row, "col": w.col, "height": w.height, "width": w.width,
            **extra, "files": tile.out.md5s(files)}  # fmt: skip


def write_window(tile: OpenTile, w: PatchWindow) -> list[dict[str, Any]]:
    """Write patch ``w`` of the tile as it is (image and masks; skipped if already there).

    The pixels are read only for the files that are missing (a rerun resumes cheaply).
    """
    name = patch_name(tile.job.stem, w.row, w.col)
    tile.out.write(f"images/{name}.tif", partial(_write_image_patch, tile=tile, w=w))
    for folder in tile.labels:
        writer = partial(_write_mask_patch, tile=tile, folder=folder, w=w)
        tile.out.write(f"{folder}/{name}.png", writer)
    return [patch_record(tile, name, w)]


@contextmanager
def open_tile(job: TileJob) -> Iterator[OpenTile]:
    """Open a tile's files (checked) and its outputs; the outputs are undone on failure.

    Raises:
        DataFormatError: For an unreadable file, wrong bands, or an image and label of
            different sizes.
    """
    with ExitStack() as stack:
        stack.enter_context(rasterio.Env(GDAL_CACHEMAX=_GDAL_CACHE_MB))
        out = stack.enter_context(PatchOutputs(job.split_dir))
        image = stack.enter_context(_open(job.image))
        _check_image(image, job.format)
        labels = {f: stack.enter_context(_open(path)) for f, path in job.labels.items()}
        for label in labels.values():
            _check_label(label, image)
        yield OpenTile(job, out, image, labels)


def process_tile(job: TileJob, write: WindowWriter = write_window) -> SourceResult:
    """Cut one tile (or its flipped copy) into GeoTIFF image patches and PNG masks.

    Args:
        job: The tile version.
        write: Writes one window's outputs (default :func:`write_window`: the window as is).

    Returns:
        The source's ``meta.json`` record and the bookkeeping of written files; undone on
        failure.

    Raises:
        DataFormatError: For an unreadable or truncated file, wrong bands, an image and label
            of different sizes, or unknown label colours (``unknown="error"``).
    """
    with open_tile(job) as tile:
        image = tile.image
        region = padded_region(image.height, image.width, job.patch_size)
        patches = []
        for w in region_grid(image.height, image.width, region, job.patch_size, job.stride):
            patches += write(tile, w)
        crs_name, affine = _georeference(image)
        record: dict[str, Any] = {
            "stem": job.stem,
            "tile": job.tile,
            "flip": job.flip or None,
            "files": {"image": str(job.image.relative_to(job.src))}
            | {folder: str(path.relative_to(job.src)) for folder, path in job.labels.items()},
            "height": image.height,
            "width": image.width,
            "crs": crs_name,
            "transform": affine,
            "patches": patches,
        }
        return tile.out.result(record)


# --- planning ----------------------------------------------------------------------------------


def index_by_name(paths: Iterable[Path]) -> dict[str, Path]:
    """The files ``paths`` by file name.

    Raises:
        DataFormatError: If a file name occurs twice.
    """
    found: dict[str, Path] = {}
    for path in paths:
        if path.name in found:
            raise DataFormatError(
                f"'{path.name}' is found twice, in '{found[path.name].parent}' and "
                f"'{path.parent}'; keep one copy"
            )
        found[path.name] = path
    return found


def missing_details(missing: Mapping[str, Mapping[str, Sequence[str]]]) -> str:
    """``"<split> tile <id> (<files>); ..."`` for the files missing per split and tile."""
    return "; ".join(
        f"{split} tile {tile} ({', '.join(files)})"
        for split, by_tile in missing.items()
        for tile, files in by_tile.items()
    )


def tile_jobs(
    tile: str,
    base_stem: str,
    files: Mapping[str, Path],
    flips: Sequence[str],
    **settings: Any,
) -> list[TileJob]:
    """One :class:`TileJob` per version of a tile.

    Args:
        tile: Tile id.
        base_stem: The tile's file stem.
        files: ``{"image": path, <mask folder>: label path, ...}``.
        flips: The versions (:data:`FLIPS`, or its first entry alone).
        **settings: The other :class:`TileJob` fields (``src``, ``split_dir``, ``format``,
            ``unknown``, ``patch_size``, ``stride``).
    """
    labels = {folder: path for folder, path in files.items() if folder != "image"}
    return [
        TileJob(tile=tile, base_stem=base_stem, image=files["image"], labels=labels, flip=flip,
                **settings)
        for flip in flips
    ]  # fmt: skip


def split_plan(
    dataset: str,
    split: str,
    process: Callable[[Any], SourceResult],
    jobs: Sequence[Any],
    src: Path,
    options: dict[str, Any],
    eroded: bool,
    tile_format: TileFormat,
    classes: Sequence[str],
) -> SplitPlan:
    """The runner's plan of one split of tiles: GeoTIFF images, PNG masks (and full labels).

    Args:
        dataset: Dataset name.
        split: Split name.
        process: Top-level function that prepares one job.
        jobs: The split's jobs.
        src: Raw root folder.
        options: The options that change the outputs (``meta.json`` ``options``).
        eroded: Whether the masks come from eroded labels, the full ones kept in
            ``masks_full/``.
        tile_format: The dataset's bands (``meta.json`` ``band_order``).
        classes: Class names in index order.
    """
    folders = {"images": ".tif", "masks": ".png"}
    if eroded:
        folders["masks_full"] = ".png"
    header = make_header(dataset, split, src, options, folders, tile_format.bands, classes)
    return SplitPlan(split, process, jobs, header)
