"""Boundary term of the distance-transform loss (DTL) of the segloss package.

segloss ``DistanceTransformLoss`` (PyPI ``segloss``; github rafaelvareto/segmentation-loss,
``python/segloss/src/dtl.py``, by Vareto et al.; docs/reference.md, "Competing losses"). segloss
returns ``CE + w · border^power``; this module is the ``border^power`` part only, because the
region term (cross-entropy or the model's own recipe) is supplied by the training objective,
which also holds the weight ``w`` (segloss default 1.0).
"""

from typing import Literal

import torch
from torch import Tensor, nn

from lossd.losses._functional import (
    check_choice,
    check_ignore_index,
    check_number,
    eager,
    float32_math,
    one_hot,
    one_sided_edges,
    prepare_inputs,
)
from lossd.losses.distance import first_max_index  # the argmax of Lossd's prediction
from lossd.ops.distance import taxicab_distance

__all__ = ["DistanceTransformLoss", "distance_transform_loss"]


def _check_options(dilate: int, power: float, reduction: str) -> None:
    check_number("dilate", dilate, minimum=0, integer=True)
    check_number("power", power, minimum=0.0, strict=True)
    check_choice("reduction", reduction, ("sum", "mean"))


@eager
@torch.no_grad()
def _edge_weights(
    logits: Tensor, target: Tensor, valid: Tensor, ignore_index: int | None, dilate: int
) -> Tensor:
    """``E(k == c) · relu(DT_c - dilate)`` of every class, on valid pixels of present classes."""
    num_classes, height, width = logits.shape[1:]
    truth = one_hot(target, num_classes, ignore_index)
    predicted = one_hot(first_max_index(logits.detach()), num_classes) & valid.unsqueeze(1)
    present = truth.flatten(2).any(dim=2).any(dim=0).view(1, num_classes, 1, 1)
    distance = taxicab_distance(one_sided_edges(truth), cap=height + width).float()
    weight = (distance - dilate).clamp_min(0.0)
    weight *= one_sided_edges(predicted) & present & valid.unsqueeze(1)
    return weight


@float32_math
def distance_transform_loss(
    logits: Tensor,
    target: Tensor,
    *,
    dilate: int = 5,
    power: float = 0.5,
    ignore_index: int | None = 255,
    reduction: Literal["sum", "mean"] = "sum",
) -> Tensor:
    """Distance-transform boundary penalty raised to ``power``.

    The function of :class:`DistanceTransformLoss` (see there for the definition).

    Args:
        logits: Raw scores [B, C, H, W] (binary masks: [B, 1, H, W]).
        target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.
        dilate: Distance below which predicted edges are not penalised.
        power: Exponent of the summed penalty.
        ignore_index: Label value to ignore, or None.
        reduction: ``"sum"`` or ``"mean"`` over the penalised pixels, before the power.

    Returns:
        The scalar loss (a graph-connected zero when no pixel is valid).

    Raises:
        DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong.
        InvalidOptionError: For an option out of range.
    """
    _check_options(dilate, power, reduction)
    inputs = prepare_inputs(logits, target, check_ignore_index(ignore_index), probs="softmax")
    assert inputs.probs is not None
    logits, target, probs, valid = inputs.logits, inputs.target, inputs.probs, inputs.valid
    weight = _edge_weights(logits.detach(), target, valid, ignore_index, dilate)
    penalty = (probs * weight).sum()
    if reduction == "mean":
        penalty = penalty / (weight.sum(dim=1) > 0).sum().clamp_min(1)
    positive = penalty > 0
    safe = torch.where(positive, penalty, torch.ones_like(penalty))
    return torch.where(positive, safe.pow(power), penalty * 0.0)


class DistanceTransformLoss(nn.Module):
    """Penalty of predicted class edges by their L1 distance to the target's class edges.

    For each class c present in the target batch, with ``p = softmax(logits)``, the predicted
    label map ``k = argmax p`` and the one-pixel edges ``E`` of segloss (pixel differs from
    the one below or the one to its left):

    ``border = Σ_{b, x, c} p_c(x) · E(k == c)(x) · relu(DT_c(x) - dilate)``,

    where ``DT_c`` is the exact L1 (Manhattan) distance transform to the target edges of c in
    the same image (segloss: two-pass row/column propagation; here separable running minima,
    the same numbers). The loss is ``border ** power`` (``reduction="sum"``, segloss default)
    or ``(border / #pixels with a penalty) ** power`` (``"mean"``, segloss's mean over the
    non-zero penalties). Only ``p`` carries gradient: the edge masks come from the argmax.
    A zero penalty gives a zero loss with zero gradient (no infinite slope of ``x ** 0.5``).

    Departures from segloss, all where segloss is ill-defined:

    - an image without target edge of c has ``DT_c = H + W`` (above any in-image L1 distance);
      segloss starts its propagation at ``N + 1 + H + W``, which depends on the batch size;
    - products stay within each image: segloss multiplies [N,H,W] by [N,1,H,W] maps, which
      broadcasts to [N,N,H,W] and pairs different images when N > 1;
    - ignore pixels are a "void" label in both the target and the argmax map (so edges next to
      an ignore area match when the prediction is right) and carry no penalty; segloss only
      skips the ignore label in its class loop.

    Args:
        dilate: Distance (pixels, L1) below which predicted edges are not penalised
            (segloss default 5).
        power: Exponent of the summed penalty (segloss default 0.5).
        ignore_index: Label value to ignore (255 in prepared masks), or None.
        reduction: ``"sum"`` (segloss default) or ``"mean"`` over the penalised pixels,
            applied before the power.

    Shape:
        - logits: [B, C, H, W] (any float dtype; float16 and bfloat16 are computed in float32).
        - target: [B, H, W] integer class indices.
        - output: scalar, float32 (float64 for float64 logits).

    Reference:
        segloss ``DistanceTransformLoss(border_params=[5, 0.5, 1.0], ignore_index=255,
        reduction='sum')``: ``border_params`` = [dilate, power, weight] (docs/reference.md,
        "Competing losses").
    """

    def __init__(
        self,
        dilate: int = 5,
        power: float = 0.5,
        ignore_index: int | None = 255,
        reduction: Literal["sum", "mean"] = "sum",
    ) -> None:
        super().__init__()
        _check_options(dilate, power, reduction)
        self.dilate = dilate
        self.power = float(power)
        self.ignore_index = check_ignore_index(ignore_index)
        self.reduction = reduction

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Return the distance-transform boundary penalty raised to ``power``.

        Args:
            logits: Raw scores [B, C, H, W].
            target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.

        Returns:
            The scalar loss (a graph-connected zero when no pixel is valid).

        Raises:
            DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong.
        """
        return distance_transform_loss(
            logits,
            target,
            dilate=self.dilate,
            power=self.power,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        """Return the options shown by ``repr``."""
        return (
            f"dilate={self.dilate}, power={self.power}, ignore_index={self.ignore_index}, "
            f"reduction={self.reduction!r}"
        )
