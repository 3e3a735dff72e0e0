"""Boundary Difference over Union (Boundary DoU) loss of Sun et al.

Sun, Luo, Li, "Boundary Difference Over Union Loss For Medical Image Segmentation", MICCAI 2023
(the venue named by the official README; arXiv 2308.00220). The paper text could not be
retrieved here, so the official code is the authority for every detail: github
sunfan-bvb/BoundaryDoULoss at commit 9f1185c5719526f10103f54152a148389d27d5b1,
``TransUNet/utils.py`` lines 270-317 (class ``BoundaryDoULoss``; that commit has no separate
``BoundaryDoULoss.py``) and ``TransUNet/trainer.py`` line 71 (the loss is trained alone, without
cross-entropy or Dice).
"""

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lossd.losses._functional import (
    check_classes,
    check_ignore_index,
    check_number,
    eager,
    float32_math,
    prepare_inputs,
)

__all__ = ["BoundaryDoULoss", "boundary_dou_loss", "cross_boundary"]


def cross_boundary(labels: Tensor) -> Tensor:
    """Pixels with a 4-neighbour of another label or on the image border, [B, H, W] -> bool.

    The reference convolves each class mask with the cross kernel ``[[0,1,0],[1,1,1],[0,1,0]]``
    (zero padding), keeps the result on the mask and zeroes the value 5 (pixel and its four
    neighbours all in the mask): what remains non-zero are the pixels of the class with a
    4-neighbour outside it or outside the image (sunfan-bvb/BoundaryDoULoss
    ``TransUNet/utils.py`` lines 284-294). The classes partition the image, so one map of the
    labels gives that boundary for every class at once (a pixel of class c is on it iff it is
    here).

    Args:
        labels: Integer label maps [B, H, W] (an ignore value is a label of its own).

    Returns:
        Bool tensor [B, H, W].
    """
    edge = torch.zeros_like(labels, dtype=torch.bool)
    edge[:, 0, :] = True
    edge[:, -1, :] = True
    edge[:, :, 0] = True
    edge[:, :, -1] = True
    vertical = labels[:, 1:] != labels[:, :-1]
    edge[:, 1:] |= vertical
    edge[:, :-1] |= vertical
    horizontal = labels[:, :, 1:] != labels[:, :, :-1]
    edge[:, :, 1:] |= horizontal
    edge[:, :, :-1] |= horizontal
    return edge


def _check_options(smooth: float, alpha_max: float) -> None:
    check_number("smooth", smooth, minimum=0.0, strict=True)
    check_number("alpha_max", alpha_max, minimum=-1.0, maximum=1.0, strict=True)


@eager
@torch.no_grad()
def _target_terms(
    target: Tensor,
    valid: Tensor,
    num_classes: int,
    smooth: float,
    alpha_max: float,
    dtype: torch.dtype,
) -> tuple[bool, Tensor, Tensor, Tensor]:
    """Whether every pixel counts, the labels (others: ``C``), areas ``S`` and ``α`` per class."""
    labels = target.long()
    counted = valid & (labels >= 0) & (labels < num_classes)
    everything = bool(counted.all())
    # Labels outside the classes (the ignore value) become num_classes: bin C, dropped.
    binned = labels if everything else labels.masked_fill(~counted, num_classes)
    bins = num_classes + 1
    area = torch.bincount(binned.view(-1), minlength=bins)[:num_classes]
    edge_labels = binned.masked_fill(~cross_boundary(labels), num_classes)
    edge = torch.bincount(edge_labels.view(-1), minlength=bins)[:num_classes]
    area, edge = area.to(dtype), edge.to(dtype)
    alpha = (1.0 - 2.0 * (edge + smooth) / (area + smooth)).clamp(max=alpha_max)
    return everything, binned, area, alpha


