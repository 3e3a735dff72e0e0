"""ISPRS Vaihingen (2D Semantic Labeling Contest): areas, splits, file names, label codec.

Data card (docs/datasets.md, section 4, and the sources it brackets):

- Dataset page: https://www.isprs.org/education/benchmarks/UrbanSemLab/default.aspx (download
  after registration) [GS README.md:38 @9453fe4; TG torchgeo/datasets/vaihingen.py:31-36
  @7ea0616]; licence: the ISPRS benchmark terms of use stated there (research use, cite the
  benchmark; not verified, docs/datasets.md §6).
- Citation: F. Rottensteiner, G. Sohn, J. Jung, M. Gerke, C. Baillard, S. Benitez, U. Breitkopf,
  "The ISPRS benchmark on urban object classification and 3D building reconstruction", ISPRS
  Annals I-3 (2012) 293-298, DOI 10.5194/isprsannals-I-3-293-2012 [TG vaihingen.py:54-56].
- Features: 33 true-orthophoto tiles ("areas") of 1,281 to 3,816 px a side at 9 cm GSD
  [TG docs/api/datasets/non_geo_datasets.csv:69], 8 bits, three bands near-infrared, red, green
  (IRRG: third-party statements; torchgeo's table says RGB, docs/datasets.md §6), not
  georeferenced [3P torchgeo pull request 248: "The images are not georeferenced"].
- Format: ``top/top_mosaic_09cm_area{N}.tif`` in ``ISPRS_semantic_labeling_Vaihingen.zip``;
  3-band colour labels of the same file name in ``..._ground_truth_COMPLETE.zip`` (all 33
  areas; the 16 contest training areas also in ``gts_for_participants/`` of the first archive)
  and eroded labels ``top_mosaic_09cm_area{N}_noBoundary.tif`` in
  ``..._ground_truth_eroded_COMPLETE.zip``, whose object boundaries are black
  [TG vaihingen.py:61-66, 151-156; SF README.md:89-94 @3c442da; GS
  tools/vaihingen_patch_split.py:184-185, 252-253].

Classes and label colours are those of the ISPRS contest, the same as Potsdam's
[TG vaihingen.py:106-121 against potsdam.py:107-122; GS tools/vaihingen_patch_split.py:29-35
against tools/potsdam_patch_split.py:29-35, both in BGR order], so this module takes
:mod:`lossd.data.potsdam`'s table instead of repeating it:

| index | class | label RGB |
|---|---|---|
| 0 | impervious surfaces | 255, 255, 255 |
| 1 | building | 0, 0, 255 |
| 2 | low vegetation | 0, 255, 255 |
| 3 | tree | 0, 255, 0 |
| 4 | car | 255, 255, 0 |
| 5 | clutter | 255, 0, 0 |
| 255 | ignore (eroded boundary, black in ``_noBoundary`` labels) | 0, 0, 0 |

Splits (docs/datasets.md §4, Splits): the contest's 16 training and 17 test areas
[TG vaihingen.py:67-105]; the UNetFormer family tests on the 17, validates on area 30 and
trains on the other 15 [3P ICIG/FGHFN README.md @7d0bedd, "Vaihingen", quoting the UNetFormer
paper, whose own text was not reached: docs/datasets.md §6].

Evaluation (GeoSeg vaihingen_test.py:118-123): mF1 and mIoU over the first five classes
(clutter out), OA over all valid pixels, on the eroded labels; GeoSeg selects checkpoints by
``val_F1`` (config/vaihingen/unetformer.py:24).
"""

import numpy as np

from lossd.data import potsdam
from lossd.data._labels import UnknownPolicy, decode_colours, encode_colours
from lossd.data.info import DatasetInfo

__all__ = [
    "ARCHIVES",
    "BANDS",
    "CLASSES",
    "DOWNLOAD_URL",
    "IGNORE_COLOUR",
    "IMAGE_FOLDER",
    "INFO",
    "LABEL_COLOURS",
    "OFFICIAL_TEST_AREAS",
    "OFFICIAL_TRAIN_AREAS",
    "PALETTE",
    "PARTICIPANTS_FOLDER",
    "VAL_AREAS",
    "decode",
    "encode",
    "eroded_label_file",
    "image_file",
    "label_file",
    "split_areas",
    "tile_stem",
]

CLASSES: tuple[str, ...] = potsdam.CLASSES
"""The six ISPRS classes, Potsdam's table (module docstring)."""
PALETTE: tuple[tuple[int, int, int], ...] = potsdam.PALETTE
"""The ISPRS label colours, Potsdam's table."""
IGNORE_COLOUR: tuple[int, int, int] = potsdam.IGNORE_COLOUR
"""Eroded-boundary colour of the ``_noBoundary`` labels (black), mapped to 255
[GS tools/vaihingen_patch_split.py:35 ``Boundary``]."""
LABEL_COLOURS: dict[tuple[int, int, int], int] = potsdam.LABEL_COLOURS
"""Official label colour -> class index, black boundary -> 255."""

