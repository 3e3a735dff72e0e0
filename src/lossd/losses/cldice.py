"""Soft clDice of Shit et al., per class, with an exact custom backward of the soft skeleton.

Shit, Paetzold, Sekuboyina, Ezhov, Unger, Zhylka, Pluim, Bauer & Menze, "clDice - a Novel
Topology-Preserving Loss Function for Tubular Structure Segmentation", CVPR 2021, pp.
16560-16569 (arXiv 2003.07311). Official code read for this module: github jocpae/clDice at
commit 47d31a6cc4a8101b1ffe8052994821961e57af9f, ``cldice_loss/pytorch/soft_skeleton.py``
(lines 12-46: soft erosion, dilation, opening and the skeleton iteration) and
``cldice_loss/pytorch/cldice.py`` (lines 26-61: ``soft_dice`` and ``soft_dice_cldice``).

Why a custom backward. The soft skeleton is a chain of ``iterations + 1`` erosions and
dilations with a few point-wise operations per step. Differentiated by autograd, every step
keeps several ``[B, C, H, W]`` tensors and the backward visits each min/max again: on the
2-core CPU of bench/bench_losses.py, the skeleton alone took 49 s at ``[8, 7, 512, 512]``
through autograd (cross-entropy: about 0.1-0.2 s). Here the forward runs without a graph
(OpenCV's 3×3 morphology on CPU, in-place torch shifts elsewhere), and the backward recomputes
the chain once while tracking, for every erosion and dilation output, the pixel of the input it
comes from (the min and max only select values). The gradient of the skeleton then reduces to
two scatter-adds per step (see :class:`_SkeletonSums`); the whole loss costs about 4-5 s there,
still tens of cross-entropies: 11 steps of morphology and point-wise work forward and again
backward, over every class map. Values and gradients are those of the reference's autograd
(the tests compare with a literal implementation); only the pixel that receives the gradient on
an exact tie between two different pixels' values may differ.
"""

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from lossd.losses._functional import (
    check_classes,
    check_ignore_index,
    check_number,
    eager,
    float32_math,
    one_hot,
    optional_module,
    prepare_inputs,
)

__all__ = ["ClDiceLoss", "binary_skeleton", "cl_dice_loss", "soft_skeleton"]

_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=np.uint8)
"""``cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))``, written out (OpenCV is optional)."""
_SQUARE = np.ones((3, 3), dtype=np.uint8)

_INDEX_BITS = 28
"""Low mantissa bits of a float64 that carry the source pixel (a float32 value leaves 29 at
zero; with 28, the packed number is less than half a float32 ulp above the value, so rounding
it to float32 gives the value back)."""
_INDEX_MASK = (1 << _INDEX_BITS) - 1
_TINY = float.fromhex("0x1p-1022")
"""Smallest normal float64: stands for 0 in packed maps (below every positive float32)."""


# --------------------------------------------------------------------------- morphology


def _opencv_for(tensor: Tensor) -> ModuleType | None:
    """OpenCV does the 3×3 erosions and dilations on CPU when installed; torch shifts else.

    ``cv2`` is an optional accelerator (``pip install opencv-python-headless``): without it,
    the torch shifts give the same values (min and max only select values).
    """
    if tensor.device.type != "cpu" or tensor.dtype not in (torch.float32, torch.float64):
        return None
    return optional_module("cv2")


def _erode_into(out: Tensor, image: Tensor) -> None:
    """``out = min`` over the cross (pixel and its 4 neighbours inside the image), [N, H, W].

    The reference ``soft_erode``: the minimum of a 3×1 and a 1×3 min-pool whose padding never
    wins (soft_skeleton.py lines 12-17).
    """
    cv2 = _opencv_for(image)
    if cv2 is not None:
        source, target = image.numpy(), out.numpy()
        for index in range(source.shape[0]):
            cv2.erode(source[index], _CROSS, dst=target[index])
        return
    out.copy_(image)
    torch.minimum(out[..., 1:, :], image[..., :-1, :], out=out[..., 1:, :])
    torch.minimum(out[..., :-1, :], image[..., 1:, :], out=out[..., :-1, :])
    torch.minimum(out[..., :, 1:], image[..., :, :-1], out=out[..., :, 1:])
    torch.minimum(out[..., :, :-1], image[..., :, 1:], out=out[..., :, :-1])


