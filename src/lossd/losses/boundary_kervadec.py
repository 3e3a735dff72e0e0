"""Boundary (surface) loss of Kervadec et al. with signed Euclidean distance maps.

Kervadec, Bouchtiba, Desrosiers, Granger, Dolz & Ben Ayed, "Boundary loss for highly
unbalanced segmentation", MIDL 2019 (PMLR 102:285-296, arXiv 1812.07032), extended in Medical
Image Analysis 67:101851 (2021). Official code github LIVIAETS/boundary-loss (MIT licence):
``losses.py::SurfaceLoss`` (= ``BoundaryLoss``) and ``utils.py::one_hot2dist``.
"""

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lossd.losses._functional import (
    check_classes,
    check_ignore_index,
    float32_math,
    one_hot,
    prepare_inputs,
    signed_distance_map,
)

__all__ = ["KervadecBoundaryLoss", "kervadec_boundary_loss"]


@float32_math
def kervadec_boundary_loss(
    logits: Tensor,
    target: Tensor,
    *,
    classes: Sequence[int] | None = None,
    ignore_index: int | None = 255,
) -> Tensor:
    """Mean of probability × signed distance, the function of :class:`KervadecBoundaryLoss`.

    Args:
        logits: Raw scores [B, C, H, W] (binary masks: [B, 1, H, W]).
        target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.
        classes: Class indices whose maps enter the mean, or None for all classes.
        ignore_index: Label value to ignore, or None.

    Returns:
        The scalar loss (a graph-connected zero when no pixel is valid).

    Raises:
        DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong.
        InvalidOptionError: If ``classes`` names a channel that ``logits`` lacks.
    """
    inputs = prepare_inputs(
        logits, target, check_ignore_index(ignore_index), check_classes(classes), "softmax"
    )
    assert inputs.probs is not None
    selected = inputs.selected
    probs = inputs.probs[:, selected]
    regions = one_hot(inputs.target, inputs.num_classes, ignore_index)[:, selected]
    with torch.no_grad():
        distance_maps = signed_distance_map(regions)
    weighted = (probs * distance_maps).sum(dim=1) * inputs.valid
    num_terms = inputs.valid.sum() * len(selected)
    return weighted.sum() / num_terms.clamp_min(1)


class KervadecBoundaryLoss(nn.Module):
    """Boundary loss: softmax probabilities weighted by the target's signed distance map.

    ``L_B = mean_{pixels, classes} p_c(x) · φ_c(x)`` (MIDL 2019, Sec. 2, loss L_B; official
    ``SurfaceLoss``), where ``φ_c`` is the signed Euclidean distance map of the target region of
    class c in each image (official ``one_hot2dist``): outside the region the distance to it
    (>= 1), inside ``-(d - 1)`` with d the distance to the nearest outside pixel, and 0 for a
    class absent from the image. The maps are computed from the target without gradient
    (``scipy.ndimage.distance_transform_edt`` for CPU tensors when scipy is installed, else and
    for CUDA tensors an exact vectorised torch transform). The value is negative when the
    prediction matches the target; its minimum is reached by the one-hot target.

    Ignore pixels count as "not c" for every class when the maps are built (so a region next
    to an ignore area has a boundary there) and are left out of the mean. An image entirely
    covered by one class has no boundary and gets a zero map. With no valid pixel the loss is a
    zero that keeps the graph.

    Published schedule (implemented by the training objective, not here): the loss is added to
    a region loss (GDL in the paper) as ``α_r · L_region + α_b · L_B``; the README uses
    α = 0.01, and the official ``StealWeight(to_steal=0.01)`` scheduler moves 0.01 per epoch
    from the region weight (floor 0.1) to the boundary weight, starting from (1, 0.01)
    (docs/reference.md, "Competing losses").

    Args:
        classes: Class indices ``idc`` whose maps enter the mean, or None for all classes
            (the paper's experiments use the foreground classes only).
        ignore_index: Label value to ignore (255 in prepared masks), or None.

    Shape:
        - logits: [B, C, H, W] (any float dtype; float16 and bfloat16 are computed in float32).
        - target: [B, H, W] integer class indices.
        - output: scalar, float32 (float64 for float64 logits).

    Reference:
        Kervadec et al., MIDL 2019, Sec. 2 (boundary loss L_B); official ``SurfaceLoss(idc)`` and
        ``one_hot2dist(seg, resolution=None)`` with unit pixel spacing.
    """

    def __init__(
        self,
        classes: Sequence[int] | None = None,
        ignore_index: int | None = 255,
    ) -> None:
        super().__init__()
        self.classes = check_classes(classes)
        self.ignore_index = check_ignore_index(ignore_index)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Return the mean of probability × signed distance over valid pixels and classes.

        Args:
            logits: Raw scores [B, C, H, W].
            target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.

        Returns:
            The scalar loss (a graph-connected zero when no pixel is valid).

        Raises:
            DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong.
            InvalidOptionError: If ``classes`` names a channel that ``logits`` lacks.
        """
        return kervadec_boundary_loss(
            logits, target, classes=self.classes, ignore_index=self.ignore_index
        )

    def extra_repr(self) -> str:
        """Return the options shown by ``repr``."""
        return f"classes={self.classes}, ignore_index={self.ignore_index}"