DOWNLOAD_URL = "https://www.isprs.org/education/benchmarks/UrbanSemLab/default.aspx"
"""The ISPRS benchmark page the datasets are downloaded from [GS README.md:38; TG
vaihingen.py:36]."""

BANDS: tuple[str, ...] = ("infrared", "red", "green")
"""Band order of the image tiles (IRRG; docs/datasets.md §4 and §6). GeoSeg reads them as they
are (``Image.open(...).convert('RGB')``, tools/vaihingen_patch_split.py:186) and has no band
option."""

IMAGE_FOLDER = "top"
"""The folder of ``ISPRS_semantic_labeling_Vaihingen.zip`` that holds the image tiles
[TG vaihingen.py:66 ``image_root = 'top'``; SF README.md:91]. The full labels have the same
file names, so an image is told from a label by this folder."""

PARTICIPANTS_FOLDER = "gts_for_participants"
"""The folder of ``ISPRS_semantic_labeling_Vaihingen.zip`` with the labels of the 16 contest
training areas [SF README.md:90]; the ``..._ground_truth_COMPLETE.zip`` labels are preferred."""

ARCHIVES: dict[str, str] = {
    "image": "ISPRS_semantic_labeling_Vaihingen.zip",
    "label": "ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE.zip",
    "label_noBoundary": "ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE.zip",
}
"""Archive holding each kind of file [TG vaihingen.py:61-64; SF README.md:89]. Only used in
error messages: files are found by name anywhere under the raw folder."""

OFFICIAL_TRAIN_AREAS: tuple[int, ...] = (1, 3, 5, 7, 11, 13, 15, 17, 21, 23, 26, 28, 30, 32, 34, 37)
"""The 16 labelled training areas of the contest [TG vaihingen.py:68-85]."""

OFFICIAL_TEST_AREAS: tuple[int, ...] = (
    2, 4, 6, 8, 10, 12, 14, 16, 20, 22, 24, 27, 29, 31, 33, 35, 38,
)  # fmt: skip
"""The 17 test areas of the contest [TG vaihingen.py:86-104], the UNetFormer family's test set."""

VAL_AREAS: tuple[int, ...] = (30,)
"""Validation area of the UNetFormer-family protocol [docs/datasets.md §4 Splits, 3P README]."""

INFO = DatasetInfo(
    name="vaihingen",
    label="Vaihingen",
    # ISPRS papers report mF1 first; GeoSeg selects Vaihingen checkpoints by it
    # (config/vaihingen/unetformer.py:24 @9453fe4 monitor = 'val_F1').
    headline_metric="mF1",
    classes=CLASSES,
    palette=PALETTE,
    # means over the first five classes, clutter out (vaihingen_test.py:123 @9453fe4 [:-1])
    eval_classes=(0, 1, 2, 3, 4),
    image_suffix=".tif",
    mask_suffix=".png",
    citation="ISPRS 2D Semantic Labeling Contest - Vaihingen (Rottensteiner et al., 2012)",
    preparation_version=1,
    readable_versions={"train": 1, "val": 1, "test": 1},
    preparation_changes=(
        "version 1 cuts tiles as GeoSeg's tools/vaihingen_patch_split.py: padded at the "
        "top/left, the training tiles also flipped whole, windows rich in cars replaced by "
        "zoomed crops"
    ),
    # GeoSeg pads the colour label with value=6, (6, 0, 0) under albumentations 1.x, which no
    # class colour matches: rgb_to_2D_label leaves it 0 (tools/vaihingen_patch_split.py:64,
    # 67, 91-101 @9453fe4), as in the Potsdam script (docs/datasets.md §3 Padding).
    original_padding_label=0,
    preparation="lossd.data.prepare.vaihingen",
)


def split_areas() -> dict[str, tuple[int, ...]]:
    """The UNetFormer-family split: 17 test areas, validation 30, the other 15 for training.

    Returns:
        ``{"train": ..., "val": ..., "test": ...}`` area numbers.
    """
    train = tuple(area for area in OFFICIAL_TRAIN_AREAS if area not in VAL_AREAS)
    return {"train": train, "val": VAL_AREAS, "test": OFFICIAL_TEST_AREAS}


def tile_stem(area: int) -> str:
    """File stem of an area's files, e.g. ``top_mosaic_09cm_area30`` [docs/datasets.md §4]."""
    return f"top_mosaic_09cm_area{area}"


def image_file(area: int) -> str:
    """Image file name (in the ``top`` folder), e.g. ``top_mosaic_09cm_area30.tif``."""
    return f"{tile_stem(area)}.tif"


def label_file(area: int) -> str:
    """Full colour label file name: the image's name (``top_mosaic_09cm_area30.tif``)."""
    return f"{tile_stem(area)}.tif"


def eroded_label_file(area: int) -> str:
    """Eroded-boundary label file name, e.g. ``top_mosaic_09cm_area30_noBoundary.tif``."""
    return f"{tile_stem(area)}_noBoundary.tif"


def decode(
    raw: np.ndarray, *, unknown: UnknownPolicy = "error", source: str = "label"
) -> np.ndarray:
    """Map a Vaihingen colour label (full or eroded) to class indices 0..5, black -> 255.

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
