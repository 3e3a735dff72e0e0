"""ISPRS Potsdam: from the unpacked archives to georeferenced patches.

Raw files (docs/datasets.md §3) are found by name anywhere below ``src`` (the archive folder
names are not all verified): ``top_potsdam_{r}_{c}_{RGB,IRRG,RGBIR}.tif``,
``top_potsdam_{r}_{c}_label.tif`` and ``top_potsdam_{r}_{c}_label_noBoundary.tif``.

Split (:func:`lossd.data.potsdam.split_tiles`): 14 official test tiles, validation 2_10,
the other training tiles for training with 7_10 excluded by default.

Patches as GeoSeg's ``tools/potsdam_patch_split.py`` cuts them (@9453fe4; README.md:171-197:
``--split-size 1024 --stride 1024``, train mode for training, val mode with ``--eroded`` for
test), pixel for pixel:

- every tile is padded to the next multiple of the patch size with the image anchored at the
  bottom-right (``PadIfNeeded(position='bottom_right')``, L56-73), i.e. 144 rows on *top* and
  144 columns on the *left* of a 6000² tile for 1024² patches; patches start at
  ``0, stride, ...`` of the padded tile and only whole ones are written (L204-211): 36 per
  6000² tile. The image padding is 0 (L65-66);
- the training split also holds the whole tile flipped left-right and top-bottom, each padded
  and cut the same way (train mode, L115-127: the flips come first, so their patches lie on a
  grid shifted by the padding); stems ``top_potsdam_<tile>_hflip`` and ``..._vflip``;
- the mask padding is written as 255. GeoSeg's script labels it *impervious surfaces*: it
  pads the colour label with ``value=6``, which albumentations 1.x (what it was written for)
  turns into the colour (6, 0, 0), matched by no class and so left at 0 by
  ``rgb_to_2D_label`` (L67-68, L96-106). 4.6 % of a 6144² padded tile are such pixels, trained
  on and scored. ``protocol=original`` reproduces it when loading
  (:attr:`lossd.data.potsdam.INFO` ``original_padding_label``); ``heldout`` ignores them.

Every tile is read with rasterio window by window (one patch at a time, never the whole 6000²
tile):

- ``images/<stem>_<row>_<col>.tif``: GeoTIFF with the chosen bands (RGB, IRRG or RGBIR) and
  the georeferencing of its window (CRS and window transform; a flipped copy's transform is
  mirrored, so its pixels still map to their place on the ground); ``row``/``col`` are the
  patch's offset in its (flipped) tile, negative for the padded first row/column;
- ``masks/<...>.png``: indices 0..5, 255 = ignore (padding, and the eroded boundary of the
  test labels); for test from the eroded ``_noBoundary`` labels (black boundary -> 255, the
  ISPRS protocol), else from the full labels;
- ``masks_full/<...>.png`` (test only): the full labels, for viewing.

``meta.json`` lists each patch's offset and the extent of source pixels it holds, from which
the padding is known (:class:`lossd.data.SegmentationFolder`, ``padding_label``).
Preparation version 2 (this one); version 1 cut from the top-left corner, padded at the
bottom/right and flipped each patch instead of the tile; such a folder is refused.
"""

import re
import warnings
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
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

from lossd.data import potsdam
from lossd.data._labels import (
    UnknownPolicy,
    check_unknown_policy,
    count_unknown_colours,
    unknown_label_message,
)
from lossd.data.info import IGNORE_INDEX
from lossd.data.prepare._frames import size_mismatch
from lossd.data.prepare._grid import (
    PatchWindow,
    padded_region,
    patch_grid,
    patch_name,
    patch_options,
    region_grid,
)
from lossd.data.prepare._outputs import PatchOutputs, SourceResult
from lossd.data.prepare._runner import SplitPlan, SplitSummary, check_splits, make_header, run_plans
from lossd.errors import DataFormatError, DatasetNotFoundError, InvalidOptionError
from lossd.io import write_geotiff, write_mask

__all__ = ["FLIPS", "SPLITS", "prepare_potsdam"]

