"""Multiclass soft Dice loss, the second region term of the GeoSeg / UNetFormer recipe.

Soft Dice of Milletari, Navab & Ahmadi, "V-Net", 3DV 2016 (arXiv 1606.04797), Eq. (1), in the
multiclass form of GeoSeg's ``DiceLoss`` (github WangLibo1995/GeoSeg, ``geoseg/losses/dice.py``,
smooth 0.05 in ``UnetFormerLoss``), which follows segmentation_models_pytorch
(``losses/dice.py``, ``_functional.soft_dice_score``): per-class scores pooled over batch and
pixels, classes absent from the target score 0 and still count in the mean (docs/reference.md,
last paragraph).
"""

from collections.abc import Sequence

from torch import Tensor, nn

from lossd.losses._functional import (
    check_classes,
    check_ignore_index,
    check_number,
    float32_math,
    one_hot,
    prepare_inputs,
)

__all__ = ["DiceLoss", "dice_loss"]


@float32_math
def dice_loss(
    logits: Tensor,
    target: Tensor,
    *,
    smooth: float = 0.05,
    ignore_index: int | None = 255,
    classes: Sequence[int] | None = None,
    eps: float = 1e-7,
) -> Tensor:
    """Mean soft Dice loss over the selected classes, the function of :class:`DiceLoss`.

    Args:
        logits: Raw scores [B, C, H, W] (binary masks: [B, 1, H, W]).
        target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.
        smooth: Additive smoothing in numerator and denominator.
        ignore_index: Label value to ignore, or None.
        classes: Class indices averaged in the loss, or None for all classes.
        eps: Lower clamp of the denominator.

    Returns:
        The scalar loss.

    Raises:
        DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong.
        InvalidOptionError: For an option out of range, or ``classes`` naming a channel that
            ``logits`` lacks.
    """
    check_number("smooth", smooth, minimum=0.0)
    check_number("eps", eps, minimum=0.0, strict=True)
    inputs = prepare_inputs(
        logits, target, check_ignore_index(ignore_index), check_classes(classes), "masked"
    )
    assert inputs.probs is not None
    probs = inputs.probs
    truth = one_hot(inputs.target, inputs.num_classes, ignore_index).to(probs.dtype)
    dims = (0, 2, 3)
    intersection = (probs * truth).sum(dims)
    cardinality = probs.sum(dims) + truth.sum(dims)
    dice = (2.0 * intersection + smooth) / (cardinality + smooth).clamp_min(eps)
    present = truth.sum(dims) > 0
    per_class = (1.0 - dice) * present
    return per_class[inputs.selected].mean()


class DiceLoss(nn.Module):
    """Multiclass soft Dice loss on softmax probabilities.

    With ``p = softmax(logits)`` and the one-hot target ``y``, both zeroed on ignore pixels,
    for each class c, summing over the batch and all pixels:

    ``dice_c = (2 Σ p_c y_c + smooth) / max(Σ (p_c + y_c) + smooth, eps)``,
    ``loss_c = (1 - dice_c) · [Σ y_c > 0]``, and the loss is the mean of ``loss_c`` over the
    selected classes. A class absent from the (valid) target thus scores 0 but still counts in
    the mean, as in GeoSeg / segmentation_models_pytorch. With no valid pixel the loss is a
    zero that keeps the graph.

    Args:
        smooth: Additive smoothing in numerator and denominator; 0.05 in GeoSeg's
            UnetFormerLoss (docs/reference.md, "Training recipes").
        ignore_index: Label value to ignore (255 in prepared masks), or None.
        classes: Class indices averaged in the loss, or None for all classes.
        eps: Lower clamp of the denominator (1e-7 as in segmentation_models_pytorch).

    Shape:
        - logits: [B, C, H, W] (any float dtype; float16 and bfloat16 are computed in float32).
        - target: [B, H, W] integer class indices.
        - output: scalar, float32 (float64 for float64 logits).

    Reference:
        Milletari et al., 3DV 2016, Eq. (1); GeoSeg ``DiceLoss(smooth=0.05, ignore_index=255)``
        in ``UnetFormerLoss``; segmentation_models_pytorch ``DiceLoss`` (multiclass mode).
    """

    def __init__(
        self,
        smooth: float = 0.05,
        ignore_index: int | None = 255,
        classes: Sequence[int] | None = None,
        eps: float = 1e-7,
    ) -> None:
        super().__init__()
        check_number("smooth", smooth, minimum=0.0)
        check_number("eps", eps, minimum=0.0, strict=True)
        self.smooth = float(smooth)
        self.eps = float(eps)
        self.ignore_index = check_ignore_index(ignore_index)
        self.classes = check_classes(classes)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Return the mean soft Dice loss over the selected classes.

        Args:
            logits: Raw scores [B, C, H, W].
            target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.

        Returns:
            The scalar loss (a graph-connected zero when no pixel is valid).

        Raises:
            DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong.
            InvalidOptionError: If ``classes`` names a channel that ``logits`` lacks.
        """
        return dice_loss(
            logits,
            target,
            smooth=self.smooth,
            ignore_index=self.ignore_index,
            classes=self.classes,
            eps=self.eps,
        )

    def extra_repr(self) -> str:
        """Return the options shown by ``repr``."""
        return (
            f"smooth={self.smooth}, ignore_index={self.ignore_index}, "
            f"classes={self.classes}, eps={self.eps}"
        )
