"""UAVid: semantic segmentation of oblique UAV video frames of urban scenes.

Data card (docs/datasets.md, section 2, and the sources it brackets):

- Paper: Y. Lyu, G. Vosselman, G.-S. Xia, A. Yilmaz, M. Y. Yang, "UAVid: A semantic
  segmentation dataset for UAV imagery", ISPRS Journal of Photogrammetry and Remote Sensing
  165 (2020) 108-119, DOI 10.1016/j.isprsjprs.2020.05.009, arXiv:1810.10438.
- Download: https://uavid.nl/ (registration); toolkit https://github.com/YeLyuUT/UAVidToolKit.
- Licence: the terms shown on the download page; third-party restatements give
  CC BY-NC-SA 4.0 (not verified here: check the page before redistributing).
- Features: RGB 8-bit PNG frames of 2160×3840 or 2160×4096 px [GS tools/uavid_patch_split.py];
  420 frames in 42 sequences (train 200, val 70, test 150 unlabelled) per third-party
  summaries, the paper's abstract says 30 sequences and 300 images (not verified:
  docs/datasets.md §2, §6).
- Format: ``uavid_{train,val,test}/seqN/Images/<frame>.png`` and, for train and val,
  ``seqN/Labels/<frame>.png`` (3-channel colour PNG, same name) [GS README.md; UT].

| index | class | label colour (RGB) [GS tools/uavid_patch_split.py, uavid_dataset.py] |
|---|---|---|
| 0 | building | 128, 0, 0 |
| 1 | road | 128, 64, 128 |
| 2 | tree | 0, 128, 0 |
| 3 | low vegetation | 128, 128, 0 |
| 4 | moving car | 64, 0, 128 |
| 5 | static car | 192, 0, 192 |
| 6 | human | 64, 64, 0 |
| 7 | background clutter | 0, 0, 0 |
| 255 | ignore (padding) | 255, 255, 255 |

Index order is GeoSeg's (not the toolkit's ids). White is not a class colour: GeoSeg pads
masks with white and maps it to 255 [GS tools/uavid_patch_split.py], and :func:`encode` draws
ignored pixels white, so ``decode(encode(x)) == x``. Any other colour is an error unless
``unknown="ignore"`` (GeoSeg maps it silently to building, the toolkit to clutter).

Evaluation: mIoU over all 8 classes, clutter included [UT evaluate.py; GS train_supervision.py].

Prepared patches (:mod:`lossd.data.prepare.uavid`, preparation version 3): train and val as
GeoSeg's tools/uavid_patch_split.py cuts them, 8 tiles of 1024² per frame from the bottom
2048 rows (a 3840-wide frame padded with 256 ignored columns on the left, so its first tile
column has offset -256 in the patch name); test frames whole (``seqN_<frame>_0_0.png``), which
the test evaluation predicts as GeoSeg's inference_uavid.py does (conf/inference/uavid.yaml).
"""

from pathlib import Path

import numpy as np

from lossd.data._labels import UnknownPolicy, decode_colours, encode_colours
from lossd.data.info import IGNORE_INDEX, DatasetInfo, SubmissionFormat
from lossd.errors import DataFormatError

__all__ = [
    "CLASSES",
    "DOWNLOAD_URL",
    "IGNORE_COLOUR",
    "IMAGE_DIR",
    "INFO",
    "LABELLED_SPLITS",
    "LABEL_COLOURS",
    "LABEL_DIR",
    "PALETTE",
    "RELEASE_FOLDER",
    "SPLIT_FOLDERS",
    "decode",
    "encode",
]

CLASSES: tuple[str, ...] = (
    "building",
    "road",
    "tree",
    "low_vegetation",
    "moving_car",
    "static_car",
    "human",
    "background_clutter",
)
"""Class names in GeoSeg's index order [docs/datasets.md §2; GS uavid_dataset.py CLASSES]."""

PALETTE: tuple[tuple[int, int, int], ...] = (
    (128, 0, 0),
    (128, 64, 128),
    (0, 128, 0),
    (128, 128, 0),
    (64, 0, 128),
    (192, 0, 192),
    (64, 64, 0),
    (0, 0, 0),
)
"""Official label colours
[docs/datasets.md §2; GS tools/uavid_patch_split.py; UT colorTransformer]."""

