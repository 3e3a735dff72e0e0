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

from typing import Literal, overload

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


def _bin_of_distance(device: torch.device) -> Tensor:
    """Histogram bin of each distance 1..32: ``floor(log2(d))`` capped at 5 (int64 [32])."""
    last = len(DIAGNOSTIC_BINS) - 1
    table = [min(d.bit_length() - 1, last) for d in range(1, _LAST_EDGE + 1)]
    return torch.tensor(table, dtype=torch.int64, device=device)


def _distance_histograms(outside: Tensor, valid: Tensor, levels: int) -> Tensor:
    """``out[b, c, v]`` = valid pixels of image ``b`` at distance ``v`` from the region of ``c``.

    One ``bincount`` of the 8-bit distances per image and class (selecting the valid pixels of
    every class map first costs several times more), minus the few ignore pixels.
    """
    batch, num_classes = outside.shape[:2]
    out = torch.empty(batch, num_classes, levels, dtype=torch.int64, device=outside.device)
    for b in range(batch):
        ignored = ~valid[b]
        excluded = outside[b][:, ignored] if bool(ignored.any()) else None
        for c in range(num_classes):
            out[b, c] = torch.bincount(outside[b, c].reshape(-1), minlength=levels)
            if excluded is not None:
                out[b, c] -= torch.bincount(excluded[c], minlength=levels)
    return out


def _counts_by_value(
    select: Tensor, label: Tensor, value: Tensor, num_classes: int, levels: int
) -> Tensor:
    """``out[b, c, v]`` = pixels of image ``b`` where ``select``, ``label == c``, ``value == v``."""
    batch = label.shape[0]
    image = torch.arange(batch, device=label.device).view(batch, 1, 1)
    size = batch * num_classes * levels
    dtype = torch.int32 if size < 2**31 else torch.int64
    code = (image * num_classes * levels).to(dtype) + label.to(dtype) * levels + value.to(dtype)
    code = torch.where(select, code, size)  # unselected pixels: one extra bin, dropped
    counts = torch.bincount(code.reshape(-1), minlength=size + 1)[:size]
    return counts.view(batch, num_classes, levels)


@overload
def error_diagnostics(
    pred: Tensor, target: Tensor, num_classes: int, profile: Literal[True] = ...
) -> tuple[Tensor, Tensor]: ...
@overload
def error_diagnostics(
    pred: Tensor, target: Tensor, num_classes: int, profile: bool
) -> tuple[Tensor, Tensor | None]: ...
def error_diagnostics(
    pred: Tensor, target: Tensor, num_classes: int, profile: bool = True
) -> tuple[Tensor, Tensor | None]:
    """Per-image error histograms and signed distance profiles (module docstring).

    From one capped transform (:func:`lossd.ops.distance.region_distance_maps`): the distance of
    every pixel to the region of every class, and the depth of every pixel in its own region
    (the taxicab distance to the nearest pixel of another label). Then, per image and class, by
    exact distance 1..32: valid pixels by depth in their own region and their misses (false
    negatives), wrong pixels by their distance to the region of the class they were given (false
    positives), and valid pixels by their distance to each other class's region; the coarse
    histograms are sums of the exact counts. Only the last count touches every class at every
    pixel, as one ``bincount`` over 8- to 32-bit codes.

    Args:
        pred: Predicted labels in ``0..C`` (uint8 or any integer dtype); ``C`` marks ignore.
        target: Target labels in ``0..C``, same dtype; ``C`` marks ignore (a label of its own
            for the depth, "another label"), and ``pred`` holds ``C`` there too.
        num_classes: Number of classes C.
        profile: Also count the signed distance profile (the pixel counts by distance to every
            class region are its only per-class-map work); False returns None for it.

    Returns:
        ``(histograms, profile)``: int64 tensors ``[B, 2, C, 6]`` (false positives by distance,
        false negatives by depth, in the bins of :data:`DIAGNOSTIC_BINS`) and ``[B, 2, C, 64]``
        (pixels, then errors for the class, by signed distance :data:`PROFILE_DISTANCES`).

    Shape:
        - pred, target: [B, H, W].
    """
    c, reach = num_classes, PROFILE_REACH
    batch = target.shape[0]
    levels = reach + 1  # distances 0..32 (0: the pixel is in the region)
    outside, depth = region_distance_maps(target, c, reach)
    valid = target != c
    wrong = pred != target  # never at ignore pixels, where both hold C
    given = pred.clamp(max=c - 1).long()  # ignore pixels: unused
    own = target.clamp(max=c - 1).long()
    fp_distance = outside.gather(1, given.unsqueeze(1)).squeeze(1)
    inside_errors = _counts_by_value(wrong, own, depth, c, levels)  # false negatives by depth
    outside_errors = _counts_by_value(wrong, given, fp_distance, c, levels)  # false positives

    bins = _bin_of_distance(target.device)
    histograms = torch.zeros(
        batch, 2, c, len(DIAGNOSTIC_BINS), dtype=torch.int64, device=bins.device
    )
    histograms[:, 0].index_add_(2, bins, outside_errors[..., 1:])
    histograms[:, 1].index_add_(2, bins, inside_errors[..., 1:])
    if not profile:
        return histograms, None
    inside_pixels = _counts_by_value(valid, own, depth, c, levels)
    outside_pixels = _distance_histograms(outside, valid, levels)
    # signed columns: depth 32..1 inside (-32..-1), then distance 1..32 outside (+1..+32)
    pixels = torch.cat((inside_pixels[..., 1:].flip(-1), outside_pixels[..., 1:]), dim=-1)
    errors = torch.cat((inside_errors[..., 1:].flip(-1), outside_errors[..., 1:]), dim=-1)
    return histograms, torch.stack((pixels, errors), dim=1)


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
    return error_diagnostics(pred, target, num_classes, profile=False)[0].sum(dim=0)
