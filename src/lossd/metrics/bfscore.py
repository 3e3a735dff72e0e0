"""Boundary F-score (BF) counts per class, vectorised over classes and images.

BF: G. Csurka, D. Larlus, F. Perronnin, "What is a good evaluation measure for semantic
segmentation?", BMVC 2013 (doi:10.5244/C.27.32), as MATLAB's ``bfscore`` computes it (Image
Processing Toolbox, https://www.mathworks.com/help/images/ref/bfscore.html; its source
``bfscore.m`` and ``images.internal.segmentation.bwbfscore2``, MathWorks 2017, and
``evaluateSemanticSegmentation`` of the Computer Vision Toolbox for the multi-class use). For one
class with predicted mask P and true mask G:

- boundary of a mask: its pixels that have a 4-neighbour outside the mask, the image border
  counting as outside (``bwbfscore2``: erosion by the 3x3 cross of the mask padded with zeros,
  ``boundary = mask & ~eroded``);
- a boundary pixel is *matched* when a boundary pixel of the other mask lies at Euclidean
  distance strictly below the tolerance ``theta`` (``bwbfscore2``: squared distance
  ``< theta^2``);
- precision = matched predicted boundary pixels / predicted boundary pixels, recall = matched
  true boundary pixels / true boundary pixels, BF = 2 P R / (P + R);
- ``theta`` = 0.75 % of the image diagonal by default (``bfscore.m`` and
  ``evaluateSemanticSegmentation``: ``0.75 / 100 * sqrt(H^2 + W^2)``, "the value used by the
  paper"), here ``metrics.bf_ratio`` (default 0.0075) times the diagonal, not rounded.

Ignore pixels (target = ignore) are "not the class" in the true and in the predicted mask, as
``evaluateSemanticSegmentation`` masks unlabeled pixels out of the predicted class masks
(``maskUnlabeledPixels``): they are never boundary pixels and are never counted, and a class
pixel next to one is a boundary pixel of both masks (the ignore region acts as contour, as for
Boundary IoU, docs/design.md). What the prediction says at an ignore pixel changes nothing.

Departures from MATLAB, on purpose: the four counts are summed per class over the whole
evaluation set and BF is computed once from the sums (as this package's Boundary IoU pools its
intersections and unions), where ``evaluateSemanticSegmentation`` averages per-image BF scores
(``mean(..., 'omitnan')``); and the zero cases are defined (see
:func:`lossd.metrics.catalogue.bf_values`: a class with no boundary pixel in prediction nor
target scores NaN, one missed or hallucinated entirely scores 0).

Computation (no distance transform, no loop over classes): boundary pixels of up to 8 classes
are packed as bits of one ``uint8`` map (boundaries of different classes never share a pixel,
since a pixel has one label), the map is dilated with a bitwise OR over the disc of radius
``theta`` (one OR per disc row after shared sparse-table OR windows along the rows), and a pixel
of class ``c`` is matched iff bit ``c`` of the other map's dilation is set there. Counting is
one ``bincount`` of the packed values per map.
"""

import math

import torch
from torch import Tensor

__all__ = ["BF_COUNTS", "bf_counts", "bf_tolerance", "class_edges", "disc_offsets"]

BF_COUNTS = ("pred_boundary", "pred_matched", "target_boundary", "target_matched")
"""Rows of :func:`bf_counts`: predicted boundary pixels, those matched, true boundary pixels,
those matched."""

_GROUP = 8  # classes per packed uint8 map


def bf_tolerance(height: int, width: int, ratio: float) -> float:
    """Match tolerance ``theta = ratio * sqrt(height² + width²)`` in pixels (not rounded).

    Source: MATLAB ``bfscore.m`` (``0.75 / 100 * sqrt(size(p,1)^2 + size(p,2)^2)``) with
    ``ratio`` = 0.0075.

    Args:
        height: Image height H.
        width: Image width W.
        ratio: Fraction of the image diagonal.

    Returns:
        ``theta``; a boundary pixel matches one at Euclidean distance ``< theta``.
    """
    return ratio * math.sqrt(height * height + width * width)


def disc_offsets(tolerance: float) -> list[tuple[int, int]]:
    """``(dy, w)`` for each row of the disc: offsets ``(dy, dx)`` with ``dy² + dx² < theta²``.

    Args:
        tolerance: ``theta`` > 0.

    Returns:
        One pair per row ``dy`` in ``-r..r`` (``r`` the largest integer with ``r² < theta²``);
        the row holds ``dx`` in ``-w..w``. Empty when ``theta <= 0``.
    """
    limit = tolerance * tolerance
    rows: list[tuple[int, int]] = []
    radius = 0
    while (radius + 1) ** 2 < limit:
        radius += 1
    if limit <= 0:
        return rows
    for dy in range(-radius, radius + 1):
        w = 0
        while dy * dy + (w + 1) ** 2 < limit:
            w += 1
        rows.append((dy, w))
    return rows