@float32_math
def boundary_dou_loss(
    logits: Tensor,
    target: Tensor,
    *,
    classes: Sequence[int] | None = None,
    ignore_index: int | None = 255,
    smooth: float = 1e-5,
    alpha_max: float = 0.8,
) -> Tensor:
    """Mean Boundary DoU loss over the selected classes, the function of :class:`BoundaryDoULoss`.

    Args:
        logits: Raw scores [B, C, H, W] (binary masks: [B, 1, H, W]).
        target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.
        classes: Class indices averaged in the loss, or None for all classes.
        ignore_index: Label value to ignore, or None.
        smooth: The smoothing ``s``.
        alpha_max: Upper truncation of ``α``.

    Returns:
        The scalar loss.

    Raises:
        DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong.
        InvalidOptionError: For an option out of range, or ``classes`` naming a channel that
            ``logits`` lacks.
    """
    _check_options(smooth, alpha_max)
    inputs = prepare_inputs(
        logits, target, check_ignore_index(ignore_index), check_classes(classes), "softmax"
    )
    assert inputs.probs is not None
    probs, num_classes = inputs.probs, inputs.num_classes
    everything, binned, area, alpha = _target_terms(
        inputs.target, inputs.valid, num_classes, smooth, alpha_max, probs.dtype
    )
    gather_labels = binned.clamp(max=num_classes - 1).unsqueeze(1)
    bins = num_classes + 1
    if not everything:
        probs = probs * (binned != num_classes).unsqueeze(1).to(probs.dtype)
    # I_c = Σ p_c over the pixels of class c; Z_c = Σ p_c² over the valid pixels.
    true_probs = probs.gather(1, gather_labels).view(-1)
    intersection = probs.new_zeros(bins).index_add(0, binned.view(-1), true_probs)
    intersection = intersection[:num_classes]
    squares: Tensor = torch.linalg.vector_norm(probs, dim=(0, 2, 3)).square()
    per_class = (squares + area - 2.0 * intersection + smooth) / (
        squares + area - (1.0 + alpha) * intersection + smooth
    )
    return per_class[inputs.selected].mean()


class BoundaryDoULoss(nn.Module):
    """Boundary DoU loss, per class on softmax probabilities, averaged over classes.

    With ``p = softmax(logits)`` and the one-hot target ``g``, for each selected class c, sums
    taken over the batch and all (valid) pixels as in the reference:

    - ``I = Σ p_c g_c``, ``Z = Σ p_c²``, ``Y = Σ g_c²`` (= the area ``S`` of class c);
    - ``C`` = number of pixels of class c with a 4-neighbour that is not of class c (the image
      border counts as "not c"), from the 3×3 cross-kernel convolution of the reference;
    - ``α = min(1 - 2 (C + s) / (S + s), 0.8)``: utils.py lines 297-298 compute
      ``2 (1 - (C + s) / (S + s)) - 1`` and line 303 truncates at 0.8;
    - ``loss_c = (Z + Y - 2 I + s) / (Z + Y - (1 + α) I + s)`` (utils.py line 304), the soft
      form of ``(G ∪ P - G ∩ P) / (G ∪ P - α G ∩ P)`` with ``G ∪ P = Z + Y - I``,

    and the loss is the mean of ``loss_c`` over the selected classes (utils.py lines 314-317,
    all classes including the background channel). A class absent from the batch has
    ``S = C = I = 0``, ``α = -1`` and ``loss_c = 1`` whatever the prediction (a constant
    without gradient), as in the reference. A perfect prediction gives
    ``loss_c = s / ((1 - α) S + s)``, about 0.

    Ignore pixels (``ignore_index``) are "not c" for every class in the target (so a class
    region next to an ignore area has a boundary there) and their probabilities are replaced
    by 0, so they enter none of the sums and their logits get no gradient.

    Args:
        classes: Class indices averaged in the loss, or None for all classes (the reference).
        ignore_index: Label value to ignore (255 in prepared masks), or None.
        smooth: The ``s`` above (1e-5 in the reference, utils.py line 296).
        alpha_max: Upper truncation of ``α`` (0.8 in the reference, utils.py line 303).

    Shape:
        - logits: [B, C, H, W] (any float dtype; float16 and bfloat16 are computed in float32).
        - target: [B, H, W] integer class indices.
        - output: scalar, float32 (float64 for float64 logits).

    Reference:
        Sun et al., MICCAI 2023 (arXiv 2308.00220); sunfan-bvb/BoundaryDoULoss @9f1185c
        ``TransUNet/utils.py`` lines 270-317 (``BoundaryDoULoss(n_classes)``).
    """

    def __init__(
        self,
        classes: Sequence[int] | None = None,
        ignore_index: int | None = 255,
        smooth: float = 1e-5,
        alpha_max: float = 0.8,
    ) -> None:
        super().__init__()
        _check_options(smooth, alpha_max)
        self.classes = check_classes(classes)
        self.ignore_index = check_ignore_index(ignore_index)
        self.smooth = float(smooth)
        self.alpha_max = float(alpha_max)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Return the mean Boundary DoU loss over the selected classes.

        Args:
            logits: Raw scores [B, C, H, W].
            target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.

        Returns:
            The scalar loss.

        Raises:
            DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong.
            InvalidOptionError: If ``classes`` names a channel that ``logits`` lacks.
        """
        return boundary_dou_loss(
            logits,
            target,
            classes=self.classes,
            ignore_index=self.ignore_index,
            smooth=self.smooth,
            alpha_max=self.alpha_max,
        )

    def extra_repr(self) -> str:
        """Return the options shown by ``repr``."""
        return (
            f"classes={self.classes}, ignore_index={self.ignore_index}, smooth={self.smooth}, "
            f"alpha_max={self.alpha_max}"
        )
