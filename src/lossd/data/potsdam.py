"""ISPRS Potsdam (2D Semantic Labeling Contest): classes, palette, tile splits, label codec.

Data card (docs/datasets.md, section 3, and the sources it brackets):

- Dataset page: https://www.isprs.org/education/benchmarks/UrbanSemLab/2d-sem-label-potsdam.aspx
  (download after registration); licence: the ISPRS benchmark terms of use stated there
  (research use, cite the benchmark).
- Citation: F. Rottensteiner, G. Sohn, J. Jung, M. Gerke, C. Baillard, S. Benitez, U. Breitkopf,
  "The ISPRS benchmark on urban object classification and 3D building reconstruction", ISPRS
  Annals I-3 (2012) 293-298.
- Features: 38 true-orthophoto tiles of 6000×6000 px at 5 cm GSD, 8 bits per channel, in
  three band compositions (RGB, IRRG, RGBIR), georeferenced (UTM, with ``.tfw`` world files)
  [docs/datasets.md §3, ISPRS page as restated by a third party].
- Format: ``top_potsdam_{row}_{col}_{RGB,IRRG,RGBIR}.tif`` images; 3-band colour label TIFFs
  ``top_potsdam_{row}_{col}_label.tif`` and eroded ``..._label_noBoundary.tif``, whose object
  boundaries are black [docs/datasets.md §3; GS tools/potsdam_patch_split.py; TG potsdam.py]
  (eroded by a disc of 3 px radius, per the ISPRS page as restated by a third party: not
  verified, docs/datasets.md §6).

Class order and colours follow GeoSeg (github.com/WangLibo1995/GeoSeg,
geoseg/datasets/potsdam_dataset.py, colours converted from its BGR constants) and torchgeo's
colormap; see docs/datasets.md, section 3.

| index | class | label RGB |
|---|---|---|
| 0 | impervious surfaces | 255, 255, 255 |
| 1 | building | 0, 0, 255 |
| 2 | low vegetation | 0, 255, 255 |
| 3 | tree | 0, 255, 0 |
| 4 | car | 255, 255, 0 |
| 5 | clutter | 255, 0, 0 |
| 255 | ignore (eroded boundary, black in ``_noBoundary`` labels) | 0, 0, 0 |

Evaluation (GeoSeg potsdam_test.py): mF1 and mIoU over the first five classes (clutter out),
OA over all valid pixels, on the eroded labels.
"""

import numpy as np

from lossd.data._labels import UnknownPolicy, decode_colours, encode_colours
from lossd.data.info import IGNORE_INDEX, DatasetInfo
from lossd.errors import InvalidOptionError

__all__ = [
    "ARCHIVES",
    "BANDS",
    "CLASSES",
    "DOWNLOAD_URL",
    "EXCLUDED_TILES",
    "IGNORE_COLOUR",
    "INFO",
    "LABEL_COLOURS",
    "OFFICIAL_TEST_TILES",
    "OFFICIAL_TRAIN_TILES",
    "PALETTE",
    "VAL_TILES",
    "decode",
    "encode",
    "eroded_label_file",
    "image_file",
    "label_file",
    "split_tiles",
    "tile_stem",
]

CLASSES: tuple[str, ...] = (
    "impervious_surfaces",
    "building",
    "low_vegetation",
    "tree",
    "car",
    "clutter",
)
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 255, 255),
    (0, 0, 255),
    (0, 255, 255),
    (0, 255, 0),
    (255, 255, 0),
    (255, 0, 0),
)

IGNORE_COLOUR: tuple[int, int, int] = (0, 0, 0)
"""Eroded-boundary colour of the ``_noBoundary`` labels, mapped to 255
[docs/datasets.md §3; GS Boundary constant; MM color_map entry 0]."""

LABEL_COLOURS: dict[tuple[int, int, int], int] = {
    **{colour: index for index, colour in enumerate(PALETTE)},
    IGNORE_COLOUR: IGNORE_INDEX,
}
"""Official label colour -> class index, black boundary -> 255 [docs/datasets.md §3]."""

DOWNLOAD_URL = "https://www.isprs.org/education/benchmarks/UrbanSemLab/2d-sem-label-potsdam.aspx"
"""Official dataset page [docs/datasets.md §3]."""

BANDS: dict[str, tuple[str, ...]] = {
    "RGB": ("red", "green", "blue"),
    "IRRG": ("infrared", "red", "green"),
    "RGBIR": ("red", "green", "blue", "infrared"),
}
"""Band composition (file suffix) -> band order in the file [docs/datasets.md §3, Files]."""

ARCHIVES: dict[str, str] = {
    "RGB": "2_Ortho_RGB.zip",
    "IRRG": "3_Ortho_IRRG.zip",
    "RGBIR": "4_Ortho_RGBIR.zip",
    "label": "5_Labels_all.zip",
    "label_noBoundary": "5_Labels_all_noBoundary.zip",
}
"""Archive holding each kind of file [docs/datasets.md §3: MM docs, TG potsdam.py; the IRRG name
is presumed, not verified]. Only used in error messages: files are found by name anywhere
under the raw folder."""

