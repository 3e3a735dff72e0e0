"""Fake ISPRS Vaihingen download in the official names, folders and encodings (docs/datasets.md §4).

The three archives unpacked in their own folders, as torchgeo's fake data lays them out
(torchgeo @7ea0616 tests/data/vaihingen: ``top/`` for the images, the labels beside it):

- ``ISPRS_semantic_labeling_Vaihingen/top/top_mosaic_09cm_area<N>.tif``: 3-band uint8 IRRG
  tiles, not georeferenced (torchgeo pull request 248: "The images are not georeferenced"),
  of sizes that are not multiples of the patch and not square (the real ones are 1,281 to
  3,816 px a side);
- ``ISPRS_semantic_labeling_Vaihingen/gts_for_participants/<same name>``: the labels of the 16
  contest training areas (written when ``participants=True``), identical to
- ``ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE/<same name>``: 3-band colour
  labels of every area;
- ``ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE/top_mosaic_09cm_area<N>_
  noBoundary.tif``: the eroded labels, object boundaries black.

Labels are blocks of random classes (cars about one sixth of the pixels), so some of GeoSeg's
zoomed crops of a window are car-rich and others not.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tests.data.potsdam import erode, write_tif

IMAGES = "ISPRS_semantic_labeling_Vaihingen/top"
PARTICIPANTS = "ISPRS_semantic_labeling_Vaihingen/gts_for_participants"
LABELS = "ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE"
ERODED = "ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE"

OFFICIAL_TRAIN = (1, 3, 5, 7, 11, 13, 15, 17, 21, 23, 26, 28, 30, 32, 34, 37)
"""The contest's labelled training areas, written here from torchgeo @7ea0616
torchgeo/datasets/vaihingen.py:68-85 (not from the code under test)."""

OFFICIAL_COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 255, 255),  # impervious surfaces
    (0, 0, 255),  # building
    (0, 255, 255),  # low vegetation
    (0, 255, 0),  # tree
    (255, 255, 0),  # car
    (255, 0, 0),  # clutter/background
)
"""The Vaihingen label colours in GeoSeg's class order, written here from the sources, not from
the code under test: torchgeo @7ea0616 torchgeo/datasets/vaihingen.py:106-121 (``classes`` and
``colormap``, clutter first) and GeoSeg @9453fe4 tools/vaihingen_patch_split.py:29-34 (the same
colours in BGR order: ``Building = [255, 0, 0]`` is RGB blue); the eroded boundary of the
``_noBoundary`` files is black (GeoSeg :35 ``Boundary = [0, 0, 0]``)."""
BOUNDARY_COLOUR = (0, 0, 0)


@dataclass
class FakeArea:
    irrg: np.ndarray  # H×W×3: infrared, red, green
    classes: np.ndarray  # H×W full labels, 0..5
    eroded: np.ndarray  # H×W, boundaries 255


@dataclass
class FakeVaihingen:
    root: Path
    areas: dict[int, FakeArea] = field(default_factory=dict)


def colour(classes: np.ndarray) -> np.ndarray:
    table = np.zeros((256, 3), dtype=np.uint8)
    table[: len(OFFICIAL_COLOURS)] = OFFICIAL_COLOURS
    table[255] = BOUNDARY_COLOUR
    return table[classes]


def stem(area: int) -> str:
    return f"top_mosaic_09cm_area{area}"


def write_vaihingen(
    root: Path,
    areas: Iterable[int],
    size: tuple[int, int] = (45, 38),
    seed: int = 0,
    block: int = 3,
    participants: bool = False,
    signal: bool = False,
) -> FakeVaihingen:
    """Write the fake download below ``root``; return what was written.

    Args:
        root: The raw folder.
        areas: Area numbers to write.
        size: ``(height, width)`` of every area.
        seed: Seed of the pixels and labels.
        block: Side of the label blocks.
        participants: Also write ``gts_for_participants/`` copies of the contest training labels.
        signal: Make the pixels half the label colour, half noise, so that a network learns
            something in a few steps (default: pure noise).
    """
    rng = np.random.default_rng(seed)
    fake = FakeVaihingen(root)
    height, width = size
    for area in areas:
        name = f"{stem(area)}.tif"
        irrg = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        blocks = rng.integers(0, 6, (height // block + 1, width // block + 1), dtype=np.uint8)
        classes = np.kron(blocks, np.ones((block, block), np.uint8))[:height, :width].copy()
        classes[0, :6] = np.arange(6, dtype=np.uint8)
        if signal:
            irrg = (colour(classes) // 2 + irrg // 2).astype(np.uint8)
        eroded = erode(classes)
        write_tif(root / IMAGES / name, irrg)  # no CRS: the real tiles are not georeferenced
        write_tif(root / LABELS / name, colour(classes))
        if participants and area in OFFICIAL_TRAIN:
            write_tif(root / PARTICIPANTS / name, colour(classes))
        write_tif(root / ERODED / f"{stem(area)}_noBoundary.tif", colour(eroded))
        fake.areas[area] = FakeArea(irrg, classes, eroded)
    return fake
