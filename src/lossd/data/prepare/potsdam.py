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
tile), by the machinery Potsdam shares with Vaihingen (:mod:`lossd.data.prepare._tiles`):

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

import argparse
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lossd.data import potsdam
from lossd.data._labels import UnknownPolicy, check_unknown_policy
from lossd.data.prepare import _tiles
from lossd.data.prepare._grid import patch_options
from lossd.data.prepare._runner import SplitPlan, SplitSummary, check_splits, run_plans
from lossd.errors import DatasetNotFoundError, InvalidOptionError

__all__ = [
    "DEFAULT_PATCH_SIZE",
    "SPLITS",
    "add_arguments",
    "cli_options",
    "prepare",
    "prepare_potsdam",
    "process_tile",
]

SPLITS: tuple[str, ...] = ("train", "val", "test")
DEFAULT_PATCH_SIZE: int | None = 1024
"""GeoSeg's --split-size 1024 (README.md:171-197 @9453fe4)."""
ERODED_SPLITS: tuple[str, ...] = ("test",)
"""Splits scored on the eroded labels (docs/datasets.md §3, Metrics): masks from ``_noBoundary``."""
FLIPPED_SPLITS: tuple[str, ...] = ("train",)
"""Splits cut in GeoSeg's train mode: each tile also flipped left-right and top-bottom."""

_TILE_ID = re.compile(r"^\d+_\d+$")

process_tile = _tiles.process_tile
"""One tile version -> georeferenced patches (:func:`lossd.data.prepare._tiles.process_tile`)."""


def _index_files(src: Path) -> dict[str, Path]:
    """Every ``top_potsdam_*.tif`` below ``src`` by file name.

    Raises:
        DataFormatError: If a file name occurs twice.
    """
    return _tiles.index_by_name(sorted(src.rglob("top_potsdam_*.tif")))


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
    details = _tiles.missing_details(missing)
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
    tile_format = _tiles.TileFormat(potsdam.BANDS[bands], f"--bands {bands}", potsdam.LABEL_COLOURS)
    plans: list[SplitPlan] = []
    missing: dict[str, dict[str, list[str]]] = {}
    for split in chosen:
        split_tiles = [t for t in table[split] if t not in exclude]
        if not split_tiles:
            raise InvalidOptionError(
                f"no {split} tiles left after excluding {list(exclude)}; change --exclude"
            )
        jobs: list[_tiles.TileJob] = []
        flips = _tiles.FLIPS if split in FLIPPED_SPLITS else _tiles.FLIPS[:1]
        for tile in split_tiles:
            files = _required_files(tile, split, bands)
            absent = [name for name in files.values() if name not in found]
            if absent:
                missing.setdefault(split, {})[tile] = absent
                continue
            paths = {role: found[name] for role, name in files.items()}
            jobs += _tiles.tile_jobs(tile, potsdam.tile_stem(tile), paths, flips, src=src,
                                     split_dir=Path(dst) / split, format=tile_format,
                                     unknown=unknown, patch_size=size, stride=step)  # fmt: skip
        options = {
            "patch_size": list(size),
            "stride": list(step),
            "bands": bands,
            "tiles": split_tiles,
            "unknown_colour": unknown,
            "flips": [f or "none" for f in flips],
        }
        eroded = split in ERODED_SPLITS
        plans.append(_tiles.split_plan("potsdam", split, process_tile, jobs, src, options,
                                       eroded, tile_format, potsdam.CLASSES))  # fmt: skip
    if missing:
        raise _missing_error(src, missing, bool(found), bands)
    return run_plans(plans, dst, workers=workers, progress=progress, desc="potsdam")


prepare = prepare_potsdam
"""The preparation tool of this dataset (:func:`lossd.data.prepare.prepare`)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Potsdam's own options of ``scripts/prepare_data.py potsdam``."""
    parser.add_argument("--bands", choices=list(potsdam.BANDS), default="RGB")
    parser.add_argument(
        "--exclude",
        nargs="*",
        default=list(potsdam.EXCLUDED_TILES),
        metavar="TILE",
        help="training tiles to leave out (default 7_10; give --exclude alone to keep all)",
    )


def cli_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :func:`prepare_potsdam` arguments of :func:`add_arguments`' options."""
    return {"bands": args.bands, "exclude": tuple(args.exclude)}
