"""Fake UAVid image release in the official layout, names and encoding (docs/datasets.md §2).

``uavid_v1.5_official_release_image/uavid_{train,val,test}/seqN/Images/<frame>.png`` with
``Labels/<frame>.png`` colour labels for train and val. Frames have both real aspect ratios,
2160×3840 and 2160×4096, scaled down by ``scale`` (16 keeps the real patch geometry exactly
with 64-px patches and the region :func:`region` = 128×256 kept of train/val frames:
135 = 2×64 + 7 like 2160 = 2×1024 + 112; 240 = 256 - 16 like 3840 = 4096 - 256; 256 = 4×64).
Every label holds every class colour. :func:`write_full_frames` writes two frames of the real
sizes, for the checks that must see GeoSeg's exact geometry.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

RELEASE = "uavid_v1.5_official_release_image"
# (split folder, sequence, frame, real width)
FRAMES: tuple[tuple[str, str, str, int], ...] = (
    ("uavid_train", "seq1", "000000", 3840),
    ("uavid_train", "seq1", "000100", 3840),
    ("uavid_train", "seq2", "000000", 4096),
    ("uavid_val", "seq16", "000000", 4096),
    ("uavid_val", "seq16", "000100", 4096),
    ("uavid_test", "seq21", "000000", 3840),
    ("uavid_test", "seq42", "000000", 4096),
)
SPLIT_OF_FOLDER = {"uavid_train": "train", "uavid_val": "val", "uavid_test": "test"}

OFFICIAL_COLOURS: tuple[tuple[int, int, int], ...] = (
    (128, 0, 0),  # building
    (128, 64, 128),  # road
    (0, 128, 0),  # tree
    (128, 128, 0),  # low vegetation
    (64, 0, 128),  # moving car
    (192, 0, 192),  # static car
    (64, 64, 0),  # human
    (0, 0, 0),  # background clutter
)
"""The UAVid label colours (RGB) in GeoSeg's class order, written here from the sources, not
from the code under test: GeoSeg @9453fe4 tools/uavid_patch_split.py:24-31 (``Building =
np.array([128, 0, 0])  # label 0`` ... ``Clutter = np.array([0, 0, 0])  # label 7``, compared
with labels read by cv2 and converted BGR -> RGB) and the UAVid paper's class colours
(docs/datasets.md §2); GeoSeg pads masks with white, label 255 (:32)."""
PADDING_COLOUR = (255, 255, 255)


def colour(classes: np.ndarray) -> np.ndarray:
    """The official colour label of class indices (255 -> white padding)."""
    table = np.zeros((256, 3), dtype=np.uint8)
    table[: len(OFFICIAL_COLOURS)] = OFFICIAL_COLOURS
    table[255] = PADDING_COLOUR
    return table[classes]


@dataclass
class FakeUAVid:
    root: Path
    images: dict[str, np.ndarray] = field(default_factory=dict)
    classes: dict[str, np.ndarray] = field(default_factory=dict)
    split_of: dict[str, str] = field(default_factory=dict)

    def stems(self, split: str) -> list[str]:
        return sorted(s for s, sp in self.split_of.items() if sp == split)


def class_map(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    blocks = rng.integers(0, 8, (height // 8 + 1, width // 8 + 1), dtype=np.uint8)
    classes = np.kron(blocks, np.ones((8, 8), np.uint8))[:height, :width].copy()
    classes[-1, -8:] = np.arange(8, dtype=np.uint8)  # every class colour is present
    return classes


def region(scale: int) -> tuple[int, int]:
    """GeoSeg's kept region of 2048×4096 (tools/uavid_patch_split.py L134) scaled by 1/scale."""
    return 2048 // scale, 4096 // scale


def write_uavid(root: Path, scale: int = 16, seed: int = 0) -> FakeUAVid:
    """Write the fake release below ``root``; return what was written."""
    rng = np.random.default_rng(seed)
    fake = FakeUAVid(root)
    for folder, seq, frame, real_width in FRAMES:
        height, width = 2160 // scale, real_width // scale
        seq_dir = root / RELEASE / folder / seq
        (seq_dir / "Images").mkdir(parents=True, exist_ok=True)
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(image, "RGB").save(seq_dir / "Images" / f"{frame}.png")
        stem = f"{seq}_{frame}"
        fake.images[stem] = image
        fake.split_of[stem] = SPLIT_OF_FOLDER[folder]
        if folder != "uavid_test":
            (seq_dir / "Labels").mkdir(exist_ok=True)
            classes = class_map(rng, height, width)
            Image.fromarray(colour(classes), "RGB").save(seq_dir / "Labels" / f"{frame}.png")
            fake.classes[stem] = classes
    return fake


def write_full_frames(root: Path, seed: int = 0) -> FakeUAVid:
    """Two labelled train frames of the real sizes: seq1 2160×3840 and seq2 2160×4096.

    The image encodes each pixel's position (a misplaced tile cannot match); labels are
    64-px blocks of random classes. Fast PNG compression keeps the files quick to write.
    """
    rng = np.random.default_rng(seed)
    fake = FakeUAVid(root)
    for seq, width in (("seq1", 3840), ("seq2", 4096)):
        seq_dir = root / RELEASE / "uavid_train" / seq
        (seq_dir / "Images").mkdir(parents=True, exist_ok=True)
        (seq_dir / "Labels").mkdir(exist_ok=True)
        rows, cols = np.mgrid[0:2160, 0:width]
        image = np.stack([rows % 251, cols % 253, (rows // 251 * 17 + cols // 253) % 256], -1)
        image = image.astype(np.uint8)
        blocks = rng.integers(0, 8, (2160 // 64 + 1, width // 64 + 1), dtype=np.uint8)
        classes = np.kron(blocks, np.ones((64, 64), np.uint8))[:2160, :width].copy()
        classes[-1, -8:] = np.arange(8, dtype=np.uint8)
        Image.fromarray(image, "RGB").save(seq_dir / "Images" / "000000.png", compress_level=1)
        Image.fromarray(colour(classes), "RGB").save(
            seq_dir / "Labels" / "000000.png", compress_level=1
        )
        fake.images[f"{seq}_000000"] = image
        fake.classes[f"{seq}_000000"] = classes
        fake.split_of[f"{seq}_000000"] = "train"
    return fake
