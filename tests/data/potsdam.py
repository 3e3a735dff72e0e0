"""Fake ISPRS Potsdam download in the official names and encodings (docs/datasets.md §3).

Tiles ``top_potsdam_<r>_<c>_{RGB,IRRG,RGBIR}.tif`` as georeferenced GeoTIFFs (EPSG:32633,
0.05 m pixels, neighbouring tiles touching like the real grid), 3-band colour labels
``..._label.tif`` and eroded labels ``..._label_noBoundary.tif`` (object boundaries black),
without CRS like torchgeo's fake labels, in the archive folders ``2_Ortho_RGB/``,
``3_Ortho_IRRG/``, ``4_Ortho_RGBIR/``, ``5_Labels_all/``, ``5_Labels_all_noBoundary/``.
The default size 94 with 16-px patches mimics 6000 px / 1024 px (six patches per side,
the last one mostly filled).
"""

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning

from lossd.data import potsdam

ALL_TILES = potsdam.OFFICIAL_TRAIN_TILES + potsdam.OFFICIAL_TEST_TILES
PIXEL = 0.05
ORIGIN = (366_000.0, 5_808_000.0)  # easting, northing of tile row 0, col 0 (near Potsdam)
CRS_EPSG = "EPSG:32633"
FOLDERS = {"RGB": "2_Ortho_RGB", "IRRG": "3_Ortho_IRRG", "RGBIR": "4_Ortho_RGBIR"}
BAND_INDEX = {"red": 0, "green": 1, "blue": 2, "infrared": 3}


@dataclass
class FakeTile:
    rgbir: np.ndarray  # H×W×4: R, G, B, IR
    classes: np.ndarray  # H×W full labels, 0..5
    eroded: np.ndarray  # H×W, boundaries 255
    transform: Affine


@dataclass
class FakePotsdam:
    root: Path
    tiles: dict[str, FakeTile] = field(default_factory=dict)


def tile_transform(tile: str, size: int) -> Affine:
    row, col = (int(v) for v in tile.split("_"))
    x0, y0 = ORIGIN
    return Affine(PIXEL, 0.0, x0 + col * size * PIXEL, 0.0, -PIXEL, y0 - row * size * PIXEL)


def erode(classes: np.ndarray) -> np.ndarray:
    """Class map with every pixel next to another class (4-neighbourhood) set to 255."""
    boundary = np.zeros(classes.shape, dtype=bool)
    vertical = classes[1:] != classes[:-1]
    horizontal = classes[:, 1:] != classes[:, :-1]
    boundary[1:] |= vertical
    boundary[:-1] |= vertical
    boundary[:, 1:] |= horizontal
    boundary[:, :-1] |= horizontal
    return np.where(boundary, np.uint8(255), classes)


def write_tif(path: Path, array: np.ndarray, transform: Affine | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff",
        "height": array.shape[0],
        "width": array.shape[1],
        "count": array.shape[2],
        "dtype": "uint8",
    }
    if transform is not None:
        profile |= {"crs": CRS.from_string(CRS_EPSG), "transform": transform}
    with warnings.catch_warnings():  # labels carry no georeferencing, like torchgeo's fakes
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.moveaxis(array, -1, 0))


OFFICIAL_COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 255, 255),  # impervious surfaces
    (0, 0, 255),  # building
    (0, 255, 255),  # low vegetation
    (0, 255, 0),  # tree
    (255, 255, 0),  # car
    (255, 0, 0),  # clutter/background
)
"""The label colours of the ISPRS 2D Semantic Labeling Contest in GeoSeg's class order, written
here from the sources, not from the code under test: torchgeo @7ea0616
torchgeo/datasets/potsdam.py:107-122 (``classes`` and ``colormap``, clutter first) and GeoSeg
@9453fe4 tools/potsdam_patch_split.py:29-34 (the same colours in BGR order); the eroded boundary
of ``_noBoundary`` files is black (GeoSeg :35, docs/datasets.md §3)."""
BOUNDARY_COLOUR = (0, 0, 0)


def geoseg_cut(
    array: np.ndarray, flip: str, fill: int, patch: int, stride: int
) -> dict[tuple[int, int], np.ndarray]:
    """GeoSeg's ISPRS cut, by hand: flip the whole tile or area (``"hflip"``, ``"vflip"`` or
    ``""``), pad the top/left to a multiple of the patch with ``fill``, keep the whole windows at
    the stride, keyed by their offset in the (flipped) tile (GeoSeg
    tools/potsdam_patch_split.py:56-73, 109-127, 204-211; tools/vaihingen_patch_split.py:55-68,
    126-152, 206-212, the same cut)."""
    if flip == "hflip":
        array = array[:, ::-1]
    elif flip == "vflip":
        array = array[::-1]
    height, width = array.shape[:2]
    pad_h, pad_w = (-height) % patch, (-width) % patch
    widths = [(pad_h, 0), (pad_w, 0)] + [(0, 0)] * (array.ndim - 2)
    padded = np.pad(array, widths, constant_values=fill)
    return {
        (y - pad_h, x - pad_w): padded[y : y + patch, x : x + patch]
        for y in range(0, padded.shape[0], stride)
        for x in range(0, padded.shape[1], stride)
        if y + patch <= padded.shape[0] and x + patch <= padded.shape[1]
    }


def colour(classes: np.ndarray) -> np.ndarray:
    table = np.zeros((256, 3), dtype=np.uint8)
    table[: len(OFFICIAL_COLOURS)] = OFFICIAL_COLOURS
    table[255] = BOUNDARY_COLOUR
    return table[classes]


def write_potsdam(
    root: Path,
    tiles: Iterable[str] = ALL_TILES,
    size: int = 94,
    bands: Iterable[str] = ("RGB",),
    seed: int = 0,
) -> FakePotsdam:
    """Write the fake download below ``root``; return what was written."""
    rng = np.random.default_rng(seed)
    fake = FakePotsdam(root)
    for tile in tiles:
        stem = potsdam.tile_stem(tile)
        rgbir = rng.integers(0, 256, (size, size, 4), dtype=np.uint8)
        blocks = rng.integers(0, 6, (size // 6 + 1, size // 6 + 1), dtype=np.uint8)
        classes = np.kron(blocks, np.ones((6, 6), np.uint8))[:size, :size].copy()
        classes[0, :6] = np.arange(6, dtype=np.uint8)
        transform = tile_transform(tile, size)
        for composition in bands:
            order = [BAND_INDEX[b] for b in potsdam.BANDS[composition]]
            write_tif(
                root / FOLDERS[composition] / f"{stem}_{composition}.tif",
                rgbir[:, :, order],
                transform,
            )
        eroded = erode(classes)
        write_tif(root / "5_Labels_all" / f"{stem}_label.tif", colour(classes))
        write_tif(root / "5_Labels_all_noBoundary" / f"{stem}_label_noBoundary.tif", colour(eroded))
        fake.tiles[tile] = FakeTile(rgbir, classes, eroded, transform)
    return fake
