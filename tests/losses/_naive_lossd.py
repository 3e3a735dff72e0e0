"""Naive reference of Lossd, written literally from docs/lossd.md (Definition, steps 1-5).

Slow on purpose: one class at a time, ``max_iter`` rounds of 4-neighbour erosion for every
distance map, and torch autograd through the straight-through mask ``m = h + (p - p.detach())``.
It shares no code with ``lossd.losses`` and serves as the oracle of the tests and the benchmark.
The ``ignore_index`` switch follows docs/lossd.md, "Beyond the reference": ignore pixels count
as "not c" for the distance maps and, with ``ignore_mode="exclude"``, are left out of the mean
and of the classes taken. ``ignore_mode="authors"`` is the authors' code, which has no ignore
handling (qwqwqer233/Lossd lossd.py@86ed3c0): the ground-truth mask of class c is
``target == c`` (line 162), so an ignore pixel is background for every class; the mean runs
over every pixel (line 177, ``norm_diff.mean()``); the classes taken are those of
``pred_class.unique()`` and ``target.unique()`` (lines 144-149), so a class predicted only on
ignore pixels is taken too.
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
    ignore_mode: str = "exclude",
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

    if ignore_mode not in ("authors", "exclude"):
        raise ValueError(f"ignore_mode={ignore_mode!r}")
    if ignore_index is None:
        valid = torch.ones_like(target, dtype=torch.bool)
    else:
        valid = target != ignore_index
    # Pixels in the mean and whose prediction selects the classes taken.
    counted = valid if ignore_mode == "exclude" else torch.ones_like(valid)

    total = None
    taken = 0
    for c, weight in zip(class_list, weights, strict=True):
        # Step 5: a class is taken if it occurs in the prediction or the target.
        if not (bool((pred[counted] == c).any()) or bool((target[valid] == c).any())):
            continue
        taken += 1
        # Step 3: signed map.
        region = (target == c) & valid
        pos = naive_truncated_distance(region, max_iter)
        full = pos - naive_truncated_distance(~region, max_iter)
        # Step 4: per-class term, normalised, mean over the counted pixels.
        diff = torch.abs(mask[:, c] * full - pos)
        normalised = torch.log1p(diff + 1e-6) / math.log1p(max_iter)
        term = weight * normalised[counted].mean()
        total = term if total is None else total + term
    if total is None:
        return 0 * logits.sum()
    if reduction == "mean":
        return total / taken
    return total