OFFICIAL_TRAIN_TILES: tuple[str, ...] = (
    "2_10", "2_11", "2_12", "3_10", "3_11", "3_12", "4_10", "4_11", "4_12", "5_10", "5_11",
    "5_12", "6_7", "6_8", "6_9", "6_10", "6_11", "6_12", "7_7", "7_8", "7_9", "7_10", "7_11",
    "7_12",
)  # fmt: skip
"""The 24 labelled training tiles of the contest [docs/datasets.md §3 Splits; TG potsdam.py; MM]."""

OFFICIAL_TEST_TILES: tuple[str, ...] = (
    "2_13", "2_14", "3_13", "3_14", "4_13", "4_14", "4_15", "5_13", "5_14", "5_15", "6_13",
    "6_14", "6_15", "7_13",
)  # fmt: skip
"""The 14 test tiles of the contest [docs/datasets.md §3 Splits; TG potsdam.py; MM]."""

VAL_TILES: tuple[str, ...] = ("2_10",)
"""Validation tile of the UNetFormer-family protocol [docs/datasets.md §3 Splits, 3P READMEs]."""

EXCLUDED_TILES: tuple[str, ...] = ("7_10",)
"""Left out of training for erroneous annotations [docs/datasets.md §3 Splits, 3P READMEs]."""

INFO = DatasetInfo(
    name="potsdam",
    label="Potsdam",
    # ISPRS Potsdam papers report mF1 first (docs/reference.md, "Paper results")
    headline_metric="mF1",
    classes=CLASSES,
    palette=PALETTE,
    eval_classes=(0, 1, 2, 3, 4),
    image_suffix=".tif",
    mask_suffix=".png",
    citation="ISPRS 2D Semantic Labeling Contest - Potsdam (Rottensteiner et al., 2012)",
    preparation_version=2,
    readable_versions={"train": 2, "val": 2, "test": 2},
    preparation_changes=(
        "version 2 cuts tiles as GeoSeg's tools/potsdam_patch_split.py: padded at the top/left, "
        "the training tiles also flipped whole before cutting"
    ),
    # GeoSeg pads the colour label with value=6, (6, 0, 0) under albumentations 1.x, which no
    # class colour matches: rgb_to_2D_label leaves it 0 (tools/potsdam_patch_split.py:67-68,
    # 96-106 @9453fe4; docs/datasets.md §3 Padding).
    original_padding_label=0,
    preparation="lossd.data.prepare.potsdam",
)


def split_tiles(exclude: tuple[str, ...] = EXCLUDED_TILES) -> dict[str, tuple[str, ...]]:
    """The UNetFormer-family split: 14 test tiles, validation 2_10, the other 22 for training.

    Args:
        exclude: Training tiles to leave out (default 7_10; pass ``()`` to keep it).

    Returns:
        ``{"train": ..., "val": ..., "test": ...}`` tile ids such as ``"2_11"``.

    Raises:
        InvalidOptionError: If an excluded id is not an official training tile.
    """
    unknown = [tile for tile in exclude if tile not in OFFICIAL_TRAIN_TILES]
    if unknown:
        raise InvalidOptionError(
            f"cannot exclude {unknown}: not official Potsdam training tiles; expected ids from "
            f"{list(OFFICIAL_TRAIN_TILES)}"
        )
    train = tuple(t for t in OFFICIAL_TRAIN_TILES if t not in VAL_TILES and t not in exclude)
    return {"train": train, "val": VAL_TILES, "test": OFFICIAL_TEST_TILES}


def tile_stem(tile: str) -> str:
    """File stem shared by a tile's files, e.g. ``top_potsdam_2_10`` [docs/datasets.md §3]."""
    return f"top_potsdam_{tile}"


def image_file(tile: str, bands: str) -> str:
    """Image file name of a tile in a band composition, e.g. ``top_potsdam_2_10_RGB.tif``."""
    return f"{tile_stem(tile)}_{bands}.tif"


def label_file(tile: str) -> str:
    """Full colour label file name, e.g. ``top_potsdam_2_10_label.tif``."""
    return f"{tile_stem(tile)}_label.tif"


def eroded_label_file(tile: str) -> str:
    """Eroded-boundary label file name, e.g. ``top_potsdam_2_10_label_noBoundary.tif``."""
    return f"{tile_stem(tile)}_label_noBoundary.tif"


def decode(
    raw: np.ndarray, *, unknown: UnknownPolicy = "error", source: str = "label"
) -> np.ndarray:
    """Map a Potsdam colour label (full or eroded) to class indices 0..5, black -> 255.

    Args:
        raw: ``H×W×3`` uint8 RGB label.
        unknown: ``"error"`` raises on a colour not in :data:`LABEL_COLOURS`; ``"ignore"`` maps
            it to 255.
        source: File name used in error messages.

    Returns:
        ``H×W`` uint8 class indices.

    Raises:
        DataFormatError: If the label is not ``H×W×3`` uint8, or holds an unknown colour and
            ``unknown="error"`` (the message lists the colours and pixel counts).
    """
    return decode_colours(raw, LABEL_COLOURS, unknown=unknown, source=source)


def encode(indices: np.ndarray) -> np.ndarray:
    """Map class indices (0..5, 255 = ignore) to the official label colours (255 -> black).

    Args:
        indices: ``H×W`` integer class indices.

    Returns:
        ``H×W×3`` uint8 RGB label.

    Raises:
        DataFormatError: If a value is neither a class index nor 255.
    """
    return encode_colours(indices, PALETTE, ignore_colour=IGNORE_COLOUR)
