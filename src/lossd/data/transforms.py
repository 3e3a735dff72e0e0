"""Albumentations pipelines of the field's training recipes, applied identically to image and mask.

The training pipeline follows GeoSeg's recipes (github.com/WangLibo1995/GeoSeg @9453fe4,
config/*/ and geoseg/datasets/*_dataset.py): a random scale drawn from a discrete set (LoveDA
{0.75, 1, 1.25, 1.5}), a crop of ``crop_size``, flips and rotation by multiples of 90 degrees
where the recipe has them, then ImageNet normalisation (timm backbones are trained with it).

Two steps reproduce GeoSeg's own transforms (geoseg/datasets/transform.py) when asked:

- the crop: ``smart_crop_max_ratio=0.75`` gives :class:`SmartCrop`, GeoSeg's ``SmartCropV1``,
  which re-draws a crop dominated by one class; ``None`` (default) is a plain padded random crop;
- the rescale: ``scale_interpolation="pil_bicubic"`` resizes with Pillow exactly as GeoSeg's
  ``RandomScale`` (image BICUBIC, mask NEAREST); ``"bicubic"`` is the OpenCV approximation;
  ``"bilinear"`` (default) is lossd's original OpenCV bilinear choice.
"""

from collections.abc import Sequence
from typing import Any, Literal

import albumentations as A
import cv2
import numpy as np
from PIL import Image
from torch import Tensor