def _dilate_into(out: Tensor, image: Tensor, scratch: Tensor) -> None:
    """``out = max`` over the 3×3 square inside the image, [N, H, W] (reference ``soft_dilate``).

    The reference is a 3×3 max-pool with padding that never wins (soft_skeleton.py lines
    24-27). ``scratch`` is a buffer like ``image`` (used by the torch path only).
    """
    cv2 = _opencv_for(image)
    if cv2 is not None:
        source, target = image.numpy(), out.numpy()
        for index in range(source.shape[0]):
            cv2.dilate(source[index], _SQUARE, dst=target[index])
        return
    scratch.copy_(image)
    torch.maximum(scratch[..., 1:, :], image[..., :-1, :], out=scratch[..., 1:, :])
    torch.maximum(scratch[..., :-1, :], image[..., 1:, :], out=scratch[..., :-1, :])
    out.copy_(scratch)
    torch.maximum(out[..., :, 1:], scratch[..., :, :-1], out=out[..., :, 1:])
    torch.maximum(out[..., :, :-1], scratch[..., :, 1:], out=out[..., :, :-1])


# --------------------------------------------------------------------------- skeleton values


@torch.no_grad()
def soft_skeleton(image: Tensor, iterations: int = 10) -> Tensor:
    """Soft skeleton of the reference ``SoftSkeletonize.soft_skel`` (no gradient).

    ``skel = relu(e_0 - open(e_0))``, then for ``k = 1..iterations``:
    ``e_k = erode(e_{k-1})``, ``delta = relu(e_k - open(e_k))``,
    ``skel = skel + relu(delta - skel * delta)`` (soft_skeleton.py lines 35-46), with
    ``open(x) = dilate(erode(x))``, the cross erosion and the 3×3 dilation.

    Args:
        image: Maps in [0, 1], shape [..., H, W].
        iterations: Number of loop steps (10 in ``cldice.py`` lines 11 and 48).

    Returns:
        Tensor of the shape and dtype of ``image``.
    """
    return _skeleton_forward(image.reshape(-1, *image.shape[-2:]), iterations)[0].view_as(image)


def _skeleton_forward(image: Tensor, iterations: int) -> tuple[Tensor, Tensor]:
    """Skeleton and ``q = Π_k (1 - ind_k δ_k)`` (the remaining ``1 - skel``, as a product).

    ``q`` is what the backward needs: ``Π_{j>k} (1 - ind_j δ_j) = q_K / q_k``; as a product it
    keeps its relative precision where ``1 - skel`` would cancel. Every step works in a few
    preallocated buffers (a fresh ``[B, C, H, W]`` tensor per operation costs more than the
    operation on a CPU); gates are 0/1 floats, as point-wise operations on bool tensors are
    several times slower there.
    """
    current = image.contiguous().clone()
    following, opened, scratch, product, gate = (torch.empty_like(current) for _ in range(5))
    _erode_into(following, current)
    _dilate_into(opened, following, scratch)
    skel = current.sub(opened).clamp_(min=0.0)  # δ_0
    remaining = torch.sub(1.0, skel)
    for _ in range(iterations):
        current, following = following, current
        _erode_into(following, current)
        _dilate_into(opened, following, scratch)
        delta = torch.sub(current, opened, out=opened).clamp_(min=0.0)
        torch.mul(skel, delta, out=product)
        torch.sub(delta, product, out=product)  # z = δ - skel·δ, as the reference
        torch.gt(product, 0, out=gate)
        skel.add_(product.clamp_(min=0.0))
        torch.mul(delta, gate, out=product)
        remaining.addcmul_(remaining, product, value=-1.0)  # q ← q (1 - ind δ)
    return skel, remaining


