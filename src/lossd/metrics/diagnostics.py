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

Distances are exact taxicab distance transforms computed separably (a row pass, then a column
pass; Rosenfeld & Pfaltz, "Distance functions on digital pictures", Pattern Recognition 1(1),
1968, for the L1 metric), each 1-D pass by doubling shifts ``d[i] = min(d[i], d[i-k] + k,
d[i+k] + k)`` for ``k = 1, 2, 4, ...``: after shifts up to ``K`` every offset below ``2K`` is a
sum of distinct shifts, so the pass is exact up to that reach. Capping the reach at the last bin
edge (32) keeps the histogram exact while saving passes and allowing 8-bit arithmetic.
"""

import torch
from torch import Tensor

__all__ = ["DIAGNOSTIC_BINS", "error_distance_histograms", "taxicab_distance"]

DIAGNOSTIC_BINS: tuple[str, ...] = ("1", "2-3", "4-7", "8-15", "16-31", "32+")
"""Labels of the distance bins: [1], [2, 4), [4, 8), [8, 16), [16, 32), [32, inf) pixels."""

_LAST_EDGE = 32  # lower edge of the last bin, "32+"


def _dtype_for(cap: int) -> torch.dtype:
    """Smallest integer dtype holding ``2 * cap`` (values <= cap plus a shift < cap)."""
    if 2 * cap <= torch.iinfo(torch.uint8).max:
        return torch.uint8
    if 2 * cap <= torch.iinfo(torch.int16).max:
        return torch.int16
    return torch.int32


def _propagate(dist: Tensor, dim: int, cap: int) -> None:
    """In place, 1-D L1 distance propagation along ``dim`` by doubling shifts, up to ``cap - 1``."""
    size = dist.shape[dim]
    reach = min(cap - 1, size - 1)
    covered, shift = 0, 1
    while covered < reach:
        ahead = dist.narrow(dim, shift, size - shift)
        behind = dist.narrow(dim, 0, size - shift)
        torch.minimum(ahead, behind + shift, out=ahead)
        torch.minimum(behind, ahead + shift, out=behind)
        covered += shift
        shift *= 2


def taxicab_distance(features: Tensor, cap: int | None = None) -> Tensor:
    """Exact L1 distance from every pixel to the nearest feature pixel of its own image.

    Separable doubling algorithm (module docstring). With a cap the result is
    ``min(distance, cap)``, still exact below the cap: a row result at or above the cap can only
    feed column candidates at or above the cap.

    Args:
        features: Boolean feature masks (True = distance 0).
        cap: Largest value returned; an image without features gets ``cap`` everywhere. Default
            ``H + W - 1``, one more than any distance inside an H x W image.

    Returns:
        Distances in the smallest of uint8 / int16 / int32 that holds ``2 * cap``.

    Raises:
        ValueError: If ``cap`` is not a positive int.

    Shape:
        - features: [..., H, W]; output: the same.
    """
    height, width = features.shape[-2], features.shape[-1]
    if cap is None:
        cap = max(1, height + width - 1)
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise ValueError(f"cap must be a positive int, got {cap!r}")
    dist = features.logical_not().to(_dtype_for(cap))
    dist *= cap
    _propagate(dist, -1, cap)
    _propagate(dist, -2, cap)
    return dist


def _region_edges(target: Tensor) -> Tensor:
    """Pixels with a 4-neighbour (inside the image) of another label."""
    edges = torch.zeros(target.shape, dtype=torch.bool, device=target.device)
    across = target[..., :, 1:] != target[..., :, :-1]
    edges[..., :, 1:] |= across
    edges[..., :, :-1] |= across
    down = target[..., 1:, :] != target[..., :-1, :]
    edges[..., 1:, :] |= down
    edges[..., :-1, :] |= down
    return edges


def _bin_index(distance: Tensor) -> Tensor:
    """Bin of a distance 1..32: ``floor(log2(distance))`` capped at 5, as uint8 (table look-up)."""
    last = len(DIAGNOSTIC_BINS) - 1
    table = [0] + [min(d.bit_length() - 1, last) for d in range(1, _LAST_EDGE + 1)]
    lookup = torch.tensor(table, dtype=torch.uint8, device=distance.device)
    return torch.take(lookup, distance.long())


def error_distance_histograms(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """Histograms of false positives by distance outside and false negatives by depth inside.

    False-positive distance of ``p`` to the region of ``c = pred[p]``: the class-``c`` taxicab
    transform of ``target == c``, read at ``p``. False-negative depth of ``p`` (label ``c``): the
    nearest pixel ``q`` with another label is one step beyond an edge pixel of the region (a
    pixel with a 4-neighbour of another label); the nearest edge pixel of any label is already
    of label ``c``, since a monotone path from ``p`` to an edge pixel of another label would cross
    an edge of ``c`` first. So depth = 1 + the taxicab distance to the edge pixels, one transform
    for all classes.

    Args:
        pred: Predicted labels in ``0..C`` (uint8 or any integer dtype); ``C`` marks ignore.
        target: Target labels in ``0..C``, same dtype; ``C`` marks ignore (a label of its own
            for the depth, "another label"), and ``pred`` holds ``C`` there too.
        num_classes: Number of classes C.

    Returns:
        int64 tensor ``[2, C, 6]``: false-positive counts by distance, false-negative counts by
        depth, in the bins of :data:`DIAGNOSTIC_BINS`.

    Shape:
        - pred, target: [B, H, W].
    """
    classes = torch.arange(num_classes, device=target.device, dtype=target.dtype)
    to_region = taxicab_distance(target.unsqueeze(1) == classes.view(1, -1, 1, 1), cap=_LAST_EDGE)
    pred_class = pred.clamp(max=num_classes - 1).long().unsqueeze(1)  # ignore pixels: unused
    fp_distance = to_region.gather(1, pred_class).squeeze(1)
    fn_depth = taxicab_distance(_region_edges(target), cap=_LAST_EDGE - 1) + 1

    num_bins = len(DIAGNOSTIC_BINS)
    size = num_classes * num_bins
    dtype = torch.int16 if 2 * size + 2 <= torch.iinfo(torch.int16).max else torch.int32
    wrong = pred != target  # never at ignore pixels, where both hold C
    fp_code = pred.to(dtype) * num_bins + _bin_index(fp_distance)
    fn_code = target.to(dtype) * num_bins + _bin_index(fn_depth) + (size + 1)
    index = torch.cat(
        (
            torch.where(wrong, fp_code, size).reshape(-1),
            torch.where(wrong, fn_code, 2 * size + 1).reshape(-1),
        )
    )
    counts = torch.bincount(index, minlength=2 * (size + 1))
    return counts.reshape(2, size + 1)[:, :size].reshape(2, num_classes, num_bins)
