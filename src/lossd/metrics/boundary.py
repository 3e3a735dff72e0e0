"""Boundary IoU for semantic segmentation, vectorised over classes and images.

Boundary IoU: B. Cheng, R. Girshick, P. Dollár, A. C. Berg, A. Kirillov, "Boundary IoU:
Improving Object-Centric Image Segmentation Evaluation", CVPR 2021, arXiv:2103.16562. For a class
with ground-truth mask G and predicted mask P, BIoU = |(G_d ∩ G) ∩ (P_d ∩ P)| /
|(G_d ∩ G) ∪ (P_d ∩ P)| (the paper's definition; docs/reference.md, "Boundary IoU"), where
X_d ∩ X is the band of X within d pixels of its contour.

Band semantics follow the official ``mask_to_boundary`` (github.com/bowenc0221/boundary-iou-api,
boundary_iou/utils/boundary_utils.py, commit 8006aa9, BSD-2-Clause): the mask is padded with a
one-pixel zero border (so the image border counts as contour), eroded ``d`` times with a 3x3
square by ``cv2.erode`` (whose own border value is neutral for erosion), cropped back, and the
band is ``mask - eroded``; ``d = max(1, round(ratio * sqrt(H² + W²)))`` with Python/NumPy
round-half-to-even, ratio 0.02 by default (the paper's COCO/LVIS setting; docs/reference.md,
"Boundary IoU"). This module computes the same bands without iterating:

1. On a rectangular domain with a neutral border, ``d`` erosions by the 3x3 square equal one
   erosion by the (2d+1) x (2d+1) square: coordinate-wise, any two pixels of the domain at
   Chebyshev distance <= 2 have a common neighbour in the domain, so windows compose.
2. The zero ring: a (2d+1) window around a pixel of the image either lies inside the image, or
   reaches past its edge and then contains a ring pixel (the ring is adjacent to the image),
   so ``eroded(p) = 1`` iff the window around ``p`` lies inside the image and is all ones. That
   is a min-pool with zero padding, and a square window is separable into a row window
   followed by a column window.
3. For a label map and its class masks ``target == c``: a pixel of class ``c`` survives the
   erosion of its own class mask iff its window lies inside the image and holds one label
   only. So one "window is uniform" test per label map gives the bands of all classes at once:
   ``band_c = (labels == c) & ~uniform``. The test is separable too: each row of the window is
   constant and the window's centre column is constant.
4. A window of ``n`` consecutive True values is found with ``log2(n)`` shifted ANDs (sparse-table
   doubling), so the cost does not grow with ``d`` nor with the number of classes.

Semantic segmentation use (maintainer, boundary-iou-api issue #4; docs/design.md, Conventions):
per image and class, the bands are taken on the class masks of the target and of the prediction
where an ignore pixel (target == ignore) is "not the class" in both, so the ignore region acts as
contour and the prediction at ignore pixels has no influence; ignore pixels are then outside both
bands; intersection and union are accumulated per class over the whole evaluation set.
"""

import math

import torch
from torch import Tensor

__all__ = ["band_counts", "boundary_width", "joint_counts", "label_boundary", "mask_boundary"]


def boundary_width(height: int, width: int, ratio: float) -> int:
    """Band width ``d = max(1, round(ratio * sqrt(height² + width²)))`` in pixels.

    Source: ``mask_to_boundary`` of the official boundary-iou-api (commit 8006aa9), including its
    round-half-to-even rounding and the minimum of one pixel.

    Args:
        height: Image height H.
        width: Image width W.
        ratio: Fraction of the image diagonal (0.02 in the paper for COCO/LVIS).

    Returns:
        The band width d >= 1. A 1024 x 1024 image at ratio 0.02 gives 29 (docs/reference.md).
    """
    return max(1, round(ratio * math.sqrt(height * height + width * width)))


