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

Distances are the exact taxicab transforms of :mod:`lossd.ops.distance` (shared with Lossd),
capped at the last bin edge (32), which keeps the histogram exact while saving passes and
allowing 8-bit arithmetic.
"""

import torch
from torch import Tensor

from lossd.ops.distance import label_edges, taxicab_distance

__all__ = ["DIAGNOSTIC_BINS", "error_distance_histograms"]

DIAGNOSTIC_BINS: tuple[str, ...] = ("1", "2-3", "4-7", "8-15", "16-31", "32+")
"""Labels of the distance bins: [1], [2, 4), [4, 8), [8, 16), [16, 32), [32, inf) pixels."""

_LAST_EDGE = 32  # lower edge of the last bin, "32+"


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
    fn_depth = taxicab_distance(label_edges(target), cap=_LAST_EDGE - 1) + 1

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
