"""LoveDA: land-cover domain-adaptive semantic segmentation (urban and rural scenes).

Data card (docs/datasets.md, section 1, and the sources it brackets):

- Paper: J. Wang, Z. Zheng, A. Ma, X. Lu, Y. Zhong, "LoveDA: A Remote Sensing Land-Cover
  Dataset for Domain Adaptive Semantic Segmentation", NeurIPS 2021 Datasets and Benchmarks,
  arXiv:2110.08733.
- Download: Zenodo record 5706578 (https://zenodo.org/records/5706578), ``Train.zip``,
  ``Val.zip``, ``Test.zip`` [TG torchgeo/datasets/loveda.py]; official code
  https://github.com/Junjue-Wang/LoveDA.
- Licence: CC BY-NC-SA 4.0, academic use only [LD README.md].
- Features: 5987 Google Earth images of 1024×1024 px at 0.3 m GSD, Urban and Rural scenes;
  test labels are withheld, scored by the benchmark server: CodaLab competition 421 when
  GeoSeg and SFA-Net were written, Codabench competition 13030 since 2026-01-22
  [LD README.md:9,18 @3f4ba90; docs/datasets.md §1].
- Format: ``{Train,Val,Test}/{Urban,Rural}/images_png/<id>.png`` (3-channel 8-bit PNG) and, for
  Train and Val, ``masks_png/<id>.png`` (single-channel 8-bit PNG, same name) [TG loveda.py].
- Raw mask values: 0 = no-data, 1 background ... 7 agriculture [LD README.md]. :func:`decode`
  maps raw ``k`` to ``k - 1`` and no-data to 255 (ignore), the order of GeoSeg and mmseg.

| index | class | colour (RGB) [GS loveda_dataset.py PALETTE; MM; LD COLOR_MAP] |
|---|---|---|
| 0 | background | 255, 255, 255 |
| 1 | building | 255, 0, 0 |
| 2 | road | 255, 255, 0 |
| 3 | water | 0, 0, 255 |
| 4 | barren | 159, 129, 183 |
| 5 | forest | 0, 255, 0 |
| 6 | agriculture | 255, 195, 128 |
| 255 | ignore (raw no-data) | 0, 0, 0 |

Evaluation: mIoU over all 7 classes [GS train_supervision.py].
"""

from pathlib import Path

import numpy as np

from lossd.data._labels import UnknownPolicy, decode_values, encode_colours
from lossd.data.info import IGNORE_INDEX, DatasetInfo, SubmissionFormat
from lossd.errors import DataFormatError

__all__ = [
    "CLASSES",
    "DOWNLOAD_URL",
    "IGNORE_COLOUR",
    "IMAGE_DIR",
    "INFO",
    "LABELLED_SPLITS",
    "MASK_DIR",
    "PALETTE",
    "RAW_VALUES",
    "SCENES",
    "SPLIT_FOLDERS",
    "decode",
    "encode",
]

CLASSES: tuple[str, ...] = (
    "background",
    "building",
    "road",
    "water",
    "barren",
    "forest",
    "agriculture",
)
"""Class names in index order [LD README.md; GS and MM spell the last 'agricultural']."""

PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 255, 255),
    (255, 0, 0),
    (255, 255, 0),
    (0, 0, 255),
    (159, 129, 183),
    (0, 255, 0),
    (255, 195, 128),
)
"""Visualisation colours [docs/datasets.md §1; GS loveda_dataset.py PALETTE; MM; LD COLOR_MAP]."""

IGNORE_COLOUR: tuple[int, int, int] = (0, 0, 0)
"""Colour of ignored pixels in :func:`encode` (GeoSeg leaves no-data black, docs/datasets.md §1)."""

RAW_VALUES: dict[int, int] = {0: IGNORE_INDEX, **{raw: raw - 1 for raw in range(1, 8)}}
"""Raw mask value -> class index: 0 (no-data) -> 255, k -> k - 1
[docs/datasets.md §1; LD README.md]."""