from lossd.data.info import IGNORE_INDEX
from lossd.data.windows import cut_window
from lossd.errors import DataFormatError, InvalidOptionError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SCALE_INTERPOLATIONS",
    "PillowScale",
    "ScaleInterpolation",
    "SmartCrop",
    "denormalize",
    "eval_transform",
    "train_transform",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""ImageNet channel means (timm default_cfg of the ResNet/EfficientNet backbones)."""
IMAGENET_STD = (0.229, 0.224, 0.225)

ScaleInterpolation = Literal["bilinear", "bicubic", "pil_bicubic"]
SCALE_INTERPOLATIONS: tuple[str, ...] = ("bilinear", "bicubic", "pil_bicubic")
"""Valid ``scale_interpolation`` values of :func:`train_transform`."""

SMART_CROP_DRAWS = 11
"""Crops SmartCropV1 draws at most: its counter starts at 0, is incremented after each draw and
the loop stops once it exceeds 10 (GeoSeg geoseg/datasets/transform.py L212, L215, L220
@9453fe4), i.e. after the 11th draw."""


def _normalize(mean: Sequence[float], std: Sequence[float]) -> A.Normalize:
    if len(mean) != len(std):
        raise InvalidOptionError(f"mean has {len(mean)} values but std has {len(std)}")
    return A.Normalize(mean=tuple(mean), std=tuple(std), max_pixel_value=255.0)


class SmartCrop(A.DualTransform):  # type: ignore[misc]  # albumentations is untyped
    """GeoSeg's ``SmartCropV1``: a random crop, re-drawn while one class dominates it.

    Reproduces geoseg/datasets/transform.py L201-223 with its ``RandomCrop`` (L21-90,
    ``nopad=False`` as in every GeoSeg recipe) @9453fe4:

    1. An image of exactly ``size × size`` is returned unchanged (L47-48).
    2. A side shorter than ``size`` is padded by ``(size - side) // 2 + 1`` pixels on *both*
       ends (L57-64), image with 0 (L40), mask with ``ignore_index`` (L67-68).
    3. A crop offset is drawn uniformly in ``[0, padded side - size]`` per axis (L82-89).
    4. The crop passes if, counting the mask pixels of each label, at least two labels are
       present and the largest count is *below* ``max_ratio`` of the total (strict ``<``,
       L216-218). Padding pixels are never counted: GeoSeg pads with its ``ignore_index``
       and drops that label from the counts (L217).
    5. At most :data:`SMART_CROP_DRAWS` (11) crops are drawn; if none passes, the last one is
       kept (L219-223).

    Which pixels are counted: GeoSeg drops the label equal to the ``ignore_index`` it is given.
    Its Potsdam/Vaihingen recipes pass the dataset's ignore label (potsdam_dataset.py L33,
    vaihingen_dataset.py L33-34), so ignored pixels are not counted: ``count_ignore=False``.
    Its LoveDA *config* defines its own ``train_aug`` with ``ignore_index=7`` (config/loveda/
    unetformer.py L10, L52; SFA-Net config/loveda/sfanet.py L55), LoveDA's no-data label in
    GeoSeg's masks (raw 0 -> 8 -> 7, tools/loveda_mask_convert.py L38-40), so no-data pixels are
    not counted either (the dataset file's ``ignore_index=255``, loveda_dataset.py L46, is
    hidden by the config's). ``count_ignore=True`` counts the image's ignore pixels as one label
    (padding stays uncounted), for recipes that do count them. SFA-Net
    (github.com/j2jeong/priv @3c442da) has the same transform.py and recipes
    (network/datasets/loveda_dataset.py L47, potsdam_dataset.py L34).

    The random draws use albumentations' seeded ``py_random`` (GeoSeg: Python ``random``), so
    the pipeline's ``set_random_seed`` makes them reproducible. GeoSeg's ``nopad=True`` mode
    (shrink the crop to the image) is not implemented: no GeoSeg recipe uses it.

    Args:
        size: Side of the square crop.
        max_ratio: A crop passes if its largest label share is below this (GeoSeg 0.75).
        ignore_index: Mask padding value and the label left out of the counts.
        count_ignore: Count ``ignore_index`` pixels of the image (not padding) as a label.
        p: Probability of applying the transform.

    Raises:
        InvalidOptionError: If ``size`` is not positive or ``max_ratio`` not in (0, 1].
    """

    def __init__(
        self,
        size: int,
        max_ratio: float = 0.75,
        ignore_index: int = IGNORE_INDEX,
        count_ignore: bool = False,
        p: float = 1.0,
    ) -> None:
        super().__init__(p=p)
        if size < 1:
            raise InvalidOptionError(f"SmartCrop size={size}; expected a positive number of pixels")
        if not 0.0 < max_ratio <= 1.0:
            raise InvalidOptionError(
                f"smart crop max_ratio={max_ratio}; expected a share in (0, 1] (GeoSeg: 0.75)"
            )
        self.size = size
        self.max_ratio = max_ratio
        self.ignore_index = ignore_index
        self.count_ignore = count_ignore

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        """Argument names shown by ``repr`` and saved by ``to_dict``."""
        return ("size", "max_ratio", "ignore_index", "count_ignore")

    def passes(self, mask: np.ndarray, top: int, left: int) -> bool:
        """Whether the crop at ``(top, left)`` of the *unpadded* ``mask`` passes step 4."""
        r0, r1 = max(top, 0), min(top + self.size, mask.shape[0])
        c0, c1 = max(left, 0), min(left + self.size, mask.shape[1])
        values = mask[r0:r1, c0:c1].ravel()
        if values.dtype == np.uint8:
            counts = np.bincount(values, minlength=256)
            if not self.count_ignore and 0 <= self.ignore_index < 256:
                counts[self.ignore_index] = 0
            counts = counts[counts > 0]
        else:
            labels, counts = np.unique(values, return_counts=True)
            if not self.count_ignore:
                counts = counts[labels != self.ignore_index]
        # Two labels or more, largest share strictly below max_ratio: transform.py L218.
        return bool(counts.size > 1 and counts.max() / counts.sum() < self.max_ratio)

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        """Draw the crop: its top-left corner in unpadded coordinates (negative = padding)."""
        height, width = params["shape"][:2]
        if height == self.size and width == self.size:  # GeoSeg transform.py L47-48
            return {"top": 0, "left": 0}
        # Both ends padded by (size - side) // 2 + 1: GeoSeg transform.py L57-64 @9453fe4.
        pad_rows = (self.size - height) // 2 + 1 if self.size > height else 0
        pad_cols = (self.size - width) // 2 + 1 if self.size > width else 0
        # Offsets uniform in [0, padded side - size], 0 if equal: transform.py L82-89.
        span_rows = height + 2 * pad_rows - self.size
        span_cols = width + 2 * pad_cols - self.size
        mask = data.get("mask")
        top = left = 0
        for _ in range(SMART_CROP_DRAWS):
            left = (self.py_random.randint(0, span_cols) if span_cols else 0) - pad_cols
            top = (self.py_random.randint(0, span_rows) if span_rows else 0) - pad_rows
            if mask is None or self.passes(np.asarray(mask), top, left):
                break  # else the last draw is kept: transform.py L219-223
        return {"top": top, "left": left}

    def apply(self, img: np.ndarray, top: int, left: int, **params: Any) -> np.ndarray:
        """Crop the image (padding = 0)."""
        return cut_window(img, top, left, (self.size, self.size), 0)  # pad_color: transform.py L40

    def apply_to_mask(self, mask: np.ndarray, top: int, left: int, **params: Any) -> np.ndarray:
        """Crop the mask (padding = ``ignore_index``, GeoSeg transform.py L68)."""
        return cut_window(mask, top, left, (self.size, self.size), self.ignore_index)


def _pillow_resize(array: np.ndarray, size: tuple[int, int], resample: int) -> np.ndarray:
    """Resize an 8-bit ``H×W`` or ``H×W×C`` array to ``size = (height, width)`` with Pillow.

    Channel by channel (mode ``L``): for RGB this equals Pillow's RGB resize, and it avoids
    Pillow's alpha premultiplication for a fourth (infrared) band.
    """
    if array.dtype != np.uint8:
        raise DataFormatError(
            f"scale_interpolation='pil_bicubic' needs 8-bit images; got dtype {array.dtype}"
        )
    height, width = size
    if array.ndim == 2:
        image = Image.fromarray(np.ascontiguousarray(array), "L")
        return np.asarray(image.resize((width, height), resample))
    bands = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(array[..., c]), "L").resize(
                (width, height), resample
            )
        )
        for c in range(array.shape[2])
    ]
    return np.stack(bands, axis=-1)


class PillowScale(A.DualTransform):  # type: ignore[misc]  # albumentations is untyped
    """Rescale by a fixed factor with Pillow: image BICUBIC, mask NEAREST (GeoSeg's calls).

    GeoSeg's ``RandomScale`` resizes the PIL image with ``Image.BICUBIC`` and the mask with
    ``Image.NEAREST`` to ``int(scale * side)`` (geoseg/datasets/transform.py L174-176
    @9453fe4). Pillow's bicubic widens its kernel when shrinking (anti-aliasing); OpenCV's
    ``INTER_CUBIC`` does not, so only Pillow reproduces GeoSeg's pixels. GeoSeg takes
    ``oh, ow = img.size`` (width, height) and so swaps height and width of a non-square
    image (L168, L174-176); all its patches are square, and lossd keeps the aspect ratio.

    Args:
        scale: The scale factor.
        p: Probability of applying the transform.
    """

    def __init__(self, scale: float, p: float = 1.0) -> None:
        super().__init__(p=p)
        if scale <= 0:
            raise InvalidOptionError(f"scale={scale}; expected a positive scale factor")
        self.scale = scale

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        """Argument names shown by ``repr`` and saved by ``to_dict``."""
        return ("scale",)

    def _size(self, array: np.ndarray) -> tuple[int, int]:
        # int() truncation as GeoSeg (transform.py L174-175) and A.RandomScale.
        return int(array.shape[0] * self.scale), int(array.shape[1] * self.scale)

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        """Resize the image with Pillow BICUBIC."""
        return _pillow_resize(img, self._size(img), Image.Resampling.BICUBIC)

    def apply_to_mask(self, mask: np.ndarray, **params: Any) -> np.ndarray:
        """Resize the mask with Pillow NEAREST."""
        return _pillow_resize(mask, self._size(mask), Image.Resampling.NEAREST)


def _scale_step(scales: Sequence[float], interpolation: str) -> A.OneOf:
    """One scale of ``scales`` drawn uniformly per sample (GeoSeg transform.py L170-171)."""
    if interpolation == "pil_bicubic":
        return A.OneOf([PillowScale(s, p=1.0) for s in scales], p=1.0)
    # Image and mask interpolation: OpenCV bilinear + nearest is lossd's original choice;
    # OpenCV bicubic + NEAREST_EXACT approximates GeoSeg's Pillow BICUBIC + NEAREST
    # (transform.py L176): Pillow's NEAREST samples pixel centres, as INTER_NEAREST_EXACT
    # does, while INTER_NEAREST samples top-left corners (half a pixel off the image).
    image_interp, mask_interp = {
        "bilinear": (cv2.INTER_LINEAR, cv2.INTER_NEAREST),
        "bicubic": (cv2.INTER_CUBIC, cv2.INTER_NEAREST_EXACT),
    }[interpolation]
    # RandomScale draws 1 + U(limit); a degenerate limit (s - 1, s - 1) gives exactly s.
    return A.OneOf(
        [
            A.RandomScale(
                scale_limit=(s - 1.0, s - 1.0),
                interpolation=image_interp,
                mask_interpolation=mask_interp,
                p=1.0,
            )
            for s in scales
        ],
        p=1.0,
    )


def train_transform(
    crop_size: int,
    scales: Sequence[float] = (1.0,),
    hflip: bool = True,
    vflip: bool = False,
    rotate90: bool = False,
    color_jitter: bool = False,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    scale_interpolation: ScaleInterpolation = "bilinear",
    smart_crop_max_ratio: float | None = None,
    smart_crop_count_ignore: bool = False,
    rotate90_p: float = 1.0,
    color_jitter_p: float = 0.5,
    sharpen: bool = False,
) -> A.Compose:
    """Training augmentation: discrete multi-scale, crop, flips, normalisation.

    Args:
        crop_size: Side of the square training crop (LoveDA 512, Potsdam 768 in GeoSeg).
        scales: Scale factors, one drawn uniformly per sample (1.0 only: no rescaling).
        hflip: Random horizontal flip (p = 0.5).
        vflip: Random vertical flip (p = 0.5).
        rotate90: Random rotation by 0, 90, 180 or 270 degrees, applied with probability
            ``rotate90_p``.
        color_jitter: Random brightness/contrast (limits 0.25, 0.25), applied with probability
            ``color_jitter_p`` (UAVid recipes of GeoSeg and SFA-Net).
        mean: Per-channel mean for normalisation (0..1 scale).
        std: Per-channel standard deviation for normalisation.
        scale_interpolation: How ``scales`` resize: ``"bilinear"`` (OpenCV bilinear image,
            nearest mask; lossd's original choice), ``"bicubic"`` (OpenCV bicubic image,
            ``INTER_NEAREST_EXACT`` mask) or ``"pil_bicubic"`` (Pillow BICUBIC image, NEAREST
            mask: GeoSeg's ``RandomScale``, geoseg/datasets/transform.py L176 @9453fe4).
        smart_crop_max_ratio: ``None``: pad to ``crop_size`` (image 0, mask 255, centred) and
            take a random crop. A share such as 0.75: :class:`SmartCrop` (GeoSeg
            ``SmartCropV1(max_ratio=0.75)``), which re-draws crops dominated by one class and
            pads as GeoSeg does.
        smart_crop_count_ignore: With the smart crop, count ignored image pixels as a label
            of their own (no recipe does; see :class:`SmartCrop`).
        rotate90_p: Probability of the rotation step (``rotate90=True``). 1.0 (default) draws
            one of the four angles for every sample; albumentations' ``RandomRotate90(p)``,
            as SFA-Net's recipes call it (LoveDA p=0.5, Potsdam p=0.25), draws an angle in
            {0, 90, 180, 270} when applied, so a real rotation happens with ``3/4 * p``.
        color_jitter_p: Probability of the brightness/contrast step (``color_jitter=True``);
            GeoSeg's and SFA-Net's UAVid recipes use ``RandomBrightnessContrast(0.25, 0.25,
            p=0.25)`` (geoseg/datasets/uavid_dataset.py L27 @9453fe4). 0.5 is the default.
        sharpen: Random sharpening with albumentations ``Sharpen()``'s defaults, as SFA-Net's
            UAVid recipe calls it without arguments (j2jeong/priv
            network/datasets/uavid_dataset.py L28 @3c442da): ``alpha=(0.2, 0.5)``,
            ``lightness=(0.5, 1.0)``, kernel method, ``p=0.5`` (the defaults of
            albumentations 1.3.1 and 2.x alike). Applied after the colour step.

    Returns:
        An ``albumentations.Compose`` taking ``image`` (H×W×C uint8) and ``mask`` (H×W uint8).

    Raises:
        InvalidOptionError: If ``crop_size`` or a scale is not positive, the interpolation is
            unknown, ``smart_crop_max_ratio`` is outside (0, 1] or a probability is outside
            [0, 1].
    """
    if crop_size < 1:
        raise InvalidOptionError(f"crop_size={crop_size}; expected a positive number of pixels")
    if not scales or any(s <= 0 for s in scales):
        raise InvalidOptionError(f"scales={list(scales)}; expected positive scale factors")
    if scale_interpolation not in SCALE_INTERPOLATIONS:
        raise InvalidOptionError(
            f"scale_interpolation={scale_interpolation!r}; expected one of "
            f"{list(SCALE_INTERPOLATIONS)}"
        )
    for name, value in (("rotate90_p", rotate90_p), ("color_jitter_p", color_jitter_p)):
        if not 0.0 <= value <= 1.0:
            raise InvalidOptionError(f"{name}={value}; expected a probability in [0, 1]")
    steps: list[A.BasicTransform | A.BaseCompose] = []
    if any(s != 1.0 for s in scales):
        steps.append(_scale_step(scales, scale_interpolation))
    if smart_crop_max_ratio is None:
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
    else:
        steps.append(
            SmartCrop(
                crop_size,
                max_ratio=smart_crop_max_ratio,
                ignore_index=IGNORE_INDEX,
                count_ignore=smart_crop_count_ignore,
            )
        )
    if hflip:
        steps.append(A.HorizontalFlip(p=0.5))
    if vflip:
        steps.append(A.VerticalFlip(p=0.5))
    if rotate90:
        steps.append(A.RandomRotate90(p=rotate90_p))
    if color_jitter:
        steps.append(
            A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0.25, p=color_jitter_p)
        )
    if sharpen:
        steps.append(A.Sharpen(alpha=(0.2, 0.5), lightness=(0.5, 1.0), p=0.5))
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