@eager
@torch.no_grad()
def binary_skeleton(mask: Tensor, iterations: int = 10) -> Tensor:
    """:func:`soft_skeleton` of a 0/1 map, as a bool map.

    Exact: on 0/1 values every step is boolean, ``δ = e AND NOT open(e)`` and
    ``skel = skel OR δ``.

    Args:
        mask: Bool maps, shape [..., H, W].
        iterations: Number of loop steps.

    Returns:
        Bool tensor of the shape of ``mask``.
    """
    flat = mask.reshape(-1, *mask.shape[-2:])
    cv2 = optional_module("cv2") if flat.device.type == "cpu" else None
    if cv2 is None:
        soft, _ = _skeleton_forward(flat.float(), iterations)
        return (soft > 0).view_as(mask)
    images = np.ascontiguousarray(flat.numpy()).view(np.uint8)
    result = np.empty_like(images)
    for index in range(images.shape[0]):
        current: np.ndarray = images[index]
        eroded: np.ndarray = cv2.erode(current, _CROSS)
        skel: np.ndarray = cv2.subtract(current, cv2.dilate(eroded, _SQUARE))
        for _ in range(iterations):
            current, eroded = eroded, cv2.erode(eroded, _CROSS)
            skel = cv2.bitwise_or(skel, cv2.subtract(current, cv2.dilate(eroded, _SQUARE)))
        result[index] = skel
    return torch.from_numpy(result.view(np.bool_)).view(mask.shape)


# --------------------------------------------------------------------------- source tracking


class _Sources:
    """Maps whose erosions and dilations also say which input pixel each value comes from.

    float32 inputs: every value is written as a float64 whose low 28 mantissa bits (zero for a
    float32 value) hold the flat index of its pixel; float64 order is then the order of
    ``(value, index)``, so min and max select both at once, and rounding to float32 returns the
    value. Other dtypes: every value is replaced by its rank in a stable sort of the
    whole tensor, which orders ``(value, index)`` the same way. Ties between equal values of
    different pixels go to the smallest index under min and the largest under max.
    """

    def __init__(self, image: Tensor) -> None:
        self.flat = image.reshape(-1)
        self.packed = image.dtype == torch.float32 and image.numel() <= _INDEX_MASK + 1
        if self.packed:
            wide = image.to(torch.float64).masked_fill_(image == 0, _TINY)
            index = torch.arange(image.numel(), device=image.device).view(image.shape)
            wide.view(torch.int64).bitwise_or_(index)
            self.start = wide
        else:
            order = torch.sort(self.flat, stable=True).indices
            rank = torch.empty_like(order)
            rank[order] = torch.arange(order.numel(), device=order.device)
            self.order = order
            self.start = rank.to(torch.float64).view(image.shape)

    def source(self, tracked: Tensor, out: Tensor | None = None) -> Tensor:
        """Flat index of the pixel each tracked value comes from (int64, into ``out`` if given)."""
        if self.packed:
            bits = tracked.view(torch.int64)
            if out is None:
                return torch.bitwise_and(bits, _INDEX_MASK)
            return torch.bitwise_and(bits, _INDEX_MASK, out=out)
        ranks = tracked.reshape(-1).long()
        if out is None:
            return self.order[ranks]
        return torch.index_select(self.order, 0, ranks, out=out.view(-1))

    def value(self, tracked: Tensor, out: Tensor, scratch: Tensor) -> Tensor:
        """The values of the tracked map, exact, into ``out`` (int64 ``scratch`` may be used)."""
        if self.packed:
            return out.copy_(tracked)  # round to nearest: the index bits are below half an ulp
        index = self.source(tracked, scratch)
        return torch.index_select(self.flat, 0, index.view(-1), out=out.view(-1)).view_as(out)


