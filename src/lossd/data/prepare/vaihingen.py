"""ISPRS Vaihingen: from the unpacked archives to patches, as GeoSeg's vaihingen_patch_split.py.

Raw files (docs/datasets.md §4) are found by name anywhere below ``src``: the images
``top_mosaic_09cm_area{N}.tif`` in a folder named ``top`` (as ``ISPRS_semantic_labeling_
Vaihingen.zip`` holds them), the full colour labels of the same file name anywhere else (the
``..._ground_truth_COMPLETE.zip`` files; ``gts_for_participants/`` may hold identical copies of
the 16 contest training labels) and the eroded labels ``top_mosaic_09cm_area{N}_noBoundary.tif``.

Split (:func:`lossd.data.vaihingen.split_areas`): the 17 contest test areas, validation area 30,
the other 15 training areas for training.

Patches as GeoSeg's ``tools/vaihingen_patch_split.py`` cuts them (@9453fe4; README.md:136-166:
training areas with ``--mode "train" --split-size 1024 --stride 512`` and full labels, test
areas with ``--mode "val" --split-size 1024 --stride 1024 --eroded``), pixel for pixel, by the
tile machinery shared with Potsdam (:mod:`lossd.data.prepare._tiles`, whose docstring cites
the lines):

- every area is padded at the *top and left* to a multiple of the patch size (image 0, mask
  255; GeoSeg's script labels the mask padding *impervious surfaces* under albumentations 1.x,
  ``value=6`` at L64 decoded by L91-101 as in the Potsdam script, which ``protocol=original``
  reproduces when loading: :attr:`lossd.data.vaihingen.INFO` ``original_padding_label``), and
  only whole windows are cut, at ``0, stride, ...`` of the padded area (L206-212);
- train mode (the training split): the whole area is also flipped left-right and top-bottom
  before it is padded (L126-145), stems ``..._hflip``/``..._vflip``; windows at stride 512
  (half the patch, ``train_stride``); and the car crops below;
- val mode (validation area 30 and the test areas): one version, windows at the patch size
  (``stride``); test masks from the eroded labels (black boundary -> 255), the full labels in
  ``masks_full/``.

**Car crops** (train mode, L156-177, L213-232). For every window GeoSeg draws
``albu.RandomSizedCrop(min_max_height=(3*h//8, h//2), width=h, height=w)``: a square of side
``c`` in ``[3n/8, n/2]`` (384..512 for 1024² windows) at a random place of the window, resized
to ``n×n`` (image ``cv2.INTER_LINEAR``, mask ``cv2.INTER_NEAREST``: albumentations 1.3.1
augmentations/crops/transforms.py:252-254, 296-303; core/transforms_interface.py:262-263). If
cars cover more than 10 % of the resized crop mask (``np.histogram(mask_crop, bins=range(7))``,
``cf[4] > 0.1``, L214-217), the window is *not* written; four 1024² patches made from the crop
are written instead: the crop, its top-bottom flip, its left-right flip and a rotation by
``k × 90°`` with ``k`` drawn from 0..3 (``RandomRotate90(p=1.0)``, so ``k = 0``, the crop
again, happens; L164-177, albumentations augmentations/geometric/rotate.py:34-43). lossd names
them ``<stem>_car<i>_<row>_<col>`` (``i`` = 0..3 in that order, GeoSeg's ``_{m}_{k}_{i}``;
``row``/``col`` the offset of the window they replace) and records the crop in ``meta.json``
(``car_crop``: window, crop offset and side in the version's coordinates, copy, ``k``). The
record's ``row``/``col``/``height``/``width`` of a car patch describe where its source pixels
lie inside it (a :class:`lossd.data.prepare.PatchWindow` of the resized, flipped or rotated
crop), so that ``protocol=original`` labels its padding as GeoSeg does; its image GeoTIFF
carries the transform of the zoomed crop (in the area's pixel grid: the tiles are not
georeferenced).

**The random draws.** GeoSeg draws from Python's ``random`` in its pool workers
(``mpp.Pool(...).map``, L270), which Python re-seeds from the operating system after every fork
(CPython random.py:900, ``os.register_at_fork(after_in_child=_inst.seed)``), so its
``seed_everything(42)`` (L16, L238) does not reach them: GeoSeg's crops differ from run to run.
lossd makes them reproducible: each area version draws from its own ``random.Random`` seeded
with ``"<seed>:<version stem>"`` (``seed`` 42 by default, GeoSeg's ``SEED``), in exactly the
order and with exactly the calls of albumentations 1.3.1 under GeoSeg's script, window by window
in row-major order: ``random()`` (the transform's ``p`` check, BasicTransform.__call__,
core/transforms_interface.py:101), ``randint(3n//8, n//2)``, ``random()``, ``random()``
(``RandomSizedCrop.get_params``, crops/transforms.py:296-303); after a car-rich crop
``random()`` three times (the ``p`` checks of VerticalFlip, HorizontalFlip, RandomRotate90)
and ``randint(0, 3)``. With ``random.seed("<seed>:<version stem>")`` at the start of each
version, GeoSeg's own functions give lossd's patches (checked on fake areas, docs/datasets.md
§4). The val-mode splits draw nothing (GeoSeg draws the crop there too, L213, but never writes
it).
``car_crops=False`` writes every training window as it is (Potsdam's procedure).
"""

