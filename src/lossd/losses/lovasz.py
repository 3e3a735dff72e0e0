"""Lovász-Softmax loss, a convex surrogate of the per-class Jaccard (IoU) loss.

Berman, Rannen Triki & Blaschko, "The Lovász-Softmax loss: A tractable surrogate for the
optimization of the intersection-over-union measure in neural networks", CVPR 2018
(arXiv 1705.08790); official code github bermanmaxim/LovaszSoftmax (MIT licence).
"""

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from lossd.errors import InvalidOptionError
from lossd.losses._functional import (
    check_classes,
    check_ignore_index,
    float32_math,
    one_hot,
    prepare_inputs,
    zero_with_graph,
)

__all__ = ["LovaszSoftmaxLoss", "lovasz_softmax_loss"]


def _lovasz_gradient(truth_sorted: Tensor) -> Tensor:
    """Gradient of the Lovász extension of the Jaccard loss at sorted errors (Alg. 1, l. 5-6).

    With the pixels sorted by decreasing error and ``g`` the sorted ground truth,
    ``J_i = 1 - (G - cumsum(g)_i) / (G + cumsum(1 - g)_i)`` is the Jaccard loss of the set of
    the first i pixels (Berman et al. 2018, Eq. (8)-(9)); the gradient is ``J_i - J_{i-1}``.
    """
    total = truth_sorted.sum(dim=-1, keepdim=True)
    intersection = total - truth_sorted.cumsum(dim=-1)
    union = total + (1.0 - truth_sorted).cumsum(dim=-1)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], dim=-1)


def _checked_classes(
    classes: Literal["present", "all"] | Sequence[int],
) -> Literal["present", "all"] | tuple[int, ...]:
    if isinstance(classes, str):
        if classes not in ("present", "all"):
            raise InvalidOptionError(
                f"classes={classes!r} is not valid; expected 'present', 'all' "
                "or a list of class indices"
            )
        return classes
    selected = check_classes(classes)
    assert selected is not None  # check_classes returns None only for None
    return selected


def _check_per_image(per_image: bool) -> None:
    if not isinstance(per_image, bool):
        raise InvalidOptionError(f"per_image={per_image!r} is not valid; expected a bool")


@float32_math
def lovasz_softmax_loss(
    logits: Tensor,
    target: Tensor,
    *,
    classes: Literal["present", "all"] | Sequence[int] = "present",
    ignore_index: int | None = 255,
    per_image: bool = False,
) -> Tensor:
    """Lovász-Softmax loss, the function of :class:`LovaszSoftmaxLoss`.

    Args:
        logits: Raw scores [B, C, H, W] (binary masks: [B, 1, H, W]).
        target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.
        classes: ``"present"``, ``"all"``, or a list of class indices.
        ignore_index: Label value to ignore, or None.
        per_image: Compute the loss per image and average.

    Returns:
        The scalar loss (a graph-connected zero when no pixel is valid).

    Raises:
        DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong.
        InvalidOptionError: For an option out of range, or ``classes`` naming a channel that
            ``logits`` lacks.
    """
    mode = _checked_classes(classes)
    _check_per_image(per_image)
    fixed = None if isinstance(mode, str) else mode
    inputs = prepare_inputs(logits, target, check_ignore_index(ignore_index), fixed, "softmax")
    assert inputs.probs is not None
    selected = inputs.selected
    batch = inputs.logits.shape[0]
    groups = batch if per_image else 1

    probs = inputs.probs[:, selected]
    truth = one_hot(inputs.target, inputs.num_classes, ignore_index)[:, selected]
    # [G, K, N]: one row of pixels per (group, class).
    probs = probs.transpose(0, 1).reshape(len(selected), groups, -1).transpose(0, 1)
    truth = truth.transpose(0, 1).reshape(len(selected), groups, -1).transpose(0, 1)
    valid = inputs.valid.reshape(groups, 1, -1)

    truth = truth.to(probs.dtype)
    errors = torch.where(valid, (truth - probs).abs(), -1.0)  # ignored pixels sort last
    errors_sorted, order = torch.sort(errors, dim=-1, descending=True)
    truth_sorted = torch.gather(truth, -1, order)
    per_class = (errors_sorted.clamp_min(0.0) * _lovasz_gradient(truth_sorted)).sum(-1)

    group_has_pixels = valid.flatten(1).any(dim=1)  # [G]
    if mode == "present":
        counted = truth.sum(dim=-1) > 0  # [G, K]
    else:
        counted = group_has_pixels[:, None].expand_as(per_class)
    num_counted = counted.sum(dim=1)
    per_group = (per_class * counted).sum(dim=1) / num_counted.clamp_min(1)
    num_groups = group_has_pixels.sum()  # 0 or 1 without per_image
    loss = per_group.sum() / num_groups.clamp_min(1)
    return torch.where(num_groups > 0, loss, zero_with_graph(inputs.logits))


class LovaszSoftmaxLoss(nn.Module):
    """Lovász-Softmax loss over the pixels of the batch (or of each image).

    For each class c the pixel errors ``m_i = |y_i,c - p_i,c|`` (``p = softmax(logits)``) are
    sorted in decreasing order and the class loss is the Lovász extension of the Jaccard loss,
    ``Σ_i m_(i) · g_i(c)`` (Berman et al. 2018, Alg. 1, Eq. (9)). The loss is the mean over
    the selected classes; ``per_image=True`` computes it per image and averages the images.
    All classes are sorted at once (no loop over classes or pixels).

    Ignore pixels are left out of every sort and sum. With ``per_image=True`` an image without
    any valid pixel is left out of the mean over images (the official code counts it as 0).
    With no valid pixel at all the loss is a zero that keeps the graph.

    Args:
        classes: ``"present"`` (classes present in the valid target; official default),
            ``"all"``, or a list of class indices.
        ignore_index: Label value to ignore (255 in prepared masks), or None.
        per_image: Compute the loss per image and average (official default False).

    Shape:
        - logits: [B, C, H, W] (any float dtype; float16 and bfloat16 are computed in float32).
        - target: [B, H, W] integer class indices.
        - output: scalar, float32 (float64 for float64 logits).

    Reference:
        Berman et al., CVPR 2018, Alg. 1 and Eq. (9); official ``lovasz_softmax(probas,
        labels, classes='present', per_image=False, ignore=None)``.
    """

    def __init__(
        self,
        classes: Literal["present", "all"] | Sequence[int] = "present",
        ignore_index: int | None = 255,
        per_image: bool = False,
    ) -> None:
        super().__init__()
        self.classes = _checked_classes(classes)
        _check_per_image(per_image)
        self.ignore_index = check_ignore_index(ignore_index)
        self.per_image = per_image

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Return the Lovász-Softmax loss of ``logits`` against ``target``.

        Args:
            logits: Raw scores [B, C, H, W].
            target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.

        Returns:
            The scalar loss (a graph-connected zero when no pixel is valid).

        Raises:
            DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong.
            InvalidOptionError: If ``classes`` names a channel that ``logits`` lacks.
        """
        return lovasz_softmax_loss(
            logits,
            target,
            classes=self.classes,
            ignore_index=self.ignore_index,
            per_image=self.per_image,
        )

    def extra_repr(self) -> str:
        """Return the options shown by ``repr``."""
        return (
            f"classes={self.classes!r}, ignore_index={self.ignore_index}, "
            f"per_image={self.per_image}"
        )