class _SkeletonSums(torch.autograd.Function):
    """Per channel ``(Σ skel(P) · Y, Σ skel(P))`` over batch and pixels, exact backward.

    Backward. Write ``δ_k = relu(e_k - o_k)`` with ``e_k`` the k-th erosion of ``P`` and
    ``o_k = dilate(e_{k+1})``, ``ind_k = [δ_k - skel_{k-1} δ_k > 0]`` and
    ``f_k = 1 - ind_k δ_k``. Then ``∂skel/∂δ_0 = Π_{j>0} f_j`` (where ``e_0 > o_0``) and
    ``∂skel/∂δ_k = ind_k (1 - skel_{k-1}) Π_{j>k} f_j`` (the reference's autograd through
    ``skel + relu(δ - skel·δ)``), and every ``e_k`` and ``o_k`` is a copy of one pixel of ``P``.
    With ``G = ∂L/∂skel = g_1 Y + g_2`` (per channel), the gradient w.r.t. ``P`` is, summed over
    steps and pixels, ``+G ∂skel/∂δ_k`` at the source pixel of ``e_k`` and ``-G ∂skel/∂δ_k``
    at the source pixel of ``o_k``. The products ``Π_{j>k} f_j = q_K / q_k`` come from the
    running product ``q`` (1 where ``q_k`` is exactly 0: a factor 0 means ``skel`` reached 1 and
    every later factor is 1).
    """

    @staticmethod
    def forward(ctx: Any, probs: Tensor, truth: Tensor, iterations: int) -> Tensor:
        flat = probs.detach().reshape(-1, *probs.shape[-2:])
        skel, remaining = _skeleton_forward(flat, iterations)
        skel = skel.view_as(probs)
        dims = (0, 2, 3)
        sums = torch.stack([(skel * truth).sum(dims), skel.sum(dims)])
        ctx.save_for_backward(probs.detach(), truth, remaining)
        ctx.iterations = iterations
        return sums

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_sums: Tensor) -> tuple[Tensor | None, ...]:
        probs, truth, remaining_end = ctx.saved_tensors
        channels = probs.shape[1]
        weight_truth = grad_sums[0].view(1, channels, 1, 1)
        weight_all = grad_sums[1].view(1, channels, 1, 1)
        upstream = (truth * weight_truth + weight_all).reshape(-1, *probs.shape[-2:])
        grad = _skeleton_backward(
            probs.reshape(-1, *probs.shape[-2:]), upstream, remaining_end, ctx.iterations
        )
        return grad.view_as(probs), None, None


def _skeleton_backward(
    image: Tensor, upstream: Tensor, remaining_end: Tensor, iterations: int
) -> Tensor:
    """Gradient of ``Σ upstream · skel(image)`` w.r.t. ``image`` (see :class:`_SkeletonSums`)."""
    sources = _Sources(image)
    grad = torch.zeros_like(image).view(-1)
    tracked = sources.start
    tracked_next, tracked_open, tracked_scratch = (torch.empty_like(tracked) for _ in range(3))
    index = torch.empty(image.shape, dtype=torch.int64, device=image.device)
    current = image.contiguous().clone()
    following, opened, coefficient, buffer, gate = (torch.empty_like(current) for _ in range(5))
    skel, remaining = torch.empty_like(current), torch.empty_like(current)
    # upstream · Π_{j>k} f_j = upstream · q_K / q_k. A q_k of exactly 0 (a factor f_j = 0:
    # skel reached 1 at j <= k, so every later factor is 1) means q_K = 0 and the product 1.
    scaled = upstream * remaining_end
    exact_zero = bool((remaining_end == 0).any())

    flat_coefficient = coefficient.view(-1)

    def scatter(step_tracked: Tensor, step_open: Tensor) -> None:
        """``+coefficient`` at the sources of ``step_tracked``, ``-`` at those of ``step_open``.

        Most coefficients are 0 after the first steps: then only the others are gathered.
        """
        count = int(torch.count_nonzero(flat_coefficient))
        if count == 0:
            return
        if 4 * count < flat_coefficient.numel():
            where = flat_coefficient.nonzero().squeeze(1)
            values = flat_coefficient[where]
            for tracked_map, sign in ((step_tracked, 1.0), (step_open, -1.0)):
                origin = sources.source(tracked_map.view(-1)[where])
                grad.index_add_(0, origin, values, alpha=sign)
            return
        for tracked_map, sign in ((step_tracked, 1.0), (step_open, -1.0)):
            origin = sources.source(tracked_map, index).view(-1)
            grad.index_add_(0, origin, flat_coefficient, alpha=sign)

    def times_later_factors(out: Tensor) -> None:
        ratio = torch.div(scaled, remaining, out=buffer)
        if exact_zero:
            ratio = torch.where(remaining == 0, upstream, ratio)
        out.mul_(ratio)

    for step in range(iterations + 1):
        _erode_into(tracked_next, tracked)
        _dilate_into(tracked_open, tracked_next, tracked_scratch)
        sources.value(tracked_next, following, index)
        sources.value(tracked_open, opened, index)
        delta = torch.sub(current, opened, out=opened).clamp_(min=0.0)
        if step == 0:
            torch.gt(delta, 0, out=gate)  # the relu of δ_0
            skel.copy_(delta)
            torch.sub(1.0, delta, out=remaining)
            coefficient.copy_(gate)
        else:
            torch.mul(skel, delta, out=buffer)
            torch.sub(delta, buffer, out=buffer)  # z
            torch.gt(buffer, 0, out=gate)
            torch.sub(1.0, skel, out=coefficient).mul_(gate)
            skel.add_(buffer.clamp_(min=0.0))
            torch.mul(delta, gate, out=buffer)
            remaining.addcmul_(remaining, buffer, value=-1.0)
        times_later_factors(coefficient)
        scatter(tracked, tracked_open)
        tracked, tracked_next = tracked_next, tracked
        current, following = following, current
    return grad.view_as(image)