def class_edges(labels: Tensor, ignore_label: int) -> Tensor:
    """Boundary pixels of every class mask at once (4-neighbourhood, image border = outside).

    ``out[p]`` is True iff ``labels[p]`` is a class (not ``ignore_label``) and a 4-neighbour of
    ``p`` holds another label or lies outside the image; for every class ``c`` hence
    ``out & (labels == c)`` is the boundary of the mask ``labels == c`` (module docstring).

    Args:
        labels: Integer label map; ``ignore_label`` marks pixels outside every class.
        ignore_label: The label of ignore pixels (``num_classes`` in the encoded maps).

    Returns:
        Boolean tensor of the shape of ``labels``.

    Shape:
        - labels: [..., H, W]; output: the same.
    """
    edge = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
    edge[..., 0, :] = True
    edge[..., -1, :] = True
    edge[..., :, 0] = True
    edge[..., :, -1] = True
    if labels.shape[-2] > 1:
        below = labels[..., 1:, :] != labels[..., :-1, :]
        edge[..., 1:, :] |= below
        edge[..., :-1, :] |= below
    if labels.shape[-1] > 1:
        right = labels[..., :, 1:] != labels[..., :, :-1]
        edge[..., :, 1:] |= right
        edge[..., :, :-1] |= right
    return edge & (labels != ignore_label)


def _disc_or(bits: Tensor, rows: list[tuple[int, int]]) -> Tensor:
    """Bitwise OR of ``bits`` over the disc ``rows`` around every pixel (zeros outside).

    Rows of the disc are OR windows along the last axis, from sparse tables of OR over spans of
    2^k pixels shared by all widths; the disc is the OR of its rows shifted along the rows axis.
    """
    radius = len(rows) // 2
    height, width = bits.shape[-2], bits.shape[-1]
    padded = torch.nn.functional.pad(bits, (radius, radius, radius, radius))
    spans = {1: padded}
    size = 1
    widest = max(w for _, w in rows)
    while 2 * size <= 2 * widest + 1:
        span = spans[size]
        count = span.shape[-1] - size
        spans[2 * size] = span[..., :count] | span[..., size : size + count]
        size *= 2
    windows: dict[int, Tensor] = {}
    for _, w in rows:
        if w in windows:
            continue
        length = 2 * w + 1
        k = 1 << (length.bit_length() - 1)
        span = spans[k]
        start = radius - w
        windows[w] = span[..., start : start + width] | span[..., start + length - k :][..., :width]
    out = windows[rows[0][1]][..., 0:height, :].clone()
    for dy, w in rows[1:]:
        top = radius + dy
        out |= windows[w][..., top : top + height, :]
    return out


def _pack(labels: Tensor, edge: Tensor, first: int) -> Tensor:
    """``uint8`` map with bit ``c - first`` set at boundary pixels of class ``c`` of the group."""
    local = labels.to(torch.int32) - first if first else labels
    inside = edge & (local >= 0) & (local < _GROUP) if first else edge & (local < _GROUP)
    shift = local.clamp(0, _GROUP - 1).to(torch.uint8)
    one = torch.ones((), dtype=torch.uint8, device=labels.device)
    return torch.bitwise_left_shift(one, shift) * inside


def _bit_counts(packed: Tensor, classes: int, per_image: bool) -> Tensor:
    """Pixels with bit ``c`` set, per bit ``c < classes`` (``[B, classes]`` per image)."""
    if per_image:
        images = packed.shape[0]
        offsets = torch.arange(images, device=packed.device, dtype=torch.int32) * 256
        code = packed.to(torch.int32) + offsets.view(images, *([1] * (packed.dim() - 1)))
        counts = torch.bincount(code.reshape(-1), minlength=images * 256).reshape(images, 256)
    else:
        counts = torch.bincount(packed.reshape(-1), minlength=256)
    powers = torch.tensor([1 << b for b in range(classes)], device=packed.device)
    return counts[..., powers]


def bf_counts(
    pred: Tensor, target: Tensor, num_classes: int, tolerance: float, per_image: bool = False
) -> Tensor:
    """Boundary F-score counts per class for a batch (module docstring).

    Labels are class indices ``0..C-1`` and ``C`` marks an ignore pixel in both maps (where the
    target is ignore the prediction holds ``C`` too, as :func:`lossd.metrics.joint_counts`
    expects), so ignore pixels lie on no boundary and act as contour.

    Args:
        pred: Predicted labels in ``0..C``.
        target: Target labels in ``0..C``.
        num_classes: Number of classes C.
        tolerance: Match distance ``theta`` in pixels (:func:`bf_tolerance`); a pixel matches
            one at Euclidean distance ``< theta``.
        per_image: Count each image of the batch apart (a leading batch axis).

    Returns:
        int64 tensor ``[4, C]`` (``[B, 4, C]`` with ``per_image``), rows :data:`BF_COUNTS`.

    Shape:
        - pred, target: [B, H, W].
    """
    rows = disc_offsets(tolerance)
    pred_edge = class_edges(pred, num_classes)
    target_edge = class_edges(target, num_classes)
    parts = []
    for first in range(0, num_classes, _GROUP):
        classes = min(_GROUP, num_classes - first)
        pred_bits = _pack(pred, pred_edge, first)
        target_bits = _pack(target, target_edge, first)
        if rows:
            pred_hit = pred_bits & _disc_or(target_bits, rows)
            target_hit = target_bits & _disc_or(pred_bits, rows)
        else:
            pred_hit, target_hit = torch.zeros_like(pred_bits), torch.zeros_like(target_bits)
        parts.append(
            torch.stack(
                [
                    _bit_counts(bits, classes, per_image)
                    for bits in (pred_bits, pred_hit, target_bits, target_hit)
                ],
                dim=-2,
            )
        )
    return torch.cat(parts, dim=-1).to(torch.int64)
