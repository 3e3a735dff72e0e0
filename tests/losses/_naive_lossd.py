"""Naive reference of Lossd, written literally from docs/lossd.md (Definition, steps 1-5).

Slow on purpose: one class at a time, ``max_iter`` rounds of 4-neighbour erosion for every
distance map, and torch autograd through the straight-through mask ``m = h + (p - p.detach())``.
It shares no code with ``lossd.losses`` and serves as the oracle of the tests and the benchmark.
The ``ignore_index`` switch follows docs/lossd.md, "Beyond the reference": ignore pixels count
as "not c" for the distance maps and are left out of the mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def naive_truncated_distance(mask: Tensor, max_iter: int) -> Tensor:
    """D(M) of step 2 by ``max_iter`` rounds of 4-neighbour propagation (erosion).

    After r erosions by the 4-neighbour cross, the pixels left are those at least r + 1 steps
    from the outside of the mask; adding up the survivors of rounds 0..max_iter-1 counts
    min(distance, max_iter). Beyond the border counts as inside (padding with 1).
    """
    current = mask.float()
    distance = torch.zeros_like(current)
    for _ in range(max_iter):
        distance = distance + current
        padded = F.pad(current, (1, 1, 1, 1), value=1.0)
        current = (
            current
            * padded[..., :-2, 1:-1]
            * padded[..., 2:, 1:-1]
            * padded[..., 1:-1, :-2]
            * padded[..., 1:-1, 2:]
        )
    return distance


def naive_lossd(
    logits: Tensor,
    target: Tensor,
    classes: Sequence[int] | None = None,
    class_weights: Sequence[float] | None = None,
    max_iter: int = 50,
    reduction: str = "mean",
    ignore_index: int | None = None,
) -> Tensor:
    """Lossd by the book; differentiable w.r.t. ``logits`` through torch autograd."""
    num_classes = logits.shape[1]
    class_list = list(range(num_classes)) if classes is None else list(classes)
    weights = [1.0] * len(class_list) if class_weights is None else list(class_weights)

    # Step 1: straight-through one-hot (softmax in float32, as the loss computes internally).
    prob = torch.softmax(logits.float(), dim=1)
    pred = prob.argmax(dim=1)
    hard = F.one_hot(pred, num_classes).permute(0, 3, 1, 2).float()
    mask = hard + (prob - prob.detach())

    if ignore_index is None:
        valid = torch.ones_like(target, dtype=torch.bool)
    else:
        valid = target != ignore_index

    total = None
    taken = 0
    for c, weight in zip(class_list, weights, strict=True):
        # Step 5: a class is taken if it occurs in the prediction or the target.
        if not (bool((pred[valid] == c).any()) or bool((target[valid] == c).any())):
            continue
        taken += 1
        # Step 3: signed map.
        region = (target == c) & valid
        pos = naive_truncated_distance(region, max_iter)
        full = pos - naive_truncated_distance(~region, max_iter)
        # Step 4: per-class term, normalised, mean over the (valid) pixels.
        diff = torch.abs(mask[:, c] * full - pos)
        normalised = torch.log1p(diff + 1e-6) / math.log1p(max_iter)
        term = weight * normalised[valid].mean()
        total = term if total is None else total + term
    if total is None:
        return 0 * logits.sum()
    if reduction == "mean":
        return total / taken
    return total
