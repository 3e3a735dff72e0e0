"""Over/under-segmentation diagnostics: where the wrong pixels lie relative to the true regions.

The Lossd paper (Ma et al., Acta Aeronautica et Astronautica Sinica 47(8):332780, 2026,
DOI 10.7527/S1000-6893.2025.32780; docs/lossd.md) claims that penalising errors by their distance
to the true region reduces over- and under-segmentation. These histograms measure that claim.
Every valid pixel ``p`` with ``pred[p] != target[p]`` is

- a false positive of class ``pred[p]``, binned by its L1 (taxicab) distance to the nearest pixel
  whose target is that class (over-segmentation reach: 1 = touches the true region);
- a false negative of class ``target[p]``, binned by its depth inside its true region: the L1
  distance to the nearest pixel whose target is another label (ignore included), so 1 = on the
  region's edge.

Bins are 1, 2-3, 4-7, 8-15, 16-31, 32+ pixels (:data:`DIAGNOSTIC_BINS`). The image border is not
background: a region that fills the image has infinite depth, and a class absent from an image's
target puts every false positive of that class in the 32+ bin.

The **signed distance profile** (:func:`error_diagnostics`) counts, for every class ``c`` and
every valid pixel, the pixel and whether it is an error *for that class* by its signed taxicab
distance to the true region of ``c``: inside the region (negative: ``-depth``), an error is a
missed pixel (``pred != c``); outside it (positive: the distance to the region), an error is a
pixel predicted as ``c``. Distances are capped at :data:`PROFILE_REACH` (the outermost bins read
"at least 32"). The error rate per signed distance is where a distance loss should act: Lossd
weighs a wrong pixel by these very distances (docs/lossd.md, Definition, step 2).

Distances are the exact taxicab transforms of :mod:`lossd.ops.distance` (shared with Lossd),
capped at the last bin edge (32), which keeps the histogram exact while saving passes and
allowing 8-bit arithmetic.
"""

import torch
from torch import Tensor

from lossd.ops.distance import region_distance_maps

__all__ = [
    "DIAGNOSTIC_BINS",
    "PROFILE_DISTANCES",
    "PROFILE_REACH",
    "error_diagnostics",
    "error_distance_histograms",
]

DIAGNOSTIC_BINS: tuple[str, ...] = ("1", "2-3", "4-7", "8-15", "16-31", "32+")
"""Labels of the distance bins: [1], [2, 4), [4, 8), [8, 16), [16, 32), [32, inf) pixels."""

_LAST_EDGE = 32  # lower edge of the last bin, "32+"

PROFILE_REACH = _LAST_EDGE
"""Largest distance of the signed profile; the outermost bins hold everything at or beyond it."""

PROFILE_DISTANCES: tuple[int, ...] = (
    *range(-PROFILE_REACH, 0),
    *range(1, PROFILE_REACH + 1),
)
"""Signed distance of each profile bin: ``-32`` (depth >= 32) .. ``-1`` (inner edge), ``+1``
(touching the region) .. ``+32`` (32 or more away, or the class absent from the image)."""


def _bin_index(distance: Tensor) -> Tensor:
    """Bin of a distance 1..32: ``floor(log2(distance))`` capped at 5, as uint8 (table look-up)."""
    last = len(DIAGNOSTIC_BINS) - 1
    table = [0] + [min(d.bit_length() - 1, last) for d in range(1, _LAST_EDGE + 1)]
    lookup = torch.tensor(table, dtype=torch.uint8, device=distance.device)
    return torch.take(lookup, distance.long())


