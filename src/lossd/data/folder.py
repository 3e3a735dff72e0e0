"""The Dataset shared by every prepared dataset and by the synthetic one.

Prepared layout (design.md, Layout and Conventions)::

    <root>/<split>/images/<stem>.<ext>     8-bit image (PNG, or GeoTIFF for Potsdam)
    <root>/<split>/masks/<stem>.png        uint8 class indices 0..C-1, 255 = ignore

with ``<stem> = <source-stem>_<row>_<col>``. Images and masks are paired by stem.

``flip_copies=True`` reproduces GeoSeg's Potsdam training set, which holds every patch three
times (as is, flipped left-right, flipped top-bottom), on the fly instead of on disk.
"""

import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from lossd.data.info import DatasetInfo
from lossd.data.registry import get_info
from lossd.data.transforms import eval_transform
from lossd.errors import DataFormatError, DatasetNotFoundError, InvalidOptionError
from lossd.io import read_image, read_mask

__all__ = ["FLIP_COPIES", "SegmentationFolder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")

FLIP_COPIES: tuple[str, ...] = ("", "hflip", "vflip")
"""The copies of a patch with ``flip_copies=True``, in index order: GeoSeg's train mode lists
``[image, image_h_vlip, image_v_vlip]`` (tools/potsdam_patch_split.py L121-122 @9453fe4), made
with torchvision ``RandomHorizontalFlip(p=1.0)`` and ``RandomVerticalFlip(p=1.0)``
(L116-119), i.e. PIL ``FLIP_LEFT_RIGHT`` (columns reversed) and ``FLIP_TOP_BOTTOM`` (rows
reversed) (torchvision 0.29.1 transforms/_functional_pil.py L55-67)."""