def _windows_all(ok: Tensor, length: int, dim: int) -> Tensor:
    """For each start ``i``, whether ``ok[i : i + length]`` along ``dim`` is all True.

    Sparse-table doubling: ``span[i]`` holds "all True on ``[i, i + 2^k)``", doubled until
    ``2^k <= length < 2^(k+1)``; a window of ``length`` is then two overlapping ``2^k`` spans.

    Args:
        ok: Boolean tensor.
        length: Window length, at least 1 and at most ``ok.shape[dim]``.
        dim: The axis the windows slide along.

    Returns:
        Boolean tensor with ``ok.shape[dim] - length + 1`` entries along ``dim``.
    """
    span, size = ok, 1
    while 2 * size <= length:
        count = span.shape[dim] - size
        span = span.narrow(dim, 0, count) & span.narrow(dim, size, count)
        size *= 2
    starts = ok.shape[dim] - length + 1
    return span.narrow(dim, 0, starts) & span.narrow(dim, length - size, starts)


def _centred_windows_all(ok: Tensor, radius: int, dim: int) -> Tensor:
    """Whether the window ``[i - radius, i + radius]`` along ``dim`` is inside and all True."""
    size = ok.shape[dim]
    out = torch.zeros_like(ok, dtype=torch.bool)
    if size >= 2 * radius + 1:
        out.narrow(dim, radius, size - 2 * radius).copy_(_windows_all(ok, 2 * radius + 1, dim))
    return out


def _check_width(width: int) -> None:
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"boundary width must be a positive int, got {width!r}")


def mask_boundary(mask: Tensor, width: int) -> Tensor:
    """Inner boundary band of binary masks, as the official ``mask_to_boundary``.

    Equal to ``mask - erode(pad(mask, 1, 0), 3x3, iterations=width)[1:-1, 1:-1]``
    (boundary-iou-api, commit 8006aa9) through steps 1-2 of the module docstring: a pixel of the
    mask is interior iff its (2 width + 1) square window lies inside the image and inside the
    mask.

    Args:
        mask: Boolean masks (any other dtype is read as ``mask != 0``).
        width: Band width d >= 1 in pixels (see :func:`boundary_width`).

    Returns:
        Boolean band ``mask & ~eroded``, same shape and device as ``mask``.

    Raises:
        ValueError: If ``width`` is not a positive int.

    Shape:
        - mask: [..., H, W]; output: the same.
    """
    _check_width(width)
    mask = mask if mask.dtype == torch.bool else mask != 0
    interior = _centred_windows_all(mask, width, dim=-1)
    interior = _centred_windows_all(interior, width, dim=-2)
    return mask & ~interior


def label_boundary(labels: Tensor, width: int) -> Tensor:
    """Pixels in the boundary band of their own label, for every label at once.

    ``out[p]`` is True iff the (2 width + 1) square window centred on ``p`` leaves the image or
    holds a label other than ``labels[p]``; hence for every class ``c``,
    ``(labels == c) & out == mask_boundary(labels == c, width)`` (module docstring, step 3).
    Separable test: all rows of the window constant (row pass over "same as right neighbour"
    flags, windows of length 2 width) and the centre column constant (column pass over "same
    as lower neighbour" flags, joined with the row results).

    Args:
        labels: Integer label map (class indices, the ignore value is just another label).
        width: Band width d >= 1 in pixels.

    Returns:
        Boolean tensor, same shape and device as ``labels``.

    Raises:
        ValueError: If ``width`` is not a positive int.

    Shape:
        - labels: [..., H, W]; output: the same.
    """
    _check_width(width)
    height, cols = labels.shape[-2], labels.shape[-1]
    span = 2 * width
    rows_constant = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
    if cols > span:
        same_right = labels[..., :, 1:] == labels[..., :, :-1]
        rows_constant[..., :, width : cols - width] = _windows_all(same_right, span, dim=-1)
    uniform = torch.zeros_like(rows_constant)
    if height > span:
        # Window rows y-d .. y+d: rows y-d .. y+d-1 constant and equal to the row below,
        # plus row y+d constant.
        same_below = labels[..., 1:, :] == labels[..., :-1, :]
        chained = same_below & rows_constant[..., :-1, :]
        uniform[..., width : height - width, :] = (
            _windows_all(chained, span, dim=-2) & rows_constant[..., span:, :]
        )
    return ~uniform