import argparse
import filecmp
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from affine import Affine

from lossd.data import vaihingen
from lossd.data._labels import UnknownPolicy, check_unknown_policy
from lossd.data.prepare import _tiles
from lossd.data.prepare._grid import PatchWindow, pair, patch_name, patch_options
from lossd.data.prepare._outputs import SourceResult
from lossd.data.prepare._runner import SplitPlan, SplitSummary, check_splits, run_plans
from lossd.errors import DataFormatError, DatasetNotFoundError, InvalidOptionError
from lossd.io import write_geotiff, write_mask

__all__ = [
    "CAR_SHARE",
    "COPIES",
    "DEFAULT_PATCH_SIZE",
    "GEOSEG_SEED",
    "SPLITS",
    "add_arguments",
    "cli_options",
    "prepare",
    "prepare_vaihingen",
    "process_tile",
]

SPLITS: tuple[str, ...] = ("train", "val", "test")
DEFAULT_PATCH_SIZE: int | None = 1024
"""GeoSeg's --split-size 1024 (README.md:145, 154 @9453fe4)."""
ERODED_SPLITS: tuple[str, ...] = ("test",)
"""Splits scored on the eroded labels (docs/datasets.md §4): masks from ``_noBoundary``."""
TRAIN_MODE_SPLITS: tuple[str, ...] = ("train",)
"""Splits cut in GeoSeg's train mode: flipped copies, training stride, car crops."""

GEOSEG_SEED = 42
"""GeoSeg's ``SEED`` (tools/vaihingen_patch_split.py:16), lossd's default crop seed."""
CAR = vaihingen.CLASSES.index("car")
"""Class index of cars, GeoSeg's ``cf[4]`` (tools/vaihingen_patch_split.py:33, 217)."""
CAR_SHARE = 0.1
"""A crop whose car share exceeds this replaces its window (``cf[4] > 0.1``, L217)."""
COPIES: tuple[str, ...] = ("crop", "vflip", "hflip", "rot90")
"""The patches made of a car-rich crop, in GeoSeg's order ``[image, image_vflip, image_hflip,
image_rotate]`` (tools/vaihingen_patch_split.py:174), file suffix ``_car<i>``."""

_AREA_PATTERN = "top_mosaic_09cm_area*.tif"
_ERODED_SUFFIX = "_noBoundary.tif"


@dataclass(frozen=True)
class _AreaJob:
    """One version of one area (picklable): the tile job and its car-crop rule."""

    tile: _tiles.TileJob
    car_crops: bool
    seed: int