def error_diagnostics(pred: Tensor, target: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """Per-image error histograms and signed distance profiles (module docstring).

    False-positive distance of ``p`` to the region of ``c = pred[p]``: the class-``c`` taxicab
    transform of ``target == c``, read at ``p``. False-negative depth of ``p`` (label ``c``): the
    taxicab distance to the nearest pixel of another label, which is ``1 +`` the distance to the
    pixels having a 4-neighbour of another label (proof:
    :func:`lossd.ops.distance.region_distance_maps`), one transform for all classes.

    Args:
        pred: Predicted labels in ``0..C`` (uint8 or any integer dtype); ``C`` marks ignore.
        target: Target labels in ``0..C``, same dtype; ``C`` marks ignore (a label of its own
            for the depth, "another label"), and ``pred`` holds ``C`` there too.
        num_classes: Number of classes C.

    Returns:
        ``(histograms, profile)``: int64 tensors ``[B, 2, C, 6]`` (false positives by distance,
        false negatives by depth, in the bins of :data:`DIAGNOSTIC_BINS`) and ``[B, 2, C, 64]``
        (pixels, then errors for the class, by signed distance :data:`PROFILE_DISTANCES`).

    Shape:
        - pred, target: [B, H, W].
    """
    c = num_classes
    batch = target.shape[0]
    outside, depth = region_distance_maps(target, c, _LAST_EDGE)
    pred_class = pred.clamp(max=c - 1).long().unsqueeze(1)  # ignore pixels: unused
    fp_distance = outside.gather(1, pred_class).squeeze(1)
    valid = target != c
    wrong = pred != target  # never at ignore pixels, where both hold C
    image = torch.arange(batch, device=target.device).view(batch, 1, 1)

    num_bins = len(DIAGNOSTIC_BINS)
    size = c * num_bins
    fp_code = (image * 2) * size + pred.long() * num_bins + _bin_index(fp_distance)
    fn_code = (image * 2 + 1) * size + target.long() * num_bins + _bin_index(depth)
    sink = 2 * batch * size
    codes = torch.cat(
        (
            torch.where(wrong, fp_code, sink).reshape(-1),
            torch.where(wrong, fn_code, sink).reshape(-1),
        )
    )
    histograms = torch.bincount(codes, minlength=sink + 1)[:sink].view(batch, 2, c, num_bins)

    reach = PROFILE_REACH
    width = 2 * reach
    per_image = 2 * c * width
    image_base = image * per_image  # [B, 1, 1]
    # Inside the own region: bin reach - depth (depth 1 -> reach - 1, depth >= reach -> 0).
    inside = image_base + wrong.long() * (c * width) + target.long() * width
    inside = inside + (reach - depth.long())
    # Outside every other class region: bin reach - 1 + distance (1 -> reach, cap -> 2 reach - 1).
    classes = torch.arange(c, device=target.device).view(1, c, 1, 1)
    is_error = pred.unsqueeze(1).long() == classes
    other = valid.unsqueeze(1) & (target.unsqueeze(1).long() != classes)
    outside_code = image_base.unsqueeze(1) + is_error.long() * (c * width) + classes * width
    outside_code = outside_code + (reach - 1) + outside.long()
    sink = batch * per_image
    codes = torch.cat(
        (
            torch.where(valid, inside, sink).reshape(-1),
            torch.where(other, outside_code, sink).reshape(-1),
        )
    )
    counts = torch.bincount(codes, minlength=sink + 1)[:sink].view(batch, 2, c, width)
    # counts[:, 0] are the correct pixels, counts[:, 1] the errors: pixels = both.
    profile = torch.stack((counts[:, 0] + counts[:, 1], counts[:, 1]), dim=1)
    return histograms, profile


def error_distance_histograms(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """Histograms of false positives by distance outside and false negatives by depth inside.

    The sum over the images of :func:`error_diagnostics`' histograms.

    Args:
        pred: Predicted labels in ``0..C`` (uint8 or any integer dtype); ``C`` marks ignore.
        target: Target labels in ``0..C``, same dtype; ``C`` marks ignore, and ``pred`` holds
            ``C`` there too.
        num_classes: Number of classes C.

    Returns:
        int64 tensor ``[2, C, 6]``: false-positive counts by distance, false-negative counts by
        depth, in the bins of :data:`DIAGNOSTIC_BINS`.

    Shape:
        - pred, target: [B, H, W].
    """
    return error_diagnostics(pred, target, num_classes)[0].sum(dim=0)