# --------------------------------------------------------------------------- the loss


@eager
def _skeleton_sums(probs: Tensor, truth: Tensor, iterations: int) -> Tensor:
    """``(Σ skel(P) · Y, Σ skel(P))`` per channel, exact backward (:class:`_SkeletonSums`)."""
    sums: Tensor = _SkeletonSums.apply(probs, truth, iterations)
    return sums


def _check_options(iterations: int, smooth: float, alpha: float) -> None:
    check_number("iterations", iterations, minimum=0, integer=True)
    check_number("smooth", smooth, minimum=0.0, strict=True)
    check_number("alpha", alpha, minimum=0.0, maximum=1.0)


@float32_math
def cl_dice_loss(
    logits: Tensor,
    target: Tensor,
    *,
    iterations: int = 10,
    smooth: float = 1.0,
    alpha: float = 0.5,
    classes: Sequence[int] | None = None,
    ignore_index: int | None = 255,
) -> Tensor:
    """Mean over the selected classes of ``(1 - α) Dice + α clDice``.

    The function of :class:`ClDiceLoss` (see there for the definition). Not
    ``torch.compile``-able as one graph on CPU: the morphology runs in OpenCV there (and the
    custom backward reads the number of non-zero coefficients on the host); ``torch.compile``
    runs those parts eagerly (graph breaks).

    Args:
        logits: Raw scores [B, C, H, W] (binary masks: [B, 1, H, W]).
        target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.
        iterations: Skeleton loop steps.
        smooth: The smoothing ``s``.
        alpha: Weight of clDice against soft Dice.
        classes: Class indices averaged, or None for all classes.
        ignore_index: Label value to ignore, or None.

    Returns:
        The scalar loss.

    Raises:
        DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong.
        InvalidOptionError: For an option out of range, or ``classes`` naming a channel that
            ``logits`` lacks.
    """
    _check_options(iterations, smooth, alpha)
    inputs = prepare_inputs(
        logits, target, check_ignore_index(ignore_index), check_classes(classes), "masked"
    )
    assert inputs.probs is not None
    probs, selected, num_classes = inputs.probs, inputs.selected, inputs.num_classes
    regions = one_hot(inputs.target, num_classes, ignore_index)
    if len(selected) < num_classes:
        probs, regions = probs[:, selected], regions[:, selected]
    truth = regions.to(probs.dtype)
    dims = (0, 2, 3)
    skel_sums = _skeleton_sums(probs, truth, iterations)
    skel_truth_sum, skel_sum = skel_sums
    truth_skeleton = binary_skeleton(regions, iterations).to(probs.dtype)
    precision = (skel_truth_sum + smooth) / (skel_sum + smooth)
    sensitivity = ((truth_skeleton * probs).sum(dims) + smooth) / (
        truth_skeleton.sum(dims) + smooth
    )
    cl_dice: Tensor = 1.0 - 2.0 * precision * sensitivity / (precision + sensitivity)
    if alpha == 1.0:
        return cl_dice.mean()
    intersection = (truth * probs).sum(dims)
    dice = 1.0 - (2.0 * intersection + smooth) / (truth.sum(dims) + probs.sum(dims) + smooth)
    return ((1.0 - alpha) * dice + alpha * cl_dice).mean()