SPLITS: tuple[str, ...] = ("train", "val", "test")
ERODED_SPLITS: tuple[str, ...] = ("test",)
FLIPPED_SPLITS: tuple[str, ...] = ("train",)
"""Splits cut in GeoSeg's train mode: each tile also flipped left-right and top-bottom."""
FLIPS: tuple[str, ...] = ("", "hflip", "vflip")
"""The versions of a tile in train mode, in GeoSeg's order ``[image, image_h_vlip,
image_v_vlip]`` (tools/potsdam_patch_split.py:121-122 @9453fe4), made by torchvision's
``RandomHorizontalFlip(p=1.0)`` / ``RandomVerticalFlip(p=1.0)`` (L116-119), i.e. PIL
``FLIP_LEFT_RIGHT`` (columns reversed) and ``FLIP_TOP_BOTTOM`` (rows reversed)."""
"""Splits scored on the eroded labels (docs/datasets.md §3, Metrics): masks from ``_noBoundary``."""

_GDAL_CACHE_MB = 256
"""GDAL block cache per worker: holds a row of patches of a striped tile, bounds memory."""

_TILE_ID = re.compile(r"^\d+_\d+$")


@dataclass(frozen=True)
class _TileJob:
    tile: str
    image: Path
    labels: Mapping[str, Path]  # output folder -> colour label file
    src: Path
    split_dir: Path
    bands: str
    unknown: UnknownPolicy
    patch_size: tuple[int, int]
    stride: tuple[int, int]
    flip: str = ""

    @property
    def stem(self) -> str:
        """``top_potsdam_<tile>``, plus ``_hflip``/``_vflip`` for a flipped copy."""
        base = potsdam.tile_stem(self.tile)
        return f"{base}_{self.flip}" if self.flip else base


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