IGNORE_COLOUR: tuple[int, int, int] = (255, 255, 255)
"""Colour of ignored pixels: GeoSeg's mask padding colour [GS tools/uavid_patch_split.py]."""

LABEL_COLOURS: dict[tuple[int, int, int], int] = {
    **{colour: index for index, colour in enumerate(PALETTE)},
    IGNORE_COLOUR: IGNORE_INDEX,
}
"""Raw label colour -> class index (white padding -> 255) [docs/datasets.md §2]."""

DOWNLOAD_URL = "https://uavid.nl/"
"""Official download page [docs/datasets.md §2; UAVid paper]."""

RELEASE_FOLDER = "uavid_v1.5_official_release_image"
"""Folder the image release unpacks to [docs/datasets.md §2, 3P code]."""

SPLIT_FOLDERS: dict[str, str] = {"train": "uavid_train", "val": "uavid_val", "test": "uavid_test"}
"""Split name -> folder of sequences [docs/datasets.md §2 Layout; GS README.md]."""

LABELLED_SPLITS: tuple[str, ...] = ("train", "val")
"""Splits with public labels; test is scored on CodaLab competition 7302 [GS README.md]."""

IMAGE_DIR = "Images"
LABEL_DIR = "Labels"
"""Frame and label folders inside a sequence folder [docs/datasets.md §2 Layout]."""

TEST_FRAMES = 150
"""Frames of the official test split [docs/datasets.md §2, 3P]."""


def submission_entry(path: Path, stem: str, patch: bool) -> str:
    """The archive entry of a test frame: ``seqN/Labels/<frame>``, mirroring the test tree.

    From ``uavid_test/seqN/Images/<frame>.png`` or a prepared ``seqN_<frame>_<row>_<col>.png``
    [UT evaluate.py; GS inference_uavid.py].

    Raises:
        DataFormatError: If the name gives no sequence and frame.
    """
    if patch:
        sequence, _, frame = stem.rpartition("_")
    else:
        sequence, frame = path.parent.parent.name, stem
    if not sequence.startswith("seq") or not frame:
        raise DataFormatError(
            f"cannot tell the UAVid sequence and frame of '{path}': expected "
            "uavid_test/seqN/Images/<frame>.png or a prepared patch seqN_<frame>_<row>_<col>.png"
        )
    return f"{sequence}/{LABEL_DIR}/{frame}"


def decode(
    raw: np.ndarray, *, unknown: UnknownPolicy = "error", source: str = "label"
) -> np.ndarray:
    """Map a UAVid colour label to class indices 0..7 (white padding -> 255).

    Args:
        raw: ``H×W×3`` uint8 RGB label as stored in ``Labels``.
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
    """Map class indices (0..7, 255 = ignore) to the official label colours.

    Args:
        indices: ``H×W`` integer class indices.

    Returns:
        ``H×W×3`` uint8 RGB label; ignored pixels are :data:`IGNORE_COLOUR` (white).

    Raises:
        DataFormatError: If a value is neither a class index nor 255.
    """
    return encode_colours(indices, PALETTE, ignore_colour=IGNORE_COLOUR)


INFO = DatasetInfo(
    name="uavid",
    label="UAVid",
    headline_metric="mIoU",  # UAVid reports mIoU over the 8 classes (docs/datasets.md §2)
    classes=CLASSES,
    palette=PALETTE,
    eval_classes=tuple(range(len(CLASSES))),
    image_suffix=".png",
    mask_suffix=".png",
    citation="Lyu et al., UAVid, ISPRS J. Photogramm. Remote Sens. 165 (2020) 108-119",
    preparation_version=3,
    readable_versions={"train": 2, "val": 2, "test": 3},
    preparation_changes=(
        "version 2 cuts train and val as GeoSeg's tools/uavid_patch_split.py, 8 tiles of 1024² "
        "from the bottom 2048 rows of each frame, not 12 over the whole frame; version 3 keeps "
        "each test frame whole, for GeoSeg's padded 1152×1024 windows of inference_uavid.py"
    ),
    preparation="lossd.data.prepare.uavid",
    # label colours of the image's size (encode() below) [UT evaluate.py; GS README.md]
    submission=SubmissionFormat(
        server="CodaLab competition 7302",
        test_images=TEST_FRAMES,
        entry=submission_entry,
        encode=encode,
    ),
)
