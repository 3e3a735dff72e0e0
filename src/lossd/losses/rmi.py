"""Region Mutual Information (RMI) loss: the lower-bound term.

Zhao, Wang, Yang & Cai, "Region Mutual Information Loss for Semantic Segmentation", NeurIPS 2019
(arXiv 1910.12037). Official code github ZJULearning/RMI (MIT licence), ``losses/rmi/rmi.py``
(``RMILoss.rmi_lower_bound``, ``forward_sigmoid``) and ``rmi_utils.py`` (``map_get_pairs``,
``log_det_by_cholesky``); docs/reference.md, "Competing losses".
"""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossd.errors import DataFormatError
from lossd.losses._functional import (
    check_choice,
    check_ignore_index,
    check_number,
    float32_math,
    one_hot,
    prepare_inputs,
    zero_with_graph,
)

__all__ = ["RMILoss", "rmi_loss"]

_MAX_RADIUS = 10
"""Largest radius accepted by the official code (``assert rmi_radius in [1, ..., 10]``)."""


def _check_options(
    radius: int, pool_stride: int, pool: str, pos_alpha: float, clip_min: float, reduction: str
) -> None:
    check_number("radius", radius, minimum=1, maximum=_MAX_RADIUS, integer=True)
    check_number("pool_stride", pool_stride, minimum=1, integer=True)
    check_choice("pool", pool, ("max", "avg"))
    check_number("pos_alpha", pos_alpha, minimum=0.0, strict=True)
    check_number("clip_min", clip_min, minimum=0.0)
    check_choice("reduction", reduction, ("sum", "mean"))


def _downsample(maps: Tensor, pool_stride: int, pool: str) -> Tensor:
    """Pool with window = stride = ``pool_stride`` and padding ``pool_stride // 2``."""
    if pool_stride == 1:
        return maps
    size, padding = pool_stride, pool_stride // 2
    if pool == "max":
        return F.max_pool2d(maps, size, stride=size, padding=padding)
    return F.avg_pool2d(maps, size, stride=size, padding=padding)


def _neighbourhoods(maps: Tensor, radius: int) -> Tensor:
    """Centred [B, C, d, points] vectors of every radius×radius window (``map_get_pairs``)."""
    batch, channels, height, width = maps.shape
    windows = F.unfold(maps.reshape(batch * channels, 1, height, width), radius)
    windows = windows.reshape(batch, channels, radius * radius, -1)
    return windows - windows.mean(dim=-1, keepdim=True)


@float32_math
def rmi_loss(
    logits: Tensor,
    target: Tensor,
    *,
    radius: int = 3,
    pool_stride: int = 3,
    pool: Literal["max", "avg"] = "max",
    pos_alpha: float = 5e-4,
    clip_min: float = 1e-6,
    ignore_index: int | None = 255,
    reduction: Literal["sum", "mean"] = "sum",
) -> Tensor:
    """RMI lower-bound loss of sigmoid probabilities, the function of :class:`RMILoss`.

    Args:
        logits: Raw scores [B, C, H, W] (binary masks: [B, 1, H, W], taken as the two
            classes ``[-x/2, x/2]`` like every loss).
        target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.
        radius: Side of the square neighbourhood.
        pool_stride: Down-sampling window and stride before RMI (1 = none).
        pool: ``"max"`` or ``"avg"``.
        pos_alpha: Ridge added to keep matrices positive definite.
        clip_min: Added to the probabilities.
        ignore_index: Label value to ignore, or None.
        reduction: ``"sum"`` over classes or ``"mean"``.

    Returns:
        The scalar loss (a graph-connected zero when no pixel is valid).

    Raises:
        DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong, or
            the pooled image is smaller than ``radius``.
        InvalidOptionError: For an option out of range.
    """
    _check_options(radius, pool_stride, pool, pos_alpha, clip_min, reduction)
    inputs = prepare_inputs(logits, target, check_ignore_index(ignore_index))
    logits, valid = inputs.logits, inputs.valid
    labels = one_hot(inputs.target, inputs.num_classes, ignore_index).to(torch.float64)
    probs = torch.sigmoid(logits.double()) * valid.unsqueeze(1) + clip_min
    labels = _downsample(labels, pool_stride, pool)
    probs = _downsample(probs, pool_stride, pool)
    if min(labels.shape[-2:]) < radius:
        raise DataFormatError(
            f"logits of spatial size {tuple(logits.shape[-2:])} pool to "
            f"{tuple(labels.shape[-2:])}, smaller than radius={radius}; "
            "expected larger images or a smaller radius / pool_stride"
        )
    label_vectors = _neighbourhoods(labels, radius)
    prob_vectors = _neighbourhoods(probs, radius)
    dim = radius * radius
    ridge = pos_alpha * torch.eye(dim, dtype=torch.float64, device=logits.device)

    label_cov = label_vectors @ label_vectors.transpose(-2, -1)
    prob_cov = prob_vectors @ prob_vectors.transpose(-2, -1) + ridge
    cross_cov = label_vectors @ prob_vectors.transpose(-2, -1)
    # Σ_YP Σ_P^-1 Σ_YPᵀ, with Σ_P symmetric: solve(Σ_P, Σ_YPᵀ) = Σ_P^-1 Σ_YPᵀ.
    explained = cross_cov @ torch.linalg.solve(prob_cov, cross_cov.transpose(-2, -1))
    posterior = label_cov - explained
    posterior = 0.5 * (posterior + posterior.transpose(-2, -1)) + ridge
    # ½ log det(A) = Σ log diag(chol(A)); official adds 1e-8 inside the log.
    cholesky = torch.linalg.cholesky(posterior)
    half_log_det = torch.log(torch.diagonal(cholesky, dim1=-2, dim2=-1) + 1e-8).sum(-1)

    per_class = half_log_det.mean(dim=0) / dim
    loss = per_class.sum() if reduction == "sum" else per_class.mean()
    return torch.where(valid.any(), loss.to(logits.dtype), zero_with_graph(logits))