def _index_dtype(size: int) -> torch.dtype:
    """Smallest signed integer dtype holding indices ``0..size-1`` (bincount input)."""
    for dtype in (torch.int16, torch.int32):
        if size - 1 <= torch.iinfo(dtype).max:
            return dtype
    return torch.int64


def joint_counts(
    pred: Tensor, target: Tensor, num_classes: int, width: int, per_image: bool = False
) -> Tensor:
    """Pixel counts by band membership, target label and predicted label, for a batch.

    Bands of the class masks ``target == c`` and ``pred == c`` are taken per image with
    :func:`label_boundary`. Labels are class indices ``0..C-1``, and ``C`` marks an ignore pixel
    (in both maps: where the target is ignore, the prediction must hold ``C`` too), so an
    ignore pixel is "not the class" in both masks and lies in no band. One ``bincount`` gives
    the confusion matrix and the Boundary IoU counts at once (:func:`band_counts`).

    Args:
        pred: Predicted labels in ``0..C`` (uint8 or any integer dtype).
        target: Target labels in ``0..C``, same dtype.
        num_classes: Number of classes C.
        width: Band width d >= 1 in pixels.
        per_image: Count each image of the batch apart (a leading batch axis).

    Returns:
        int64 tensor ``[4, C+1, C+1]`` (``[B, 4, C+1, C+1]`` with ``per_image``): index 0 =
        pixel in no band, 1 = target band only, 2 = prediction band only, 3 = both; then target
        label, then predicted label. Summing over the band axis gives the confusion matrix
        (row/column C = ignore).

    Shape:
        - pred, target: [B, H, W].
    """
    n = num_classes + 1
    target_band = label_boundary(target, width) & (target != num_classes)
    pred_band = label_boundary(pred, width) & (pred != num_classes)
    images = pred.shape[0] if per_image else 1
    dtype = _index_dtype(images * 4 * n * n)
    code = target.to(dtype) * n
    code += pred if pred.dtype == torch.uint8 else pred.to(dtype)
    code += target_band.to(dtype) * (n * n)
    code += pred_band.to(dtype) * (2 * n * n)
    if not per_image:
        return torch.bincount(code.reshape(-1), minlength=4 * n * n).reshape(4, n, n)
    offsets = torch.arange(images, device=code.device, dtype=dtype) * (4 * n * n)
    code += offsets.view(images, *([1] * (code.dim() - 1)))
    counts = torch.bincount(code.reshape(-1), minlength=images * 4 * n * n)
    return counts.reshape(images, 4, n, n)


def band_counts(joint: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Boundary IoU counts per class from :func:`joint_counts` (or a sum of them).

    Args:
        joint: Counts ``[..., 4, C+1, C+1]`` (a leading batch axis: per image).

    Returns:
        ``(intersection, target_band, pred_band)``, each ``[..., C]``: ``|Gb ∩ Pb|``, ``|Gb|``
        and ``|Pb|`` per class. The union is ``|Gb| + |Pb| - |Gb ∩ Pb|`` and BIoU = I / U.
    """
    c = joint.shape[-1] - 1
    in_target_band = joint[..., 1, :, :] + joint[..., 3, :, :]
    in_pred_band = joint[..., 2, :, :] + joint[..., 3, :, :]
    intersection = joint[..., 3, :, :].diagonal(dim1=-2, dim2=-1)[..., :c]
    return (
        intersection,
        in_target_band.sum(dim=-1)[..., :c],
        in_pred_band.sum(dim=-2)[..., :c],
    )
