"""Fake LoveDA download in the official layout, names and encoding (docs/datasets.md §1).

``{Train,Val,Test}/{Urban,Rural}/images_png/<id>.png`` (3-channel PNG) and, for Train and Val,
``masks_png/<id>.png`` (single-channel PNG, raw values 0 = no-data, 1..7 = classes). Ids come
from the real id blocks (Train Rural 0.., Train Urban 1366.., Val Rural 2522.., ...).
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

IDS: dict[tuple[str, str], tuple[int, ...]] = {
    ("Train", "Rural"): (0, 1),
    ("Train", "Urban"): (1366, 1367),
    ("Val", "Rural"): (2522,),
    ("Val", "Urban"): (3514,),
    ("Test", "Rural"): (4191,),
    ("Test", "Urban"): (5107,),
}
SPLIT_OF_FOLDER = {"Train": "train", "Val": "val", "Test": "test"}


@dataclass
class FakeLoveDA:
    root: Path
    images: dict[str, np.ndarray] = field(default_factory=dict)
    raw_masks: dict[str, np.ndarray] = field(default_factory=dict)
    split_of: dict[str, str] = field(default_factory=dict)

    def ids(self, split: str) -> list[str]:
        return sorted((i for i, s in self.split_of.items() if s == split), key=int)


def raw_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """Blocky raw mask with every raw value 0..7 (0 = no-data) present."""
    blocks = rng.integers(0, 8, (size // 4 + 1, size // 4 + 1), dtype=np.uint8)
    mask = np.kron(blocks, np.ones((4, 4), np.uint8))[:size, :size].copy()
    mask[0, :8] = np.arange(8, dtype=np.uint8)
    return mask


def write_loveda(root: Path, size: int = 32, seed: int = 0) -> FakeLoveDA:
    """Write the fake download below ``root``; return what was written."""
    rng = np.random.default_rng(seed)
    fake = FakeLoveDA(root)
    for (folder, scene), ids in IDS.items():
        image_dir = root / folder / scene / "images_png"
        image_dir.mkdir(parents=True, exist_ok=True)
        for image_id in ids:
            name = str(image_id)
            image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(image, "RGB").save(image_dir / f"{name}.png")
            fake.images[name] = image
            fake.split_of[name] = SPLIT_OF_FOLDER[folder]
            if folder != "Test":
                mask_dir = root / folder / scene / "masks_png"
                mask_dir.mkdir(parents=True, exist_ok=True)
                mask = raw_mask(rng, size)
                Image.fromarray(mask, "L").save(mask_dir / f"{name}.png")
                fake.raw_masks[name] = mask
    return fake