DOWNLOAD_URL = "https://zenodo.org/records/5706578"
"""Official download page: Train.zip, Val.zip, Test.zip [docs/datasets.md §1; TG loveda.py]."""

SPLIT_FOLDERS: dict[str, str] = {"train": "Train", "val": "Val", "test": "Test"}
"""Split name -> folder unpacked from the split's zip [docs/datasets.md §1 Layout; TG loveda.py]."""

LABELLED_SPLITS: tuple[str, ...] = ("train", "val")
"""Splits whose masks are public; test labels are withheld [LD README.md]."""

SCENES: tuple[str, ...] = ("Urban", "Rural")
"""Scene folders inside every split folder [docs/datasets.md §1 Layout]."""

IMAGE_DIR = "images_png"
MASK_DIR = "masks_png"
"""Image and mask folders inside a scene folder [docs/datasets.md §1 Layout]."""

TEST_IMAGES = 1796
"""Images in the official test split [docs/datasets.md §1, 3P dataset-ninja]."""


def submission_entry(path: Path, stem: str, patch: bool) -> str:
    """The archive entry of a test image: its integer id, in one flat folder.

    ``4191`` for ``Test/Rural/images_png/4191.png`` or the prepared ``4191_0_0.png``
    [LD Semantic_Segmentation/predict.py].

    Raises:
        DataFormatError: If the name holds no integer id.
    """
    if not stem.isdigit():
        raise DataFormatError(
            f"cannot tell the LoveDA image id of '{path}': expected <id>.png with an "
            "integer id (Test/{Urban,Rural}/images_png/<id>.png) or a prepared patch "
            "<id>_<row>_<col>.png"
        )
    return stem


def submission_picture(indices: np.ndarray) -> np.ndarray:
    """A test prediction as the server reads it: single-channel class indices 0..6."""
    return indices.astype(np.uint8)


def decode(
    raw: np.ndarray, *, unknown: UnknownPolicy = "error", source: str = "mask"
) -> np.ndarray:
    """Map a raw LoveDA mask (values 0..7) to class indices 0..6 with no-data -> 255.

    Args:
        raw: ``H×W`` (or ``H×W×1``) uint8 raw mask as stored in ``masks_png``.
        unknown: ``"error"`` raises on a value outside 0..7; ``"ignore"`` maps it to 255.
        source: File name used in error messages.

    Returns:
        ``H×W`` uint8 class indices.

    Raises:
        DataFormatError: If the mask is not single-channel uint8, or holds a value outside
            0..7 and ``unknown="error"`` (the message lists the values and pixel counts).
    """
    return decode_values(raw, RAW_VALUES, unknown=unknown, source=source)


def encode(indices: np.ndarray) -> np.ndarray:
    """Map class indices (0..6, 255 = ignore) to an RGB image with :data:`PALETTE`.

    Args:
        indices: ``H×W`` integer class indices.

    Returns:
        ``H×W×3`` uint8 RGB image; ignored pixels are :data:`IGNORE_COLOUR`.

    Raises:
        DataFormatError: If a value is neither a class index nor 255.
    """
    return encode_colours(indices, PALETTE, ignore_colour=IGNORE_COLOUR)


INFO = DatasetInfo(
    name="loveda",
    label="LoveDA",
    headline_metric="mIoU",  # LoveDA papers report mIoU over the 7 classes (docs/datasets.md §1)
    classes=CLASSES,
    palette=PALETTE,
    eval_classes=tuple(range(len(CLASSES))),
    image_suffix=".png",
    mask_suffix=".png",
    citation="Wang et al., LoveDA, NeurIPS 2021 Datasets and Benchmarks (arXiv:2110.08733)",
    preparation="lossd.data.prepare.loveda",
    submission=SubmissionFormat(
        server="Codabench competition 13030 (CodaLab 421 before 2026-01-22)",
        test_images=TEST_IMAGES,
        entry=submission_entry,
        encode=submission_picture,
    ),
)