class RMILoss(nn.Module):
    """Region mutual information lower bound between the target and sigmoid probabilities.

    For each image and class, the label map ``Y`` (one-hot) and the probabilities
    ``P = sigmoid(logits) + clip_min`` are max-pooled (window = stride = ``pool_stride``), and
    every pixel with its ``radius × radius`` neighbourhood becomes a d = radius² vector. With
    centred vectors and the unnormalised covariances ``Σ_Y``, ``Σ_P``, ``Σ_YP``:

    ``M = Σ_Y - Σ_YP (Σ_P + α I)^-1 Σ_YPᵀ`` and ``ℓ = ½ log det(M + α I) / d``

    (NeurIPS 2019, Sec. 3: minimising ½ log det of the posterior covariance maximises the
    lower bound of I(Y; P); official ``rmi_lower_bound``). ``ℓ`` is averaged over the
    batch and summed over classes (official ``_IS_SUM = 1``) or averaged (``"mean"``). The
    covariances are not divided by the number of points (as in the official code), so the
    value carries an offset that depends on the image size but not on the prediction. It is
    computed in float64, like the official code.

    This is the RMI term only. The official loss is ``0.5 · BCE + 0.5 · RMI``
    (``loss_weight_lambda=0.5, lambda_way=1``); here the region term comes from the model's
    base recipe and the weight from the training objective.

    Ignore pixels get label 0 and probability 0 (+ ``clip_min``) in every class, as in the
    official ``forward_sigmoid``, so their logits get no gradient. With no valid pixel the
    loss is a zero that keeps the graph.

    Args:
        radius: Side of the square neighbourhood (official default 3, so d = 9).
        pool_stride: Down-sampling window and stride before RMI (official default 3; 1 = none).
        pool: ``"max"`` (official ``rmi_pool_way=0``) or ``"avg"`` (``rmi_pool_way=1``).
        pos_alpha: Ridge added to keep matrices positive definite (official 5e-4).
        clip_min: Added to the probabilities (official ``_CLIP_MIN`` 1e-6).
        ignore_index: Label value to ignore (255 in prepared masks), or None.
        reduction: ``"sum"`` over classes (official) or ``"mean"``.

    Shape:
        - logits: [B, C, H, W] (any float dtype; computed in float64).
        - target: [B, H, W] integer class indices.
        - output: scalar, float32 (float64 for float64 logits).

    Raises:
        DataFormatError: In ``forward``, if the pooled image is smaller than ``radius``.

    Reference:
        Zhao et al., NeurIPS 2019, Sec. 3 (RMI lower bound); official ``RMILoss(num_classes,
        rmi_radius=3, rmi_pool_way=0, rmi_pool_size=3, rmi_pool_stride=3)``.
    """

    def __init__(
        self,
        radius: int = 3,
        pool_stride: int = 3,
        pool: Literal["max", "avg"] = "max",
        pos_alpha: float = 5e-4,
        clip_min: float = 1e-6,
        ignore_index: int | None = 255,
        reduction: Literal["sum", "mean"] = "sum",
    ) -> None:
        super().__init__()
        _check_options(radius, pool_stride, pool, pos_alpha, clip_min, reduction)
        self.radius = radius
        self.pool_stride = pool_stride
        self.pool = pool
        self.pos_alpha = float(pos_alpha)
        self.clip_min = float(clip_min)
        self.ignore_index = check_ignore_index(ignore_index)
        self.reduction = reduction

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Return the RMI lower-bound loss of sigmoid probabilities against ``target``.

        Args:
            logits: Raw scores [B, C, H, W].
            target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.

        Returns:
            The scalar loss (a graph-connected zero when no pixel is valid).

        Raises:
            DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong,
                or the pooled image is smaller than ``radius``.
        """
        return rmi_loss(
            logits,
            target,
            radius=self.radius,
            pool_stride=self.pool_stride,
            pool=self.pool,
            pos_alpha=self.pos_alpha,
            clip_min=self.clip_min,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        """Return the options shown by ``repr``."""
        return (
            f"radius={self.radius}, pool_stride={self.pool_stride}, pool={self.pool!r}, "
            f"pos_alpha={self.pos_alpha}, clip_min={self.clip_min}, "
            f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"
        )
