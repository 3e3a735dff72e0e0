"""Boundary F1 loss of Bokhovkin & Burnaev for remote-sensing segmentation.

Bokhovkin & Burnaev, "Boundary Loss for Remote Sensing Imagery Semantic Segmentation",
ISNN 2019, LNCS 11555:388-401 (arXiv 1905.07852). Reference implementation read for the
definition: github yiskw713/boundary_loss_for_remote_sensing (``boundary_loss.py``), the code
that later copies cite (docs/reference.md, "Competing losses").
"""

import torch.nn.functional as F
from torch import Tensor, nn

from lossd.losses._functional import (
    check_ignore_index,
    check_number,
    float32_math,
    one_hot,
    prepare_inputs,
    soft_boundary,
)

__all__ = ["BoundaryF1Loss", "boundary_f1_loss"]


def _check_options(theta0: int, theta: int, eps: float) -> None:
    check_number("theta0", theta0, minimum=1, integer=True, odd=True)
    check_number("theta", theta, minimum=1, integer=True, odd=True)
    check_number("eps", eps, minimum=0.0, strict=True)


@float32_math
def boundary_f1_loss(
    logits: Tensor,
    target: Tensor,
    *,
    theta0: int = 3,
    theta: int = 5,
    ignore_index: int | None = 255,
    eps: float = 1e-7,
) -> Tensor:
    """Mean ``1 - BF1`` over the (image, class) pairs with a target boundary.

    The function of :class:`BoundaryF1Loss` (see there for the definition).

    Args:
        logits: Raw scores [B, C, H, W] (binary masks: [B, 1, H, W]).
        target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.
        theta0: Odd window size of the boundary map.
        theta: Odd window size of the boundary extension.
        ignore_index: Label value to ignore, or None.
        eps: Added to the denominators of P, R and BF1.

    Returns:
        The scalar loss (a graph-connected zero when no pixel is valid).

    Raises:
        DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong.
        InvalidOptionError: For an option out of range.
    """
    _check_options(theta0, theta, eps)
    inputs = prepare_inputs(logits, target, check_ignore_index(ignore_index), probs="masked")
    assert inputs.probs is not None
    probs = inputs.probs
    truth = one_hot(inputs.target, inputs.num_classes, ignore_index).to(probs.dtype)

    truth_boundary = soft_boundary(truth, theta0)
    pred_boundary = soft_boundary(probs, theta0)
    padding = (theta - 1) // 2
    truth_extended = F.max_pool2d(truth_boundary, theta, stride=1, padding=padding)
    pred_extended = F.max_pool2d(pred_boundary, theta, stride=1, padding=padding)

    dims = (2, 3)
    truth_total = truth_boundary.sum(dims)
    precision = (pred_boundary * truth_extended).sum(dims) / (pred_boundary.sum(dims) + eps)
    recall = (pred_extended * truth_boundary).sum(dims) / (truth_total + eps)
    f1 = 2.0 * precision * recall / (precision + recall + eps)

    counted = truth_total > 0
    return ((1.0 - f1) * counted).sum() / counted.sum().clamp_min(1)


class BoundaryF1Loss(nn.Module):
    """One minus the soft boundary F1 score, averaged over classes and images.

    With ``p = softmax(logits)`` and the one-hot target ``y`` (arXiv 1905.07852, Sec. 3):

    - boundaries ``b = maxpool_θ0(1 - y) - (1 - y)`` for the target and for ``p``;
    - extended boundaries ``b_ext = maxpool_θ(b)``;
    - precision ``P = Σ b_pred · b_gt_ext / Σ b_pred``, recall
      ``R = Σ b_pred_ext · b_gt / Σ b_gt`` (sums over the pixels of one image);
    - ``BF1 = 2 P R / (P + R)`` and the loss ``1 - BF1``.

    The loss is the mean of ``1 - BF1`` over the (image, class) pairs whose target has a
    boundary. The reference code averages over all pairs; a pair without target boundary has
    ``R = 0``, hence ``BF1 = 0`` whatever the prediction, a constant 1 with zero gradient, so
    the reference value = (share of pairs with a boundary) × this value + (share without).
    Leaving those pairs out makes a perfect prediction score 0 without changing the gradient
    direction.

    Ignore pixels act as an extra "void" region in both maps: they are "not c" for every class
    in the target and their predicted probabilities are replaced by 0, so a class region next
    to an ignore area has a boundary there in both maps, the ignore pixels are never boundary
    pixels, and their logits get no gradient. With no target boundary at all the loss is a
    zero that keeps the graph.

    Args:
        theta0: Odd window size of the boundary map (published default 3).
        theta: Odd window size of the boundary extension, the tolerance (published default 5).
        ignore_index: Label value to ignore (255 in prepared masks), or None.
        eps: Added to the denominators of P, R and BF1 (1e-7 in the reference code).

    Shape:
        - logits: [B, C, H, W] (any float dtype; float16 and bfloat16 are computed in float32).
        - target: [B, H, W] integer class indices.
        - output: scalar, float32 (float64 for float64 logits).

    Reference:
        Bokhovkin & Burnaev, ISNN 2019 (arXiv 1905.07852), Sec. 3, Eq. of BF1 with θ0 = 3,
        θ = 5 (docs/reference.md, "Competing losses").
    """

    def __init__(
        self,
        theta0: int = 3,
        theta: int = 5,
        ignore_index: int | None = 255,
        eps: float = 1e-7,
    ) -> None:
        super().__init__()
        _check_options(theta0, theta, eps)
        self.theta0 = theta0
        self.theta = theta
        self.eps = float(eps)
        self.ignore_index = check_ignore_index(ignore_index)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Return the mean ``1 - BF1`` over the (image, class) pairs with a target boundary.

        Args:
            logits: Raw scores [B, C, H, W].
            target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.

        Returns:
            The scalar loss (a graph-connected zero when no pixel is valid).

        Raises:
            DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong.
        """
        return boundary_f1_loss(
            logits,
            target,
            theta0=self.theta0,
            theta=self.theta,
            ignore_index=self.ignore_index,
            eps=self.eps,
        )

    def extra_repr(self) -> str:
        """Return the options shown by ``repr``."""
        return (
            f"theta0={self.theta0}, theta={self.theta}, ignore_index={self.ignore_index}, "
            f"eps={self.eps}"
        )
