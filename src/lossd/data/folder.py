"""The Dataset shared by every prepared dataset and by the synthetic one.

Prepared layout (docs/design.md, Layout and Conventions)::

    <root>/<split>/images/<stem>.<ext>     8-bit image (PNG, or GeoTIFF for Potsdam)
    <root>/<split>/masks/<stem>.png        uint8 class indices 0..C-1, 255 = ignore

with ``<stem> = <source-stem>_<row>_<col>``. Images and masks are paired by stem.

``padding_label`` gives the padding of padded patches (GeoSeg's ISPRS tiles, padded at the
top/left; known from the split's ``meta.json``) a class instead of the ignore value: the
``original`` protocol's reproduction of GeoSeg, which labels it impervious surfaces
(docs/datasets.md §3 Padding).
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
from lossd.data.prepared import META_FILE, Box, read_meta, source_boxes, stale_reason
from lossd.data.registry import get_info
from lossd.data.transforms import eval_transform
from lossd.errors import DataFormatError, DatasetNotFoundError, InvalidOptionError
from lossd.io import read_image, read_mask

__all__ = ["SegmentationFolder", "relabel_padding"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def relabel_padding(mask: np.ndarray, box: Box, label: int) -> np.ndarray:
    """``mask`` with every pixel outside ``box`` (the padding) set to ``label``."""
    top, bottom, left, right = box
    out = np.full_like(mask, label)
    out[top:bottom, left:right] = mask[top:bottom, left:right]
    return out


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
        padding_label: Class given to the padding of padded patches, before the mosaic and
            the augmentation (``protocol=original`` on GeoSeg's ISPRS tiles: 0); None keeps it
            ignored. Needs the split's ``meta.json`` (it says which pixels are padding).

    Raises:
        DatasetNotFoundError: If a split folder is missing or holds no image.
        DataFormatError: If an image has no mask of the same stem, a split was prepared by a
            preparation version this lossd does not read (:func:`lossd.data.prepared.
            stale_reason`), ``padding_label`` is set but a split has no ``meta.json``, or a
            mask value is neither a class index nor the ignore value (raised when the sample
            is read).
        InvalidOptionError: If ``padding_label`` is not a class index.
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
        padding_label: int | None = None,
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
        if padding_label is not None and not 0 <= padding_label < self.info.num_classes:
            raise InvalidOptionError(
                f"padding_label={padding_label}; expected a class index of {self.info.name} "
                f"(0..{self.info.num_classes - 1}) or None"
            )
        self.padding_label = padding_label
        self.samples = [s for name in self.splits for s in self._scan(name)]
        self.boxes: dict[str, Box] = {}
        for name in self.splits:
            self._read_preparation(name)

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

    def _read_preparation(self, split: str) -> None:
        """Refuse a split of an outdated preparation; read its padding if it is relabelled."""
        meta = read_meta(self.root / split)
        reason = stale_reason(self.root / split, self.info, meta)
        if reason is not None:
            raise DataFormatError(reason)
        if self.padding_label is None:
            return
        if meta is None:
            raise DataFormatError(
                f"padding_label={self.padding_label} needs '{self.root / split / META_FILE}', "
                "which says where the patches are padded; prepare the split with "
                "scripts/prepare_data.py"
            )
        self.boxes |= source_boxes(meta)

    def __len__(self) -> int:
        return len(self.samples)

    def name(self, index: int) -> str:
        """Sample name: the patch stem."""
        return self.samples[index][0].stem

    def source_box(self, name: str) -> Box | None:
        """The rows/columns of patch ``name`` that hold source pixels, if it is padded.

        Known only with ``padding_label`` (from ``meta.json``); None otherwise or for a
        patch without padding.
        """
        return self.boxes.get(name)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of ``epoch`` (called by the trainer every epoch)."""
        self.epoch = epoch

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, mask_path = self.samples[index]
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
            box = self.boxes.get(image_path.stem)
            if box is not None and self.padding_label is not None:
                mask = relabel_padding(mask, box, self.padding_label)
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
        """GeoSeg's 4-image mosaic: random crops of four samples around a random centre.

        As ``load_mosaic_img_and_mask`` (GeoSeg geoseg/datasets/potsdam_dataset.py:105-159,
        loveda_dataset.py:145-190 @9453fe4): a centre ``(cx, cy)`` is drawn uniformly with
        ``w // 4 <= cx <= w - w // 4`` (``random.randint``, both ends included, L120-124),
        and the quadrants are random crops of their sizes: A ``cy × cx`` of this sample (top
        left), B, C, D of three random samples (L131-139). The canvas has this sample's size
        (GeoSeg: its fixed ``img_size``, which equals the patch size of its data). A sample
        smaller than its quadrant keeps this sample's pixels there.
        """
        image, mask = self._load(index)
        height, width = mask.shape
        cy = int(rng.integers(height // 4, height - height // 4 + 1))
        cx = int(rng.integers(width // 4, width - width // 4 + 1))
        boxes = [(0, cy, 0, cx), (0, cy, cx, width), (cy, height, 0, cx), (cy, height, cx, width)]
        others = [int(other) for other in rng.integers(0, len(self), size=3)]
        out_image, out_mask = image.copy(), mask.copy()
        sources = [(image, mask)] + [self._load(other) for other in others]
        for (y0, y1, x0, x1), (src_image, src_mask) in zip(boxes, sources, strict=True):
            h, w = y1 - y0, x1 - x0
            if src_mask.shape[0] < h or src_mask.shape[1] < w:
                continue  # a smaller source keeps this sample's quadrant
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