def _copy_affine(copy: str, k: int, n: int) -> Affine:
    """Pixel coordinates of a copy -> those of the resized crop (both ``n×n``)."""
    if copy == "vflip":
        return Affine(1.0, 0.0, 0.0, 0.0, -1.0, n)
    if copy == "hflip":
        return Affine(-1.0, 0.0, n, 0.0, 1.0, 0.0)
    quarter = Affine(0.0, -1.0, n, 1.0, 0.0, 0.0)  # np.rot90(a, 1): out[i, j] = a[j, n-1-i]
    turn = Affine.identity()
    for _ in range(k if copy == "rot90" else 0):
        turn = turn @ quarter
    return turn


def _copy(array: np.ndarray, copy: str, k: int) -> np.ndarray:
    """The pixels of a copy of the resized crop (albumentations 1.3.1's flips and rot90)."""
    if copy == "vflip":
        return np.ascontiguousarray(array[::-1])
    if copy == "hflip":
        return np.ascontiguousarray(array[:, ::-1])
    if copy == "rot90":
        return np.ascontiguousarray(np.rot90(array, k))
    return array


def _source_box(inside: np.ndarray) -> PatchWindow:
    """The rectangle of ``True`` in ``inside`` as a window of the patch (row = -top, ...)."""
    rows = np.flatnonzero(inside.any(axis=1))
    cols = np.flatnonzero(inside.any(axis=0))
    return PatchWindow(-int(rows[0]), -int(cols[0]), len(rows), len(cols))


def _write_copy(
    tile: _tiles.OpenTile, name: str, pixels: np.ndarray, mask: np.ndarray, georef: Affine
) -> None:
    tile.out.write(
        f"images/{name}.tif",
        lambda path: write_geotiff(path, pixels, crs=tile.image.crs, transform=georef),
    )
    tile.out.write(f"masks/{name}.png", lambda path: write_mask(path, mask))