class ClDiceLoss(nn.Module):
    """``(1 - α) · soft Dice + α · soft clDice``, per class, averaged over the selected classes.

    With ``P = softmax(logits)`` and the one-hot target ``Y`` (both 0 on ignore pixels), for
    each selected class c, sums taken over the batch and all pixels, ``s`` = ``smooth``:

    - ``S_P = soft_skeleton(P_c)``, ``S_Y = soft_skeleton(Y_c)`` (:func:`soft_skeleton`,
      ``iterations`` loop steps);
    - ``Tprec = (Σ S_P Y_c + s) / (Σ S_P + s)``, ``Tsens = (Σ S_Y P_c + s) / (Σ S_Y + s)``
      (the paper's topology precision and sensitivity with soft skeletons; cldice.py lines
      58-59);
    - ``clDice_c = 1 - 2 Tprec Tsens / (Tprec + Tsens)`` (cldice.py line 60);
    - ``Dice_c = 1 - (2 Σ Y_c P_c + s) / (Σ Y_c + Σ P_c + s)`` (cldice.py lines 26-39);
    - ``loss_c = (1 - α) Dice_c + α clDice_c`` (cldice.py line 61).

    Multi-class choice: the reference sums over all channels it is given at once (one Tprec,
    one Tsens for the whole tensor) and keeps channel 0 unless ``exclude_background=True``
    (default False, cldice.py line 43). Here each class gets its own Tprec and Tsens and the
    loss is their mean, so a large class does not drown a thin one (roads, the classes clDice
    is for). All classes are taken by default: in the Potsdam-style label sets channel 0 is
    impervious surfaces (roads), exactly the tubular class, not a background to drop.

    Ignore pixels are 0 in both ``P`` and ``Y`` (a region next to an ignore area ends there in
    both maps); their logits get no gradient.

    Args:
        iterations: Skeleton loop steps; 10, as both loss classes of the reference hard-code
            (``SoftSkeletonize(num_iter=10)``, cldice.py lines 11 and 48; their ``iter_=3``
            argument is unused and ``SoftSkeletonize``'s own default is 40).
        smooth: ``s`` above (1.0 in the reference: cldice.py lines 36 and 43).
        alpha: Weight of clDice against soft Dice (0.5 in ``soft_dice_cldice``, line 43);
            1.0 gives clDice alone.
        classes: Class indices averaged, or None for all classes.
        ignore_index: Label value to ignore (255 in prepared masks), or None.

    Shape:
        - logits: [B, C, H, W] (any float dtype; float16 and bfloat16 are computed in float32).
        - target: [B, H, W] integer class indices.
        - output: scalar, float32 (float64 for float64 logits).

    Reference:
        Shit et al., CVPR 2021 (arXiv 2003.07311), soft-clDice and the soft skeleton (the paper
        text was not re-read here; the code is the authority for every detail);
        jocpae/clDice @47d31a6 ``cldice_loss/pytorch/soft_skeleton.py`` lines 12-46,
        ``cldice_loss/pytorch/cldice.py`` lines 26-61.
    """

    def __init__(
        self,
        iterations: int = 10,
        smooth: float = 1.0,
        alpha: float = 0.5,
        classes: Sequence[int] | None = None,
        ignore_index: int | None = 255,
    ) -> None:
        super().__init__()
        _check_options(iterations, smooth, alpha)
        self.iterations = iterations
        self.smooth = float(smooth)
        self.alpha = float(alpha)
        self.classes = check_classes(classes)
        self.ignore_index = check_ignore_index(ignore_index)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Return the mean over the selected classes of ``(1 - α) Dice + α clDice``.

        Args:
            logits: Raw scores [B, C, H, W].
            target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.

        Returns:
            The scalar loss.

        Raises:
            DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong.
            InvalidOptionError: If ``classes`` names a channel that ``logits`` lacks.
        """
        return cl_dice_loss(
            logits,
            target,
            iterations=self.iterations,
            smooth=self.smooth,
            alpha=self.alpha,
            classes=self.classes,
            ignore_index=self.ignore_index,
        )

    def extra_repr(self) -> str:
        """Return the options shown by ``repr``."""
        return (
            f"iterations={self.iterations}, smooth={self.smooth}, alpha={self.alpha}, "
            f"classes={self.classes}, ignore_index={self.ignore_index}"
        )
