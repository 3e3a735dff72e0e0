"""Label-smoothed cross-entropy, the region term of the GeoSeg / UNetFormer recipe.

``SoftCrossEntropyLoss`` of GeoSeg (github WangLibo1995/GeoSeg, ``geoseg/losses/soft_ce.py``,
used by ``UnetFormerLoss`` with smoothing 0.05; docs/reference.md, "Training recipes"), with the
label smoothing of Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
CVPR 2016, Sec. 7 (arXiv 1512.00567).
"""

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from lossd.losses._functional import (
    check_choice,
    check_ignore_index,
    check_number,
    float32_math,
    prepare_inputs,
)

__all__ = ["SoftCrossEntropyLoss", "soft_cross_entropy_loss"]

_NO_IGNORE = -100
"""Label value passed to torch when nothing is ignored (no class index is negative)."""


def _check_options(smooth_factor: float, ignore_index: int | None, reduction: str) -> None:
    check_number("smooth_factor", smooth_factor, minimum=0.0, maximum=1.0)
    check_choice("reduction", reduction, ("mean", "sum"))
    check_ignore_index(ignore_index)


@float32_math
def soft_cross_entropy_loss(
    logits: Tensor,
    target: Tensor,
    *,
    smooth_factor: float = 0.05,
    ignore_index: int | None = 255,
    reduction: Literal["mean", "sum"] = "mean",
) -> Tensor:
    """Label-smoothed cross-entropy, the function of :class:`SoftCrossEntropyLoss`.

    Args:
        logits: Raw scores [B, C, H, W] (binary masks: [B, 1, H, W], see
            docs/api.md, "Binary masks").
        target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.
        smooth_factor: Label smoothing eps in [0, 1].
        ignore_index: Label value to ignore, or None.
        reduction: ``"mean"`` over valid pixels or ``"sum"``.

    Returns:
        The scalar loss (a graph-connected zero when no pixel is valid).

    Raises:
        DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong.
        InvalidOptionError: For an option out of range.
    """
    _check_options(smooth_factor, ignore_index, reduction)
    inputs = prepare_inputs(logits, target, ignore_index)
    ignore = _NO_IGNORE if ignore_index is None else ignore_index
    total = F.cross_entropy(
        inputs.logits,
        inputs.target.long(),
        ignore_index=ignore,
        reduction="sum",
        label_smoothing=float(smooth_factor),
    )
    if reduction == "sum":
        return total
    num_valid = (inputs.target != ignore).sum().clamp_min(1)
    return total / num_valid


class SoftCrossEntropyLoss(nn.Module):
    """Cross-entropy with label smoothing, averaged over the valid pixels.

    Per valid pixel with label y and log-probabilities ``log p = log_softmax(logits)``:
    ``(1 - eps) * (-log p_y) + eps * mean_c(-log p_c)`` (Szegedy et al. 2016, Sec. 7: the
    target is mixed with the uniform distribution). This is exactly
    ``torch.nn.functional.cross_entropy(..., label_smoothing=eps)``, which computes it.

    Ignore pixels contribute nothing, and ``reduction="mean"`` divides by the number of valid
    pixels. GeoSeg instead zeroes the ignored terms and averages over all B·H·W pixels, so
    GeoSeg's value = this value × (fraction of valid pixels); the two agree when no pixel is
    ignored. With no valid pixel the loss is a zero that keeps the graph.

    Args:
        smooth_factor: Label smoothing eps in [0, 1]; 0.05 in GeoSeg's UnetFormerLoss
            (docs/reference.md, "Training recipes").
        ignore_index: Label value to ignore (255 in prepared masks), or None.
        reduction: ``"mean"`` over valid pixels or ``"sum"``.

    Shape:
        - logits: [B, C, H, W] (any float dtype; float16 and bfloat16 are computed in float32).
        - target: [B, H, W] integer class indices.
        - output: scalar, float32 (float64 for float64 logits).

    Reference:
        Szegedy et al., CVPR 2016, Sec. 7 (label smoothing); GeoSeg ``SoftCrossEntropyLoss``
        (smooth_factor=0.05, ignore_index=255) in ``UnetFormerLoss``.
    """

    def __init__(
        self,
        smooth_factor: float = 0.05,
        ignore_index: int | None = 255,
        reduction: Literal["mean", "sum"] = "mean",
    ) -> None:
        super().__init__()
        _check_options(smooth_factor, ignore_index, reduction)
        self.smooth_factor = float(smooth_factor)
        self.ignore_index = ignore_index
        self.reduction = reduction

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Return the label-smoothed cross-entropy of ``logits`` against ``target``.

        Args:
            logits: Raw scores [B, C, H, W].
            target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.

        Returns:
            The scalar loss (a graph-connected zero when no pixel is valid).

        Raises:
            DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong.
        """
        return soft_cross_entropy_loss(
            logits,
            target,
            smooth_factor=self.smooth_factor,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        """Return the options shown by ``repr``."""
        return (
            f"smooth_factor={self.smooth_factor}, ignore_index={self.ignore_index}, "
            f"reduction={self.reduction!r}"
        )