def _write_window_or_crops(
    tile: _tiles.OpenTile, w: PatchWindow, rng: random.Random
) -> list[dict[str, Any]]:
    """GeoSeg's train-mode window: the window, or four patches of a car-rich crop of it."""
    n = tile.job.patch_size[0]
    # albu.RandomSizedCrop(min_max_height=(int(3*h//8), int(h//2)), width=h, height=w) (L159)
    rng.random()  # BasicTransform.__call__: random.random() < p (p=1.0)
    side = rng.randint(3 * n // 8, n // 2)
    h_start, w_start = rng.random(), rng.random()
    top = int((n - side + 1) * h_start)  # crops/functional.py:39-41
    left = int((n - side + 1) * w_start)

    def crop(array: np.ndarray, interpolation: int) -> np.ndarray:
        part = array[top : top + side, left : left + side]
        resized: np.ndarray = cv2.resize(part, (n, n), interpolation=interpolation)
        return resized

    mask = crop(_tiles.window_mask(tile, "masks", w), cv2.INTER_NEAREST)
    if np.count_nonzero(mask == CAR) / mask.size <= CAR_SHARE:
        return _tiles.write_window(tile, w)
    for _ in range(3):  # the p checks of VerticalFlip, HorizontalFlip, RandomRotate90 (p=1.0)
        rng.random()
    k = rng.randint(0, 3)  # RandomRotate90.get_params
    image = crop(_tiles.window_image(tile, w), cv2.INTER_LINEAR)
    inside = np.zeros(tile.job.patch_size, np.uint8)  # the window's source pixels
    first_row, first_col = max(-w.row, 0), max(-w.col, 0)
    inside[first_row : first_row + w.height, first_col : first_col + w.width] = 1
    inside = crop(inside, cv2.INTER_NEAREST)
    zoom = (
        _tiles.tile_transform(tile.image, tile.job)
        @ Affine.translation(w.col + left, w.row + top)
        @ Affine.scale(side / n)
    )
    records = []
    for i, copy in enumerate(COPIES):
        name = patch_name(f"{tile.job.stem}_car{i}", w.row, w.col)
        georef = zoom @ _copy_affine(copy, k, n)
        _write_copy(tile, name, _copy(image, copy, k), _copy(mask, copy, k), georef)
        box = _source_box(_copy(inside, copy, k).astype(bool))
        detail = {"window": [w.row, w.col], "crop": [w.row + top, w.col + left, side],
                  "copy": copy, "k": k if copy == "rot90" else 0}  # fmt: skip
        records.append(_tiles.patch_record(tile, name, box, car_crop=detail))
    return records


def _stream_seed(seed: int, stem: str) -> str:
    """The seed of an area version's random stream (module docstring, "The random draws")."""
    return f"{seed}:{stem}"


def process_tile(job: _AreaJob) -> SourceResult:
    """Cut one area version into patches; car-rich training windows become crops.

    Raises:
        DataFormatError: For an unreadable or truncated file, wrong bands, an image and label
            of different sizes, or unknown label colours (``unknown="error"``).
    """
    if not job.car_crops:
        return _tiles.process_tile(job.tile)
    rng = random.Random(_stream_seed(job.seed, job.tile.stem))
    return _tiles.process_tile(job.tile, partial(_write_window_or_crops, rng=rng))


def _labels_by_name(paths: Iterable[Path]) -> dict[str, Path]:
    """Full labels by file name; two copies of one name are accepted when they are identical.

    Of identical copies, the one outside ``gts_for_participants/`` (the COMPLETE archive's) is
    recorded in ``meta.json``.

    Raises:
        DataFormatError: If two different files have the same name.
    """
    found: dict[str, Path] = {}
    for path in paths:
        first = found.setdefault(path.name, path)
        if first == path:
            continue
        if not filecmp.cmp(first, path, shallow=False):
            raise DataFormatError(
                f"'{path.name}' is found twice with different content, in '{first.parent}' "
                f"and '{path.parent}'; keep one copy (the labels of "
                f"{vaihingen.ARCHIVES['label']})"
            )
        if first.parent.name == vaihingen.PARTICIPANTS_FOLDER:
            found[path.name] = path
    return found


def _index_files(src: Path) -> dict[str, dict[str, Path]]:
    """The raw files below ``src`` by kind (``image``, ``label``, ``label_noBoundary``) and name.

    Raises:
        DataFormatError: If an image or eroded label name occurs twice, or two different full
            labels have one name.
    """
    images, labels, eroded = [], [], []
    for path in sorted(src.rglob(_AREA_PATTERN)):
        if path.name.endswith(_ERODED_SUFFIX):
            eroded.append(path)
        elif path.parent.name == vaihingen.IMAGE_FOLDER:
            images.append(path)
        else:
            labels.append(path)
    return {
        "image": _tiles.index_by_name(images),
        "label": _labels_by_name(labels),
        "label_noBoundary": _tiles.index_by_name(eroded),
    }


def _required_files(area: int, split: str) -> dict[str, tuple[str, str]]:
    """Role -> (kind, file name) of the files an area of ``split`` needs."""
    files = {"image": ("image", vaihingen.image_file(area))}
    if split in ERODED_SPLITS:
        files["masks"] = ("label_noBoundary", vaihingen.eroded_label_file(area))
        files["masks_full"] = ("label", vaihingen.label_file(area))
    else:
        files["masks"] = ("label", vaihingen.label_file(area))
    return files


def _shown(kind: str, name: str) -> str:
    return f"{vaihingen.IMAGE_FOLDER}/{name}" if kind == "image" else name


def _check_areas(areas: Mapping[str, Sequence[int]], chosen: Sequence[str]) -> None:
    for split in chosen:
        if split not in areas or not areas[split]:
            raise InvalidOptionError(f"areas has no area list for split '{split}'")
        bad = [a for a in areas[split] if isinstance(a, bool) or not isinstance(a, int) or a < 1]
        if bad:
            raise InvalidOptionError(f"area ids {bad} are not area numbers such as 30")


def _missing_error(
    src: Path, missing: dict[str, dict[str, list[str]]], any_found: bool
) -> Exception:
    archives = ", ".join(vaihingen.ARCHIVES.values())
    if not any_found:
        return DatasetNotFoundError(
            f"'{src}' does not look like the ISPRS Vaihingen download: no {_AREA_PATTERN} "
            f"below it. Expected {vaihingen.IMAGE_FOLDER}/top_mosaic_09cm_area<N>.tif (the "
            "images), top_mosaic_09cm_area<N>.tif elsewhere (the labels) and, for the test "
            f"areas, top_mosaic_09cm_area<N>_noBoundary.tif (archives {archives}) from "
            f"{vaihingen.DOWNLOAD_URL}, unpacked anywhere below '{src}'"
        )
    return DatasetNotFoundError(
        f"Vaihingen areas missing below '{src}': {_tiles.missing_details(missing)}. Unpack "
        f"them from {archives} ({vaihingen.DOWNLOAD_URL}), or pass --splits to leave a split "
        "out"
    )


def _train_step(
    size: tuple[int, int],
    stride: int | tuple[int, int] | None,
    train_stride: int | tuple[int, int] | None,
) -> tuple[int, int]:
    """The training windows' step: ``train_stride``, else ``stride``, else half the patch."""
    if train_stride is None and stride is None:
        train_stride = (max(size[0] // 2, 1), max(size[1] // 2, 1))
    _, step = patch_options(size, stride if train_stride is None else train_stride)
    return step


def prepare_vaihingen(
    src: str | Path,
    dst: str | Path,
    *,
    splits: Sequence[str] = SPLITS,
    patch_size: int | tuple[int, int] = 1024,
    stride: int | tuple[int, int] | None = None,
    train_stride: int | tuple[int, int] | None = None,
    areas: Mapping[str, Sequence[int]] | None = None,
    car_crops: bool = True,
    seed: int = GEOSEG_SEED,
    unknown_colour: UnknownPolicy = "error",
    workers: int = 1,
    progress: bool = True,
) -> dict[str, SplitSummary]:
    """Prepare ISPRS Vaihingen train/val/test into patches in ``dst``, as GeoSeg cuts them.

    Args:
        src: Folder below which the unpacked archives lie (any sub-folders; the images in a
            folder named ``top``).
        dst: Output folder; splits go to ``dst/train``, ``dst/val``, ``dst/test``.
        splits: Splits to prepare.
        patch_size: Patch size, ``n`` or ``(height, width)`` (square with car crops); areas are
            padded at the top/left to a multiple of it.
        stride: Step between the windows of every split (default: the patch size for val and
            test, GeoSeg's ``--stride 1024``); at most the patch size.
        train_stride: Step between the training windows (default: ``stride`` if given, else
            half the patch size, GeoSeg's ``--stride 512`` for 1024² patches).
        areas: ``{split: area numbers}`` replacing the standard split (custom experiments).
        car_crops: Replace car-rich training windows by four zoomed crops (GeoSeg's train
            mode; module docstring); False writes every window as it is.
        seed: Seed of the car crops' random streams (GeoSeg's ``SEED`` 42 by default).
        unknown_colour: ``"error"`` stops at a label colour not in the palette (naming the
            file, colour and pixel count); ``"ignore"`` maps it to 255.
        workers: Worker processes.
        progress: Show a progress bar.

    Returns:
        ``{split: SplitSummary}``.

    Raises:
        DatasetNotFoundError: If ``src`` has no Vaihingen files, or an area of a chosen split
            is missing (the message names the areas and files).
        DataFormatError: For unreadable, truncated or mis-sized files, duplicate files, or
            unknown label colours; no output of the run is left behind.
        InvalidOptionError: For an invalid option (car crops need square patches).
        OutputExistsError: If ``dst`` holds a split prepared with other options.
    """
    src = Path(src)
    chosen = check_splits(splits, SPLITS, "vaihingen")
    unknown = check_unknown_policy(unknown_colour)
    size, step = patch_options(patch_size, stride)
    train_step = _train_step(size, stride, train_stride)
    if car_crops and size[0] != size[1]:
        raise InvalidOptionError(
            f"patch_size={list(size)}: car crops are square (GeoSeg's --split-size is one "
            "number); use a square patch size or car_crops=False (--no-car-crops)"
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidOptionError(f"seed={seed!r}: expected an int")
    table = vaihingen.split_areas() if areas is None else areas
    _check_areas(table, chosen)
    found = _index_files(src) if src.is_dir() else {kind: {} for kind in vaihingen.ARCHIVES}
    tile_format = _tiles.TileFormat(
        vaihingen.BANDS, "the IRRG tiles of Vaihingen", vaihingen.LABEL_COLOURS
    )
    plans: list[SplitPlan] = []
    missing: dict[str, dict[str, list[str]]] = {}
    for split in chosen:
        train_mode = split in TRAIN_MODE_SPLITS
        flips = _tiles.FLIPS if train_mode else _tiles.FLIPS[:1]
        split_step = train_step if train_mode else step
        crops = car_crops and train_mode
        jobs: list[_AreaJob] = []
        for area in table[split]:
            files = _required_files(area, split)
            absent = [
                _shown(kind, name) for kind, name in files.values() if name not in found[kind]
            ]
            if absent:
                missing.setdefault(split, {})[str(area)] = absent
                continue
            paths = {role: found[kind][name] for role, (kind, name) in files.items()}
            settings = {"src": src, "split_dir": Path(dst) / split, "format": tile_format,
                        "unknown": unknown, "patch_size": size, "stride": split_step}  # fmt: skip
            tile_jobs = _tiles.tile_jobs(
                str(area), vaihingen.tile_stem(area), paths, flips, **settings
            )
            jobs += [_AreaJob(job, crops, seed) for job in tile_jobs]
        options: dict[str, Any] = {
            "patch_size": list(size),
            "stride": list(split_step),
            "areas": list(table[split]),
            "unknown_colour": unknown,
            "flips": [f or "none" for f in flips],
        }
        if train_mode:
            options["car_crops"] = {"share": CAR_SHARE, "seed": seed} if crops else None
        eroded = split in ERODED_SPLITS
        plans.append(_tiles.split_plan("vaihingen", split, process_tile, jobs, src, options,
                                       eroded, tile_format, vaihingen.CLASSES))  # fmt: skip
    if missing:
        raise _missing_error(src, missing, any(found.values()))
    return run_plans(plans, dst, workers=workers, progress=progress, desc="vaihingen")


prepare = prepare_vaihingen
"""The preparation tool of this dataset (:func:`lossd.data.prepare.prepare`)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Vaihingen's own options of ``scripts/prepare_data.py vaihingen``."""
    parser.add_argument(
        "--train-stride",
        type=int,
        nargs="+",
        metavar="N",
        help="step of the training windows (default: --stride if given, else half the patch: "
        "GeoSeg's 512 for 1024)",
    )
    parser.add_argument(
        "--no-car-crops",
        action="store_true",
        help="write every training window as it is (GeoSeg replaces car-rich ones by crops)",
    )
    parser.add_argument(
        "--seed", type=int, default=GEOSEG_SEED, help="seed of the car crops (GeoSeg's 42)"
    )


def cli_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :func:`prepare_vaihingen` arguments of :func:`add_arguments`' options."""
    values = args.train_stride
    train_stride = None
    if values is not None:
        train_stride = pair(values[0] if len(values) == 1 else values, "--train-stride")
    return {"train_stride": train_stride, "car_crops": not args.no_car_crops, "seed": args.seed}