class SegmentationFolder(Dataset[dict[str, Any]]):
    """Image/mask pairs of one or more splits of a prepared dataset.

    Each sample is ``{"image": float32 [C,H,W], "mask": int64 [H,W], "name": str}``. Augmentation
    is reproducible: the random state of sample ``i`` in epoch ``e`` is derived from
    ``(seed, e, i)``, so results do not depend on the number of loader workers and an epoch can
    be replayed exactly after a resume (the trainer calls :meth:`set_epoch`).

    Args:
        root: Prepared dataset folder.
        split: Split name or list of split names (GeoSeg trains LoveDA on ``[train, val]``).
        dataset: Dataset name (``lossd.data.get_info``) or its :class:`DatasetInfo`.
        transform: Albumentations pipeline; default: normalisation only.
        mosaic_ratio: Probability of a 4-image mosaic (GeoSeg UAVid/Potsdam recipes: 0.25).
        require_masks: If False, a split without masks yields masks full of ``ignore_index``.
        seed: Base seed of the per-sample augmentation state.
        flip_copies: Serve every patch three times per epoch, as GeoSeg's Potsdam training
            set holds it (tools/potsdam_patch_split.py ``--mode train``, L115-127 @9453fe4):
            sample ``3 * i + k`` is patch ``i`` as is (``k = 0``), flipped left-right
            (``k = 1``, columns reversed) or top-bottom (``k = 2``, rows reversed), before the
            mosaic and the random augmentation; the flipped copies are named
            ``<stem>+hflip`` and ``<stem>+vflip``. Departure: GeoSeg flips the whole
            6000² tile before padding it at the top/left and cutting it, so near the tile
            border its flipped patches come from a grid shifted by the padding (144 px);
            here the prepared patches themselves are flipped (same pixels, padding placed
            differently).

    Raises:
        DatasetNotFoundError: If a split folder is missing or holds no image.
        DataFormatError: If an image has no mask of the same stem, a UAVid train/val split
            was prepared by an older version (:func:`lossd.data.prepare.uavid.stale_split`),
            or a mask value is neither a class index nor the ignore value (raised when the
            sample is read).
    """

    def __init__(
        self,
        root: str | Path,
        split: str | Sequence[str],
        dataset: str | DatasetInfo,
        transform: A.BaseCompose | None = None,
        mosaic_ratio: float = 0.0,
        require_masks: bool = True,
        seed: int = 0,
        flip_copies: bool = False,
    ) -> None:
        self.root = Path(root)
        self.splits = [split] if isinstance(split, str) else list(split)
        self.info = get_info(dataset) if isinstance(dataset, str) else dataset
        self.transform = transform if transform is not None else eval_transform()
        if not 0.0 <= mosaic_ratio <= 1.0:
            raise InvalidOptionError(f"mosaic_ratio={mosaic_ratio}; expected a value in [0, 1]")
        self.mosaic_ratio = mosaic_ratio
        self.require_masks = require_masks
        self.seed = seed
        self.epoch = 0
        self.copies = FLIP_COPIES if flip_copies else FLIP_COPIES[:1]
        self.samples = [s for name in self.splits for s in self._scan(name)]
        for name in self.splits:
            self._check_preparation(name)

    def _scan(self, split: str) -> list[tuple[Path, Path | None]]:
        image_dir = self.root / split / "images"
        images = sorted(p for p in image_dir.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise DatasetNotFoundError(
                f"no prepared images in dataset.root='{self.root}' (expected "
                f"{image_dir}/*{self.info.image_suffix}); {self.info.how_to_prepare(self.root)}"
            )
        mask_dir = self.root / split / "masks"
        if not mask_dir.is_dir():
            if self.require_masks:
                raise DatasetNotFoundError(
                    f"split '{split}' of '{self.root}' has no masks folder ({mask_dir}); "
                    f"{self.info.how_to_prepare(self.root)}"
                )
            return [(p, None) for p in images]
        pairs = [(p, mask_dir / f"{p.stem}.png") for p in images]
        missing = [str(m) for _, m in pairs if not m.is_file()]
        if missing:
            raise DataFormatError(
                f"{len(missing)} image(s) in {image_dir} have no mask of the same name, "
                f"e.g. '{missing[0]}'; re-run the preparation"
            )
        return list(pairs)

    def _check_preparation(self, split: str) -> None:
        """Refuse a UAVid train/val split cut by an older preparation (12 tiles per frame)."""
        if self.info.name != "uavid":
            return
        # Imported here: the preparation package imports rasterio, which other datasets skip.
        from lossd.data.prepare.uavid import stale_split

        reason = stale_split(self.root / split)
        if reason is not None:
            raise DataFormatError(reason)

    def __len__(self) -> int:
        return len(self.samples) * len(self.copies)

    def name(self, index: int) -> str:
        """Sample name: the patch stem, plus ``+hflip``/``+vflip`` for a flipped copy."""
        patch, copy = divmod(index, len(self.copies))
        stem = self.samples[patch][0].stem
        return f"{stem}+{self.copies[copy]}" if self.copies[copy] else stem

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of ``epoch`` (called by the trainer every epoch)."""
        self.epoch = epoch

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        patch, copy = divmod(index, len(self.copies))
        image_path, mask_path = self.samples[patch]
        image = read_image(image_path)
        mask: np.ndarray
        if mask_path is None:
            mask = np.full(image.shape[:2], self.info.ignore_index, np.uint8)
        else:
            mask = read_mask(mask_path)
            if mask.shape != image.shape[:2]:
                raise DataFormatError(
                    f"mask '{mask_path}' is {mask.shape[1]}×{mask.shape[0]} but its image is "
                    f"{image.shape[1]}×{image.shape[0]}"
                )
            self._check_labels(mask, mask_path)
        if self.copies[copy] == "hflip":  # PIL FLIP_LEFT_RIGHT: columns reversed
            return image[:, ::-1].copy(), mask[:, ::-1].copy()
        if self.copies[copy] == "vflip":  # PIL FLIP_TOP_BOTTOM: rows reversed
            return image[::-1].copy(), mask[::-1].copy()
        return image, mask

    def _check_labels(self, mask: np.ndarray, path: Path) -> None:
        values = np.unique(mask)
        bad = values[(values >= self.info.num_classes) & (values != self.info.ignore_index)]
        if bad.size:
            raise DataFormatError(
                f"mask '{path}' holds value {int(bad[0])}; expected class indices "
                f"0..{self.info.num_classes - 1} or {self.info.ignore_index} (ignore) for "
                f"dataset '{self.info.name}'"
            )

    def _mosaic(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Four samples cut around a random centre into one image of the first one's size."""
        image, mask = self._load(index)
        height, width = mask.shape
        cy = int(rng.integers(height // 4, 3 * height // 4 + 1))
        cx = int(rng.integers(width // 4, 3 * width // 4 + 1))
        boxes = [(0, cy, 0, cx), (0, cy, cx, width), (cy, height, 0, cx), (cy, height, cx, width)]
        others = rng.integers(0, len(self), size=3)
        out_image, out_mask = image.copy(), mask.copy()
        for (y0, y1, x0, x1), other in zip(boxes[1:], others, strict=True):
            src_image, src_mask = self._load(int(other))
            h, w = y1 - y0, x1 - x0
            if src_mask.shape[0] < h or src_mask.shape[1] < w:
                continue  # a smaller source keeps the first image's quadrant
            sy = int(rng.integers(0, src_mask.shape[0] - h + 1))
            sx = int(rng.integers(0, src_mask.shape[1] - w + 1))
            out_image[y0:y1, x0:x1] = src_image[sy : sy + h, sx : sx + w]
            out_mask[y0:y1, x0:x1] = src_mask[sy : sy + h, sx : sx + w]
        return out_image, out_mask

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample_seed = zlib.crc32(f"{self.seed}:{self.epoch}:{index}".encode())
        rng = np.random.default_rng(sample_seed)
        if self.mosaic_ratio > 0 and rng.random() < self.mosaic_ratio:
            image, mask = self._mosaic(index, rng)
        else:
            image, mask = self._load(index)
        self.transform.set_random_seed(sample_seed)
        out = self.transform(image=image, mask=mask)
        image_t: Tensor = torch.from_numpy(np.ascontiguousarray(out["image"].transpose(2, 0, 1)))
        mask_t: Tensor = torch.from_numpy(np.ascontiguousarray(out["mask"])).long()
        return {"image": image_t.float(), "mask": mask_t, "name": self.name(index)}
