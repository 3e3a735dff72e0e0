"""Albumentations pipelines of the field's training recipes, applied identically to image and mask.

The training pipeline follows GeoSeg's recipes (github.com/WangLibo1995/GeoSeg, config/*/): a
random scale drawn from a discrete set (LoveDA {0.75, 1, 1.25, 1.5}), a random crop of
``crop_size`` (padded first, mask padding = 255 so it is ignored), flips and rotation by multiples
of 90 degrees where the recipe has them, then ImageNet normalisation (timm backbones are trained
with it). Departure from GeoSeg: its SmartCropV1 re-draws crops dominated by one class; lossd
uses a plain random crop (docs/datasets.md lists the recipes).
"""

from collections.abc import Sequence

import albumentations as A
import cv2
import numpy as np
from torch import Tensor

from lossd.data.info import IGNORE_INDEX
from lossd.errors import InvalidOptionError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "denormalize",
    "eval_transform",
    "train_transform",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""ImageNet channel means (timm default_cfg of the ResNet/EfficientNet backbones)."""
IMAGENET_STD = (0.229, 0.224, 0.225)


def _normalize(mean: Sequence[float], std: Sequence[float]) -> A.Normalize:
    if len(mean) != len(std):
        raise InvalidOptionError(f"mean has {len(mean)} values but std has {len(std)}")
    return A.Normalize(mean=tuple(mean), std=tuple(std), max_pixel_value=255.0)


def train_transform(
    crop_size: int,
    scales: Sequence[float] = (1.0,),
    hflip: bool = True,
    vflip: bool = False,
    rotate90: bool = False,
    color_jitter: bool = False,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> A.Compose:
    """Training augmentation: discrete multi-scale, padded random crop, flips, normalisation.

    Args:
        crop_size: Side of the square training crop (LoveDA 512, Potsdam 768 in GeoSeg).
        scales: Scale factors, one drawn uniformly per sample (1.0 only: no rescaling).
        hflip: Random horizontal flip (p = 0.5).
        vflip: Random vertical flip (p = 0.5).
        rotate90: Random rotation by 0, 90, 180 or 270 degrees.
        color_jitter: Random brightness/contrast (UAVid recipe of SFA-Net).
        mean: Per-channel mean for normalisation (0..1 scale).
        std: Per-channel standard deviation for normalisation.

    Returns:
        An ``albumentations.Compose`` taking ``image`` (H×W×C uint8) and ``mask`` (H×W uint8).

    Raises:
        InvalidOptionError: If ``crop_size`` or a scale is not positive.
    """
    if crop_size < 1:
        raise InvalidOptionError(f"crop_size={crop_size}; expected a positive number of pixels")
    if not scales or any(s <= 0 for s in scales):
        raise InvalidOptionError(f"scales={list(scales)}; expected positive scale factors")
    steps: list[A.BasicTransform | A.BaseCompose] = []
    if any(s != 1.0 for s in scales):
        # RandomScale draws 1 + U(limit); a degenerate limit (s - 1, s - 1) gives exactly s.
        steps.append(
            A.OneOf(
                [
                    A.RandomScale(
                        scale_limit=(s - 1.0, s - 1.0),
                        interpolation=cv2.INTER_LINEAR,
                        mask_interpolation=cv2.INTER_NEAREST,
                        p=1.0,
                    )
                    for s in scales
                ],
                p=1.0,
            )
        )
    steps += [
        A.PadIfNeeded(
            min_height=crop_size,
            min_width=crop_size,
            border_mode=cv2.BORDER_CONSTANT,
            fill=0,
            fill_mask=IGNORE_INDEX,
        ),
        A.RandomCrop(height=crop_size, width=crop_size),
    ]
    if hflip:
        steps.append(A.HorizontalFlip(p=0.5))
    if vflip:
        steps.append(A.VerticalFlip(p=0.5))
    if rotate90:
        steps.append(A.RandomRotate90(p=1.0))
    if color_jitter:
        steps.append(A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0.25, p=0.5))
    steps.append(_normalize(mean, std))
    return A.Compose(steps)


def eval_transform(
    mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> A.Compose:
    """Evaluation pipeline: normalisation only (whole images; tiling is the evaluator's job)."""
    return A.Compose([_normalize(mean, std)])


def denormalize(image: Tensor, transform: A.BaseCompose | None) -> np.ndarray:
    """Undo the pipeline's normalisation: float [C,H,W] -> uint8 H×W×3 RGB for display.

    Uses the mean/std of the last ``A.Normalize`` in ``transform`` (ImageNet if there is none);
    only the first three channels are shown.
    """
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    steps = list(transform.transforms) if transform is not None else []
    for step in steps:
        if isinstance(step, A.Normalize):
            mean, std = tuple(step.mean), tuple(step.std)
    array: np.ndarray = image[:3].detach().float().cpu().numpy().transpose(1, 2, 0)
    array = array * np.asarray(std[:3]) + np.asarray(mean[:3])
    out: np.ndarray = np.clip(array * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out