def _check_image(dataset: DatasetReader, bands: str) -> None:
    expected = len(potsdam.BANDS[bands])
    if dataset.count != expected or any(d != "uint8" for d in dataset.dtypes):
        raise DataFormatError(
            f"'{dataset.name}' has {dataset.count} bands of {set(dataset.dtypes)}; expected "
            f"{expected} uint8 bands {potsdam.BANDS[bands]} for --bands {bands}"
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


def _unknown_in_file(label: DatasetReader, job: _TileJob) -> dict[tuple[int, int, int], int]:
    """Unknown colours of a whole label file (for the error message), window by window."""
    total: dict[tuple[int, int, int], int] = {}
    for w in patch_grid(label.height, label.width, job.patch_size, job.patch_size):
        raw = _read(label, Window(w.col, w.row, w.width, w.height), 3)
        for colour, count in count_unknown_colours(raw, potsdam.LABEL_COLOURS).items():
            total[colour] = total.get(colour, 0) + count
    return total


def _decode(label: DatasetReader, window: Window, job: _TileJob) -> np.ndarray:
    raw = _read(label, window, 3)
    try:
        return potsdam.decode(raw, unknown=job.unknown, source=label.name)
    except DataFormatError:
        unknown = _unknown_in_file(label, job)
        if not unknown:
            raise
        message = unknown_label_message(label.name, unknown, potsdam.LABEL_COLOURS)
        raise DataFormatError(message) from None


def _georeference(dataset: DatasetReader) -> tuple[str | None, list[float] | None]:
    if dataset.crs is None and dataset.transform == Affine.identity():
        return None, None
    crs = None if dataset.crs is None else dataset.crs.to_string()
    return crs, list(dataset.transform)[:6]


def _source_window(w: PatchWindow, job: _TileJob, height: int, width: int) -> Window:
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


def _place(pixels: np.ndarray, w: PatchWindow, job: _TileJob, fill: int) -> np.ndarray:
    """Flip the source pixels like the tile and put them into a patch padded with ``fill``."""
    if job.flip == "hflip":
        pixels = pixels[:, ::-1]
    elif job.flip == "vflip":
        pixels = pixels[::-1]
    out = np.full(job.patch_size + pixels.shape[2:], fill, dtype=pixels.dtype)
    top, left = max(-w.row, 0), max(-w.col, 0)
    out[top : top + w.height, left : left + w.width] = pixels
    return out


def _transform(dataset: DatasetReader, job: _TileJob) -> Affine:
    """The tile's pixel-to-map transform in the coordinates of its (flipped) version."""
    tile: Affine = dataset.transform
    if job.flip == "hflip":  # column c of the copy is column width - 1 - c of the tile
        return tile @ Affine(-1.0, 0.0, dataset.width, 0.0, 1.0, 0.0)
    if job.flip == "vflip":
        return tile @ Affine(1.0, 0.0, 0.0, 0.0, -1.0, dataset.height)
    return tile


def _write_image_patch(path: Path, image: DatasetReader, w: PatchWindow, job: _TileJob) -> None:
    """Read one window of the tile and write it, flipped and padded, georeferenced."""
    window = _source_window(w, job, image.height, image.width)
    pixels = _place(_read(image, window, len(potsdam.BANDS[job.bands])), w, job, 0)
    georef = _transform(image, job) @ Affine.translation(w.col, w.row)  # the patch's origin
    write_geotiff(path, pixels, crs=image.crs, transform=georef)


def _write_mask_patch(path: Path, label: DatasetReader, w: PatchWindow, job: _TileJob) -> None:
    """Read one window of a colour label, decode it and write the flipped, padded mask."""
    window = _source_window(w, job, label.height, label.width)
    write_mask(path, _place(_decode(label, window, job), w, job, IGNORE_INDEX))


def process_tile(job: _TileJob) -> SourceResult:
    """Cut one tile (or its flipped copy) into GeoTIFF image patches and PNG masks.

    Returns:
        The source's ``meta.json`` record and the bookkeeping of written files; undone on
        failure.

    Raises:
        DataFormatError: For an unreadable or truncated file, wrong bands, an image and label
            of different sizes, or unknown label colours (``unknown="error"``).
    """
    with ExitStack() as stack:
        stack.enter_context(rasterio.Env(GDAL_CACHEMAX=_GDAL_CACHE_MB))
        out = stack.enter_context(PatchOutputs(job.split_dir))
        image = stack.enter_context(_open(job.image))
        _check_image(image, job.bands)
        labels = {f: stack.enter_context(_open(path)) for f, path in job.labels.items()}
        for label in labels.values():
            _check_label(label, image)
        region = padded_region(image.height, image.width, job.patch_size)
        patches = []
        for w in region_grid(image.height, image.width, region, job.patch_size, job.stride):
            name = patch_name(job.stem, w.row, w.col)
            files = [f"images/{name}.tif"] + [f"{folder}/{name}.png" for folder in labels]
            out.write(files[0], partial(_write_image_patch, image=image, w=w, job=job))
            for folder, label in labels.items():
                writer = partial(_write_mask_patch, label=label, w=w, job=job)
                out.write(f"{folder}/{name}.png", writer)
            patches.append(
                {"name": name, "row": w.row, "col": w.col, "height": w.height,
                 "width": w.width, "files": out.md5s(files)}
            )  # fmt: skip
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
        return out.result(record)


def _index_files(src: Path) -> dict[str, Path]:
    """Every ``top_potsdam_*.tif`` below ``src`` by file name.

    Raises:
        DataFormatError: If a file name occurs twice.
    """
    found: dict[str, Path] = {}
    for path in sorted(src.rglob("top_potsdam_*.tif")):
        if path.name in found:
            raise DataFormatError(
                f"'{path.name}' is found twice, in '{found[path.name].parent}' and "
                f"'{path.parent}'; keep one copy"
            )
        found[path.name] = path
    return found


def _required_files(tile: str, split: str, bands: str) -> dict[str, str]:
    files = {"image": potsdam.image_file(tile, bands)}
    if split in ERODED_SPLITS:
        files |= {"masks": potsdam.eroded_label_file(tile), "masks_full": potsdam.label_file(tile)}
    else:
        files["masks"] = potsdam.label_file(tile)
    return files


def _check_tiles(tiles: Mapping[str, Sequence[str]], chosen: Sequence[str]) -> None:
    for split in chosen:
        if split not in tiles or not tiles[split]:
            raise InvalidOptionError(f"tiles has no tile list for split '{split}'")
        bad = [t for t in tiles[split] if not _TILE_ID.match(t)]
        if bad:
            raise InvalidOptionError(
                f"tile ids {bad} are not of the form '<row>_<col>', e.g. '2_10'"
            )


def _missing_error(
    src: Path, missing: dict[str, dict[str, list[str]]], any_found: bool, bands: str
) -> Exception:
    archives = ", ".join(potsdam.ARCHIVES[k] for k in (bands, "label", "label_noBoundary"))
    if not any_found:
        return DatasetNotFoundError(
            f"'{src}' does not look like the ISPRS Potsdam download: no top_potsdam_*.tif "
            f"below it. Expected top_potsdam_<row>_<col>_{bands}.tif, "
            "top_potsdam_<row>_<col>_label.tif and, for the test tiles, "
            f"top_potsdam_<row>_<col>_label_noBoundary.tif (archives {archives}) from "
            f"{potsdam.DOWNLOAD_URL}, unpacked anywhere below '{src}'"
        )
    details = "; ".join(
        f"{split} tile {tile} ({', '.join(files)})"
        for split, by_tile in missing.items()
        for tile, files in by_tile.items()
    )
    return DatasetNotFoundError(
        f"Potsdam tiles missing below '{src}': {details}. Unpack them from {archives} "
        f"({potsdam.DOWNLOAD_URL}), or pass --splits/--exclude to leave them out"
    )


def prepare_potsdam(
    src: str | Path,
    dst: str | Path,
    *,
    splits: Sequence[str] = SPLITS,
    bands: str = "RGB",
    patch_size: int | tuple[int, int] = 1024,
    stride: int | tuple[int, int] | None = None,
    exclude: Sequence[str] = potsdam.EXCLUDED_TILES,
    tiles: Mapping[str, Sequence[str]] | None = None,
    unknown_colour: UnknownPolicy = "error",
    workers: int = 1,
    progress: bool = True,
) -> dict[str, SplitSummary]:
    """Prepare ISPRS Potsdam train/val/test into georeferenced patches in ``dst``.

    Args:
        src: Folder below which the unpacked tiles and labels lie (any sub-folders).
        dst: Output folder; splits go to ``dst/train``, ``dst/val``, ``dst/test``.
        splits: Splits to prepare.
        bands: Image bands: ``"RGB"``, ``"IRRG"`` or ``"RGBIR"`` (the file suffix read).
        patch_size: Patch size, ``n`` or ``(height, width)``; tiles are padded at the top/left
            to a multiple of it (GeoSeg).
        stride: Step between patches (default: the patch size); at most the patch size.
        exclude: Tiles left out (default 7_10, erroneous annotations); ``()`` keeps all.
        tiles: ``{split: tile ids}`` replacing the standard split (custom experiments).
        unknown_colour: ``"error"`` stops at a label colour not in the palette (naming the
            file, colour and pixel count); ``"ignore"`` maps it to 255.
        workers: Worker processes.
        progress: Show a progress bar.

    Returns:
        ``{split: SplitSummary}``.

    Raises:
        DatasetNotFoundError: If ``src`` has no Potsdam files, or a tile of a chosen split is
            missing (the message names the tiles and files).
        DataFormatError: For unreadable, truncated or mis-sized files, or unknown label
            colours; no output of the run is left behind.
        InvalidOptionError: For an invalid option.
        OutputExistsError: If ``dst`` holds a split prepared with other options.
    """
    src = Path(src)
    chosen = check_splits(splits, SPLITS, "potsdam")
    if bands not in potsdam.BANDS:
        raise InvalidOptionError(f"bands={bands!r}; expected one of {list(potsdam.BANDS)}")
    unknown = check_unknown_policy(unknown_colour)
    size, step = patch_options(patch_size, stride)
    table = potsdam.split_tiles(tuple(exclude)) if tiles is None else tiles
    _check_tiles(table, chosen)
    found = _index_files(src) if src.is_dir() else {}
    plans: list[SplitPlan] = []
    missing: dict[str, dict[str, list[str]]] = {}
    for split in chosen:
        split_tiles = [t for t in table[split] if t not in exclude]
        if not split_tiles:
            raise InvalidOptionError(
                f"no {split} tiles left after excluding {list(exclude)}; change --exclude"
            )
        jobs = []
        flips = FLIPS if split in FLIPPED_SPLITS else FLIPS[:1]
        for tile in split_tiles:
            files = _required_files(tile, split, bands)
            absent = [name for name in files.values() if name not in found]
            if absent:
                missing.setdefault(split, {})[tile] = absent
                continue
            jobs += [
                _TileJob(
                    tile=tile,
                    image=found[files["image"]],
                    labels={f: found[n] for f, n in files.items() if f != "image"},
                    src=src,
                    split_dir=Path(dst) / split,
                    bands=bands,
                    unknown=unknown,
                    patch_size=size,
                    stride=step,
                    flip=flip,
                )
                for flip in flips
            ]
        folders = {"images": ".tif", "masks": ".png"}
        if split in ERODED_SPLITS:
            folders["masks_full"] = ".png"
        options = {
            "patch_size": list(size),
            "stride": list(step),
            "bands": bands,
            "tiles": split_tiles,
            "unknown_colour": unknown,
            "flips": [f or "none" for f in flips],
        }
        header = make_header(
            "potsdam", split, src, options, folders, potsdam.BANDS[bands], potsdam.CLASSES
        )
        plans.append(SplitPlan(split, process_tile, jobs, header))
    if missing:
        raise _missing_error(src, missing, bool(found), bands)
    return run_plans(plans, dst, workers=workers, progress=progress, desc="potsdam")
