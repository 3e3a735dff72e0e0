"""Active Boundary Loss (ABL) of Wang et al.

Wang, Zhang, Cui, Ren, Yang, Xie, Hua, Bao & Xu, "Active Boundary Loss for Semantic
Segmentation", AAAI 2022, 36(2):2397-2405 (DOI 10.1609/aaai.v36i2.20139, arXiv 2102.02696).
Official code read for this module: github wangchi95/active-boundary-loss at commit
1511507533ad98f04ea26e3648360a6c1d477d37, ``abl.py`` (the only commit after 958218d that
touched it swapped two variable names); its label-smoothed cross-entropy is CoinCheung/pytorch-loss
``label_smooth.py`` at commit af876e43218694dc8599cc4711d9a5c5e043b1b2, lines 14-54
(``LabelSmoothSoftmaxCEV1``), the commit ``abl.py`` line 7 points to.

The paper text could not be retrieved here; its equations are cited from a read-through of it
and agree with the code: predicted boundary by KL divergence to the 2-neighbourhood with the
threshold adapted so that at most 1 % of the pixels are boundary, target direction = the
8-neighbour of smallest distance to the ground-truth boundary, predicted direction = softmax
of the KL divergences to the 8 neighbours, ``ABL = 1/N_b Σ Λ(M_i) CE(D_p, D_g)`` with
``Λ(x) = min(x, θ)/θ``, θ = 20, label smoothing 0.2, gradient only through the centre pixel
("detach"), and the total loss ``CE + IoU (Lovász) + w_a · ABL``.
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossd.losses._functional import (
    check_ignore_index,
    check_number,
    eager,
    euclidean_distance_to,
    float32_math,
    prepare_inputs,
    zero_with_graph,
)

__all__ = [
    "NEIGHBOURS",
    "ActiveBoundaryLoss",
    "active_boundary_loss",
    "boundary_directions",
    "boundary_distance",
]

NEIGHBOURS: tuple[tuple[int, int], ...] = (
    (1, 0),
    (-1, 0),
    (0, -1),
    (0, 1),
    (-1, 1),
    (1, 1),
    (-1, -1),
    (1, -1),
)
"""(row, column) offsets of the 8 directions, in the reference's order (abl.py lines 121-127:
``x_range``, ``y_range``; index 8 there is the pixel itself)."""

_EPS_START = 1e-5
_EPS_GROWTH = 1.2
_PAD_DISTANCE = 1e5


def _threshold_table(largest: float) -> list[float]:
    """The thresholds the reference tries, ``1e-5 · 1.2^k``, up to one at or above ``largest``.

    Computed as the reference does (abl.py lines 66 and 76-81: ``eps *= 1.2`` until few enough
    pixels are above).
    """
    table = [_EPS_START]
    while table[-1] < largest:
        table.append(table[-1] * _EPS_GROWTH)
    return table


@torch.no_grad()
def _kl_to_next(probs: Tensor, log_probs: Tensor, neg_entropy: Tensor, valid: Tensor) -> Tensor:
    """``KL(P_i || P_below) + KL(P_i || P_right)`` per pixel, 0 past the last row/column.

    abl.py lines 65-75 (``kl_div(a, b) = softmax(b) · (log_softmax(b) - log_softmax(a))``
    with ``b`` the pixel and ``a`` its lower / right neighbour, summed over classes), written
    ``Σ_c p_i log p_i - Σ_c p_i log p_j``. A pair with an ignore pixel contributes 0 (lossd's
    rule: the ignore pixel's logits must not matter).
    """
    kl = torch.zeros_like(neg_entropy)
    below = neg_entropy[:, :-1] - (probs[:, :, :-1] * log_probs[:, :, 1:]).sum(1)
    right = neg_entropy[..., :-1] - (probs[..., :-1] * log_probs[..., 1:]).sum(1)
    kl[:, :-1] += below * (valid[:, :-1] & valid[:, 1:])
    kl[..., :-1] += right * (valid[..., :-1] & valid[..., 1:])
    return kl


def _dilate3x3(mask: Tensor) -> Tensor:
    """Bool [B, H, W] -> pixels with a True pixel in their 3×3 window (zero padding).

    The reference's convolution with a 3×3 kernel of ones followed by ``> 0`` (abl.py 82-86).
    """
    source = mask.to(torch.uint8)
    rows = source.clone()
    torch.maximum(rows[:, 1:], source[:, :-1], out=rows[:, 1:])
    torch.maximum(rows[:, :-1], source[:, 1:], out=rows[:, :-1])
    out = rows.clone()
    torch.maximum(out[:, :, 1:], rows[:, :, :-1], out=out[:, :, 1:])
    torch.maximum(out[:, :, :-1], rows[:, :, 1:], out=out[:, :, :-1])
    return out.bool()


@torch.no_grad()
def _predicted_boundary(
    probs: Tensor, log_probs: Tensor, neg_entropy: Tensor, valid: Tensor, max_n_ratio: float
) -> Tensor:
    """Pixels within the 3×3 neighbourhood of a pixel whose KL sum exceeds the threshold.

    The threshold is the reference's: the first ``1e-5 · 1.2^k`` that leaves at most
    ``floor(H·W·max_n_ratio)`` pixels above it (abl.py lines 68, 76-81), then a 3×3 dilation
    (lines 82-86). It is chosen per image (the reference counts over the whole batch against
    the pixel count of one image, which is the same for a batch of one).
    """
    kl = _kl_to_next(probs, log_probs, neg_entropy, valid)
    batch, height, width = kl.shape
    allowed = math.floor(height * width * max_n_ratio)  # count > max_N <=> count > floor
    flat = kl.reshape(batch, -1)
    if allowed + 1 <= flat.shape[1]:
        cutoff = flat.topk(allowed + 1, dim=1).values[:, -1]  # the (allowed+1)-th largest
    else:
        cutoff = flat.new_full((batch,), -math.inf)
    table = torch.tensor(_threshold_table(float(cutoff.max())), dtype=kl.dtype, device=kl.device)
    # count(kl > eps) <= allowed  <=>  eps >= cutoff: the first such table entry.
    index = torch.searchsorted(table, cutoff.contiguous()).clamp_(max=table.numel() - 1)
    return _dilate3x3(kl > table[index].view(batch, 1, 1))


@torch.no_grad()
def boundary_distance(target: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Target-side map ``M`` of ABL and which images have a ground-truth boundary.

    Ground-truth boundary (abl.py lines 89-101): a pixel whose label differs from the pixel
    below or from the pixel to its right, and every ignore pixel. ``M`` (lines 17-24, 42-50,
    165-171): the reference writes the signed map of Kervadec's ``one_hot2dist`` into an int32
    buffer (``np.zeros_like`` of the int32 one-hot), which truncates it, and keeps the positive
    part of its negation: ``M = floor(d) - 1`` off the boundary and 0 on it, with ``d`` the
    Euclidean distance to the nearest boundary pixel (the project's exact transform).

    Args:
        target: Class indices [B, H, W].
        valid: Bool [B, H, W], False on ignore pixels.

    Returns:
        ``(distance, has_boundary)``: float32 [B, H, W] and bool [B]. An image without any
        boundary pixel gets 0 and ``has_boundary`` False (the reference would measure to a
        point outside the image: scipy's transform of an input without background).
    """
    boundary = ~valid
    boundary[:, :-1] |= target[:, :-1] != target[:, 1:]
    boundary[:, :, :-1] |= target[:, :, :-1] != target[:, :, 1:]
    has_boundary = boundary.flatten(1).any(dim=1)
    distance = euclidean_distance_to(boundary)
    distance = (distance.floor_() - 1.0).clamp_(min=0.0).masked_fill_(boundary, 0.0)
    distance.masked_fill_(~has_boundary.view(-1, 1, 1), 0.0)
    return distance, has_boundary


@torch.no_grad()
def boundary_directions(distance: Tensor, image: Tensor, row: Tensor, col: Tensor) -> Tensor:
    """Direction index (0..8) of each listed pixel: its first smallest ``M`` (abl.py 103-157).

    Among the 8 neighbours in :data:`NEIGHBOURS` order and the pixel itself (index 8, last),
    the first with the smallest ``distance``, as ``torch.argmin``; neighbours outside the
    image count ``1e5`` (the reference pads with ``max_dis = 1e5``).
    """
    padded = F.pad(distance, (1, 1, 1, 1), value=_PAD_DISTANCE)
    around = torch.stack(
        [padded[image, row + 1 + dr, col + 1 + dc] for dr, dc in (*NEIGHBOURS, (0, 0))], dim=1
    )
    return around.argmin(dim=1)


@eager
@torch.no_grad()
def _boundary_pixels(
    logits: Tensor, target: Tensor, valid: Tensor, max_n_ratio: float
) -> tuple[Tensor, ...]:
    """The pixels ABL moves and everything about them that carries no gradient.

    Returns ``(image, row, col, direction, neighbour_probs [N, 8, C], neighbour_neg_entropy
    [N, 8], neighbour_valid [N, 8], distance [N])`` for the predicted-boundary pixels whose
    direction is not the pixel itself.
    """
    height, width = logits.shape[2:]
    log_probs = torch.log_softmax(logits, dim=1)
    probs = log_probs.exp()
    neg_entropy = (probs * log_probs).sum(dim=1)  # Σ_c p log p, [B, H, W]
    candidates = _predicted_boundary(probs, log_probs, neg_entropy, valid, max_n_ratio)
    distance, has_boundary = boundary_distance(target, valid)
    candidates &= valid & has_boundary.view(-1, 1, 1)
    image, row, col = candidates.nonzero(as_tuple=True)
    direction = boundary_directions(distance, image, row, col)
    moving = direction != 8  # abl.py lines 154-161
    image, row, col, direction = image[moving], row[moving], col[moving], direction[moving]
    # The 8 neighbours, replicated at the border (abl.py lines 115-119), detached.
    rows = torch.stack([(row + dr).clamp(0, height - 1) for dr, _ in NEIGHBOURS], 1)
    cols = torch.stack([(col + dc).clamp(0, width - 1) for _, dc in NEIGHBOURS], 1)
    images = image.unsqueeze(1).expand_as(rows)
    neighbour_probs = probs.permute(0, 2, 3, 1)[images, rows, cols]  # [N, 8, C]
    neighbour_neg_entropy = neg_entropy[images, rows, cols]
    neighbour_valid = valid[images, rows, cols]
    return (
        image,
        row,
        col,
        direction,
        neighbour_probs,
        neighbour_neg_entropy,
        neighbour_valid,
        distance[image, row, col],
    )


def _check_options(max_n_ratio: float, label_smoothing: float, max_clip_dist: float) -> None:
    check_number("max_n_ratio", max_n_ratio, minimum=0.0, maximum=1.0, strict=True)
    check_number("label_smoothing", label_smoothing, minimum=0.0, maximum=1.0)
    check_number("max_clip_dist", max_clip_dist, minimum=0.0, strict=True)


@float32_math
def active_boundary_loss(
    logits: Tensor,
    target: Tensor,
    *,
    max_n_ratio: float = 0.01,
    label_smoothing: float = 0.2,
    max_clip_dist: float = 20.0,
    ignore_index: int | None = 255,
) -> Tensor:
    """Distance-weighted direction cross-entropy, the function of :class:`ActiveBoundaryLoss`.

    Args:
        logits: Raw scores [B, C, H, W] (binary masks: [B, 1, H, W]).
        target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.
        max_n_ratio: Largest share of an image's pixels above the KL threshold.
        label_smoothing: ``ε`` of the direction cross-entropy.
        max_clip_dist: ``θ`` of ``Λ``.
        ignore_index: Label value to ignore, or None.

    Returns:
        The scalar loss (a graph-connected zero when no pixel qualifies).

    Raises:
        DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong.
        InvalidOptionError: For an option out of range.
    """
    _check_options(max_n_ratio, label_smoothing, max_clip_dist)
    inputs = prepare_inputs(logits, target, check_ignore_index(ignore_index))
    logits, target, valid = inputs.logits, inputs.target, inputs.valid
    image, row, col, direction, neighbour_probs, neighbour_neg_entropy, neighbour_valid, weight = (
        _boundary_pixels(logits.detach(), target, valid, max_n_ratio)
    )
    if image.numel() == 0:
        return zero_with_graph(logits)
    centre = torch.log_softmax(logits[image, :, row, col], dim=1)  # [N, C], with gradient
    # KL(P_neighbour || P_centre) = Σ_c q_c log q_c - Σ_c q_c log p_c (abl.py line 142).
    cross = torch.bmm(neighbour_probs, centre.unsqueeze(2)).squeeze(2)
    direction_logits = (neighbour_neg_entropy - cross) * neighbour_valid  # ignore: 0
    soft = torch.full_like(direction_logits, label_smoothing / len(NEIGHBOURS))
    soft.scatter_(1, direction.unsqueeze(1), 1.0 - label_smoothing)
    cross_entropy = -(soft * torch.log_softmax(direction_logits, dim=1)).sum(dim=1)
    weight = weight.to(cross_entropy.dtype).clamp(max=max_clip_dist) / max_clip_dist
    return (cross_entropy * weight).mean()


class ActiveBoundaryLoss(nn.Module):
    """ABL: label-smoothed cross-entropy on directions to the ground-truth boundary.

    With ``P = softmax(logits)``, the predicted-boundary pixels ``i`` (KL-based, adaptive
    threshold, dilated; :func:`_predicted_boundary`) whose direction (the first smallest
    ``M`` among the 8 neighbours and the pixel, :func:`boundary_directions`, with ``M`` of
    :func:`boundary_distance`) is not the pixel itself:

    ``ABL = 1/N Σ_i Λ(M_i) · CE_ε(softmax_k KL(P_{i+Δ_k} || P_i), dir_i)``,

    ``Λ(M) = min(M, θ)/θ``, where ``P_{i+Δ_k}`` (the 8 neighbours, replicated at the image
    border) is detached so that the gradient only moves the centre pixel (abl.py lines
    129-146, ``isdetach=True``), and ``CE_ε`` is CoinCheung's label-smoothed cross-entropy:
    target ``1 - ε`` on the direction and ``ε/8`` on each of the 8 classes otherwise
    (label_smooth.py lines 42-47; the target sums to ``1 - ε/8``, as there). ``N`` is the
    number of such pixels (``.mean()`` at abl.py line 196). With none the reference returns
    ``None`` (lines 187-188, the caller skips the term); here a zero that keeps the graph.

    Ignore pixels: they are ground-truth boundary (abl.py lines 98-99), so predicted
    boundaries next to an ignore area are not pushed; beyond the reference, an ignore pixel is
    never a predicted-boundary pixel, a KL pair with an ignore pixel is 0 both when detecting
    the predicted boundary and as a direction logit (as for a neighbour equal to the centre),
    so ignore logits change neither the value nor any gradient.

    Departures from abl.py, where it is ill-defined or lossd needs more: the adaptive
    threshold is chosen per image (abl.py counts the whole batch against one image's 1 %);
    images without any ground-truth boundary are skipped; the unassigned
    ``torch.clamp(kl_maps, 0, 20)`` of line 146 has no effect there and none here.

    Published weighting (implemented by the training objective): ``CE + IoU + w_a · ABL``
    (IoU = Lovász-softmax). The value of ``w_a`` could not be read here (the paper text was
    not retrievable); the paper's ablation that ramps the IoU weight from 1 to 0 and the ABL
    weight from 0 to 1 ends at 1, and conf/loss/abl.yaml uses 1.0.

    Args:
        max_n_ratio: Largest share of an image's pixels above the KL threshold (1/100,
            abl.py line 33; the paper's 1 %).
        label_smoothing: ``ε`` (0.2, abl.py line 33).
        max_clip_dist: ``θ`` of ``Λ`` (20, abl.py lines 33 and 40).
        ignore_index: Label value to ignore (255 in prepared masks and in abl.py), or None.

    Shape:
        - logits: [B, C, H, W] (any float dtype; float16 and bfloat16 are computed in float32).
        - target: [B, H, W] integer class indices.
        - output: scalar, float32 (float64 for float64 logits).

    Reference:
        Wang et al., AAAI 2022 (arXiv 2102.02696), Sec. "Active Boundary Loss";
        wangchi95/active-boundary-loss @1511507 ``abl.py`` lines 14-198.
    """

    def __init__(
        self,
        max_n_ratio: float = 0.01,
        label_smoothing: float = 0.2,
        max_clip_dist: float = 20.0,
        ignore_index: int | None = 255,
    ) -> None:
        super().__init__()
        _check_options(max_n_ratio, label_smoothing, max_clip_dist)
        self.max_n_ratio = float(max_n_ratio)
        self.label_smoothing = float(label_smoothing)
        self.max_clip_dist = float(max_clip_dist)
        self.ignore_index = check_ignore_index(ignore_index)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Return the distance-weighted direction cross-entropy of the predicted boundary.

        Args:
            logits: Raw scores [B, C, H, W].
            target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.

        Returns:
            The scalar loss (a graph-connected zero when no pixel qualifies).

        Raises:
            DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong.
        """
        return active_boundary_loss(
            logits,
            target,
            max_n_ratio=self.max_n_ratio,
            label_smoothing=self.label_smoothing,
            max_clip_dist=self.max_clip_dist,
            ignore_index=self.ignore_index,
        )

    def extra_repr(self) -> str:
        """Return the options shown by ``repr``."""
        return (
            f"max_n_ratio={self.max_n_ratio}, label_smoothing={self.label_smoothing}, "
            f"max_clip_dist={self.max_clip_dist}, ignore_index={self.ignore_index}"
        )
