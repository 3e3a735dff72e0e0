"""Lossd, the distance loss: exact reference values and gradients, all classes at once.

Implements the loss of Ma, Ren, Li, Chen, "Improving remote sensing image semantic segmentation
based on distance loss", Acta Aeronautica et Astronautica Sinica 47(8):332780 (2026),
DOI 10.7527/S1000-6893.2025.32780, as specified in docs/lossd.md (Definition, steps 1-5; the
authors' partial code is github.com/qwqwqer233/Lossd, summarised in docs/reference.md).

The reference semantics (docs/lossd.md) loop over classes and run ``max_iter`` propagation rounds
per distance map. This module computes the same numbers from two observations:

* With a hard one-hot prediction ``k`` and target ``t``, the term ``diff = |m_c * full_c - pos_c|``
  of step 4 is non-zero only for ``c = k`` and ``c = t`` at a misclassified pixel (``k != t``):
  for ``c = k`` it is the distance of the pixel to the true region of ``k``, for ``c = t`` it is
  the depth of the pixel inside its true region. Every other (pixel, class) pair has
  ``diff = 0`` and contributes the constant ``log1p(1e-6) / log1p(max_iter)``, which is kept.
* The target side is therefore one ``[B, C, H, W]`` map "distance to the region of each class"
  and one ``[B, H, W]`` map "depth inside the own region", both exact truncated taxicab
  transforms (see :mod:`lossd.ops.distance`). They do not depend on the network and can be
  computed once per batch with :func:`target_distance_maps`.

Ignored pixels (``ignore_index``) follow one of two conventions, ``ignore_mode``:

* ``"exclude"`` (default; docs/lossd.md, "Beyond the reference"): an ignored pixel belongs to no
  class's true region and is left out of the mean and of the classes taken, so the prediction
  there costs nothing and gets no gradient.
* ``"authors"``: the authors' code has no ignore handling (qwqwqer233/Lossd lossd.py@86ed3c0:
  line 162 ``target_bin_mask = (target == label)``, line 177 ``norm_diff.mean()`` over every
  pixel, lines 144-149 classes from ``pred_class.unique()`` and ``target.unique()`` filtered by
  ``label_list``). An ignored pixel is background in every class's true mask, stays in the mean
  (the denominator is ``B * H * W``) and its predicted class counts as taken. Its terms are
  ``diff = 0`` for every class but its prediction ``k``, where ``diff`` is its distance to the
  true region of ``k`` (an over-segmentation error): a prediction there is penalised like a
  false positive. The distance maps are the same in both conventions; only the pixels that
  enter the sum and the mean differ.

The prediction ``k = argmax(softmax(x))`` of step 1 is taken as the first maximal logit
(as ``logits.max(dim=1)``), which is the same class because softmax is increasing, and saves a
dense softmax in the forward pass. The two can differ only where two float32 logits are so close
(about one unit in the last place) that their rounded probabilities tie, which changes one
pixel's term.

The gradient w.r.t. the softmax probabilities is then sparse (two entries per misclassified
pixel; ``abs'(0) = 0`` as in torch), so a custom autograd function recomputes the softmax in
its backward pass and applies the softmax Jacobian in closed form; apart from the logits
themselves, nothing of size ``[B, C, H, W]`` is kept between forward and backward (what is kept
is two class indices and two float32 coefficients per pixel). Measured against a dense
``[B, C, H, W]`` autograd chain on the same maps (bench/bench_losses.py), this is about 7 times
faster on a CPU (6.9 ×, docs/benchmarks.md) and keeps about a tenth of the memory for backward.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable

from lossd.errors import DataFormatError, InvalidOptionError
from lossd.losses._functional import (
    binary_as_two_classes,
    check_ignore_index,
    check_max_iter,
    check_num_classes,
    eager,
)
from lossd.ops.distance import region_distance_maps

__all__ = [
    "DistanceLoss",
    "TargetDistanceMaps",
    "distance_loss",
    "first_max_index",
    "target_distance_maps",
]

_DIFF_EPS = 1e-6
"""Offset inside the log normaliser, ``log1p(diff + 1e-6)`` (docs/lossd.md, step 4)."""

_REDUCTIONS = ("mean", "sum")
_IGNORE_MODES = ("authors", "exclude")


class TargetDistanceMaps(NamedTuple):
    """Target-side distance maps of one batch (docs/lossd.md, steps 2-3), without gradient.

    Attributes:
        depth: ``[B, H, W]`` integer tensor, the depth of each pixel inside the true region of
            its own class (``pos`` of step 3 for that class), capped at ``max_iter``.
        outside: ``[B, C, H, W]`` integer tensor, the distance of each pixel to the true region
            of each class (``-full`` of step 3 outside the region), capped at ``max_iter``;
            ``max_iter`` where the image has no pixel of the class, 0 inside the region.
        max_iter: The cap the maps were computed with.
        ignore_index: The ignore value the maps were computed with (``None``: no ignore).
            The maps do not depend on ``ignore_mode`` (ignored pixels belong to no class's
            region in both conventions, and their depth is 0).
    """

    depth: Tensor
    outside: Tensor
    max_iter: int
    ignore_index: int | None

    def packed(self) -> Tensor:
        """Both maps in one new tensor ``[B, C + 1, H, W]``: ``outside``, then ``depth``.

        The form :class:`~lossd.losses.DistanceMapsTransform` returns per sample (without the
        batch dimension), which a ``DataLoader``'s default collate stacks into a batch.
        """
        return torch.cat([self.outside, self.depth.unsqueeze(1)], dim=1)

    @classmethod
    def from_packed(
        cls, packed: Tensor, max_iter: int, ignore_index: int | None
    ) -> TargetDistanceMaps:
        """The maps of :meth:`packed` (``[B, C + 1, H, W]``), computed with these options.

        Raises:
            DataFormatError: If ``packed`` is not an integer ``[B, C + 1, H, W]`` tensor.
        """
        if (
            not isinstance(packed, Tensor)
            or packed.ndim != 4
            or packed.shape[1] < 2
            or packed.dtype.is_floating_point
            or packed.dtype == torch.bool
        ):
            shape = tuple(packed.shape) if isinstance(packed, Tensor) else type(packed).__name__
            raise DataFormatError(
                f"packed distance maps {shape} are not valid; expected an integer tensor "
                "[B, C + 1, H, W] from DistanceMapsTransform (or TargetDistanceMaps.packed)"
            )
        return cls(packed[:, -1], packed[:, :-1], max_iter, ignore_index)


def _check_target(target: Tensor, num_classes: int, ignore_index: int | None) -> None:
    """Raise DataFormatError unless target is ``[B, H, W]`` integer with values in range.

    Costs one host-device synchronisation (the value check).
    """
    if not isinstance(target, Tensor):
        raise DataFormatError(f"target is a {type(target).__name__}; expected a torch.Tensor")
    if target.dtype.is_floating_point or target.dtype.is_complex or target.dtype == torch.bool:
        raise DataFormatError(
            f"target has dtype {target.dtype}; expected an integer tensor of class indices"
        )
    if target.ndim != 3:
        raise DataFormatError(
            f"target has shape {tuple(target.shape)}; expected [B, H, W] class indices"
        )
    bad = (target < 0) | (target >= num_classes)
    if ignore_index is not None:
        bad &= target != ignore_index
    if bool(bad.any()):
        value = int(target[bad][0])
        allowed = f"0..{num_classes - 1}"
        if ignore_index is not None:
            allowed += f" or ignore_index={ignore_index}"
        else:
            allowed += " (ignore_index is None; set it to ignore a label value)"
        raise DataFormatError(f"target contains the label value {value}; expected {allowed}")


def _label_with_sentinel(target: Tensor, num_classes: int, ignore_index: int | None) -> Tensor:
    """Target as int64 with ignored pixels relabelled ``num_classes`` (belongs to no class)."""
    label = target.long()
    if ignore_index is not None:
        label = label.masked_fill(target == ignore_index, num_classes)
    return label


@eager
@torch.no_grad()
def target_distance_maps(
    target: Tensor,
    num_classes: int,
    max_iter: int = 50,
    ignore_index: int | None = None,
) -> TargetDistanceMaps:
    """Compute the target-side maps of Lossd once per batch (no gradient).

    Pass the result to :meth:`DistanceLoss.forward` or :func:`distance_loss` as ``maps``
    together with the same ``target`` (e.g. computed in a ``collate_fn`` or a data-loading
    thread; per sample in the workers: :class:`~lossd.losses.DistanceMapsTransform`). The target is
    validated here, which costs one host-device synchronisation; ``DistanceLoss`` with
    precomputed maps needs none.

    Args:
        target: Class indices.
        num_classes: Number of classes ``C`` (>= 1).
        max_iter: Distance cap of docs/lossd.md, step 2 (>= 1).
        ignore_index: Label value of ignored pixels, or ``None`` (the reference: no ignore).
            Ignored pixels count as "not c" for every class (docs/lossd.md, "Beyond the
            reference").

    Shape:
        - target: ``[B, H, W]``, integer dtype.
        - depth: ``[B, H, W]``; outside: ``[B, C, H, W]``; both ``uint8`` for
          ``max_iter <= 127``, a wider integer type above.

    Returns:
        The maps, on the device of ``target``.

    Raises:
        InvalidOptionError: If ``num_classes`` or ``max_iter`` is not an integer >= 1, or
            ``ignore_index`` is neither an integer nor ``None``.
        DataFormatError: If ``target`` is not an integer ``[B, H, W]`` tensor or holds a value
            outside ``0..C-1`` that is not ``ignore_index``.

    Reference:
        docs/lossd.md, Definition, steps 2-3.
    """
    check_num_classes(num_classes)
    check_max_iter(max_iter)
    check_ignore_index(ignore_index)
    return _label_and_maps(target, num_classes, max_iter, ignore_index)[1]


@eager
@torch.no_grad()
def _label_and_maps(
    target: Tensor, num_classes: int, max_iter: int, ignore_index: int | None
) -> tuple[Tensor, TargetDistanceMaps]:
    """The checked target's label map (ignore pixels as class ``num_classes``) and its maps."""
    _check_target(target, num_classes, ignore_index)
    label = _label_with_sentinel(target, num_classes, ignore_index)
    outside, depth = region_distance_maps(label, num_classes, max_iter)
    if ignore_index is not None:
        depth.masked_fill_(label == num_classes, 0)  # not used; 0 keeps the map readable
    return label, TargetDistanceMaps(depth, outside, max_iter, ignore_index)


def _normalised(diff: Tensor, max_iter: int) -> tuple[Tensor, Tensor]:
    """``n = log1p(diff + 1e-6) / log1p(max_iter)`` and ``dn/d diff`` (docs/lossd.md, step 4)."""
    shifted = diff + _DIFF_EPS
    scale = math.log1p(max_iter)
    return torch.log1p(shifted) / scale, 1.0 / ((1.0 + shifted) * scale)


def _term_tables(weights: Tensor, max_iter: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per (class, diff) tables of the weighted terms of docs/lossd.md, step 4.

    Returns ``excess[c, d] = w_c (n(d) - n(0))``, ``slope[c, d] = w_c d n'(d)`` (the size of
    ``d value / d m_c`` at a pixel with ``diff = d``), flattened, and ``n(0)``.
    """
    levels = torch.arange(max_iter + 1, dtype=torch.float32, device=weights.device)
    normalised, slope = _normalised(levels, max_iter)
    excess = weights.unsqueeze(1) * (normalised - normalised[0])
    coef = weights.unsqueeze(1) * (levels * slope)
    return excess.reshape(-1), coef.reshape(-1), normalised[0]


def first_max_index(logits: Tensor) -> Tensor:
    """Index of the first maximal logit along dim 1, like ``logits.max(dim=1).indices``.

    Computed as ``C - max_c((x_c == max x) * (C - c))``, which on CPU is about three times
    faster than ``max(dim=1)`` (a reduction over a strided dimension that returns indices).
    A pixel whose logits hold NaN (no class equals the maximum) gets class ``C - 1``.
    """
    num_classes = logits.shape[1]
    rank = torch.arange(num_classes, 0, -1, device=logits.device).view(1, num_classes, 1, 1)
    is_max = logits == logits.amax(dim=1, keepdim=True)
    if num_classes < 256:
        # bool and uint8 share their layout: reinterpret instead of a converting copy.
        score = is_max.view(torch.uint8).mul_(rank.to(torch.uint8))
    else:
        score = is_max.to(torch.int32).mul_(rank)
    return num_classes - score.amax(dim=1).clamp_(min=1).long()


# The option ``sparse`` (DistanceLoss, distance_loss): the terms and the gradient of Lossd are
# zero wherever the prediction is right (docs/lossd.md, "How it is computed"), so the forward can
# gather the misclassified pixels (one ``nonzero``) and the backward compute the softmax and its
# Jacobian on them alone, writing the gradient into zeros: with 20 % of the pixels wrong,
# forward + backward are about a third cheaper on a CPU. The values equal the dense pass up to
# the summation order (tests/losses/test_distance.py), which is why it is not the default: a
# training run with it is not the same to the last digit. On CUDA ``nonzero`` synchronises the
# host with the device at every step; keep the dense pass there.


def _compact_index(index: Tensor, num_values: int) -> Tensor:
    """Store a class-index map in uint8 when it fits (it is only saved for backward)."""
    return index.to(torch.uint8) if num_values <= 256 else index


class _LossdFunction(torch.autograd.Function):
    """Lossd value with a closed-form backward (see the module docstring)."""

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        logits: Tensor,
        label: Tensor,
        depth: Tensor,
        outside: Tensor,
        weights: Tensor,
        selected: Tensor,
        max_iter: int,
        mean: bool,
        has_ignore: bool,
        keep_ignored: bool,
        sparse: bool,
    ) -> Tensor:
        num_classes = logits.shape[1]
        with torch.autocast(device_type=logits.device.type, enabled=False):
            # Step 1: k = argmax(softmax(x)) = the first maximal logit (see the module note).
            pred = first_max_index(logits.detach())
            # Ignored pixels carry the label num_classes (no class). ``wrong`` marks the
            # pixels whose predicted class has a term (k != t), ``missed`` those whose true
            # class has one (k != t and t is a class); they differ only at ignored pixels
            # kept in the sum (ignore_mode="authors"), which have no true class.
            neq = pred != label
            if has_ignore and not keep_ignored:
                valid = label != num_classes
                true_class = label.clamp(max=num_classes - 1)
                pred_seen = pred.masked_fill(~valid, num_classes)
                wrong = missed = neq & valid
                num_valid = valid.sum().float()
            else:
                # every pixel is in the mean; torch.full fills on the device (no host sync)
                num_valid = torch.full((), float(label.numel()), device=label.device)
                pred_seen, wrong = pred, neq
                if has_ignore:  # "authors": an ignored pixel has no true class, hence no term
                    true_class = label.clamp(max=num_classes - 1)
                    missed = neq & (label != num_classes)
                else:
                    true_class, missed = label, neq
            # Step 5: classes taken = selected classes seen in the prediction or the target.
            if sparse:  # bincount is faster on CPU (on CUDA it would synchronise)
                bins = num_classes + 1
                seen = torch.bincount(pred_seen.reshape(-1), minlength=bins)
                seen = seen.add_(torch.bincount(label.reshape(-1), minlength=bins)) > 0
            else:
                seen = torch.zeros(num_classes + 1, dtype=torch.bool, device=label.device)
                seen.scatter_(0, pred_seen.reshape(-1), True).scatter_(0, label.reshape(-1), True)
            taken = seen[:num_classes] & selected
            # 1 / (pixels in the mean * classes taken), or 1 / pixels for "sum".
            per_mean = 1.0 / num_valid.clamp(min=1.0)
            if mean:
                per_mean = per_mean / taken.sum().clamp(min=1).float()
            # Step 4 at the only pixels where diff != 0 (k != t): diff = distance of the
            # pixel to the true region of k for class k, its depth in its region for class t;
            # diff = 0 elsewhere. diff is an integer in 0..max_iter, so the per-class terms
            # are looked up in tables indexed by class * (max_iter + 1) + diff.
            excess_table, coef_table, n_zero = _term_tables(weights, max_iter)
            # Every taken class adds n(0) at each valid pixel, plus the excess of its errors.
            constant = n_zero * (weights * taken).sum() * num_valid
            if sparse:
                # Only the pixels with a term (``wrong``): their flat indices, then every
                # per-pixel quantity on them alone (the option ``sparse``).
                index = wrong.reshape(-1).nonzero().squeeze(1)
                pred, true_class = pred.reshape(-1)[index], true_class.reshape(-1)[index]
                size = label.shape[1] * label.shape[2]
                image = torch.div(index, size, rounding_mode="floor")
                at_pred = (image * num_classes + pred) * size + (index - image * size)
                dist_pred = outside.take(at_pred)  # logical indices: no copy of the view
                depth_true = depth.take(index)
                if missed is not wrong:
                    depth_true = depth_true * missed.reshape(-1)[index]
            else:
                dist_pred = outside.gather(1, pred.unsqueeze(1)).squeeze(1)  # 0 where k == t
                if has_ignore and not keep_ignored:
                    dist_pred = dist_pred * wrong
                depth_true = depth * missed
            key_pred = pred * (max_iter + 1) + dist_pred
            key_true = true_class * (max_iter + 1) + depth_true
            excess = excess_table.take(key_pred).add_(excess_table.take(key_true))
            value = (constant + excess.sum()) * per_mean
            # d value / d m: +w_k dist slope at c = k, -w_t depth slope at c = t (abs' = sign).
            coef_pred = coef_table.take(key_pred).mul_(per_mean)
            coef_true = coef_table.take(key_true).mul_(-per_mean)
        ctx.sparse = sparse  # type: ignore[attr-defined]
        ctx.save_for_backward(
            logits,
            index if sparse else torch.empty(0, dtype=torch.long),
            _compact_index(pred, num_classes),
            _compact_index(true_class, num_classes),
            coef_pred,
            coef_true,
        )
        return value

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_value: Tensor) -> tuple[Tensor | None, ...]:
        logits, index, pred, true_class, coef_pred, coef_true = ctx.saved_tensors
        with torch.autocast(device_type=logits.device.type, enabled=False):
            if ctx.sparse:  # the logits of the pixels with a term, [C, N]; 0 elsewhere
                num_classes, height, width = logits.shape[1:]
                size = height * width
                image = torch.div(index, size, rounding_mode="floor")
                first = image * (num_classes * size) + (index - image * size)
                channels = torch.arange(num_classes, device=index.device) * size
                offsets = channels.unsqueeze(1) + first  # logical flat indices, [C, N]
                # [C, N], not [N, C]: the softmax and gathers then run along long rows
                prob = torch.softmax(logits.take(offsets).float(), dim=0)
                dim = 0
            else:
                prob = torch.softmax(logits.float(), dim=1)
                dim = 1
            pred = pred.long().unsqueeze(dim)
            true_class = true_class.long().unsqueeze(dim)
            # Softmax Jacobian with the sparse dL/dp: dL/dx = p * (g - <p, g>).
            from_pred = prob.gather(dim, pred) * (coef_pred * grad_value).unsqueeze(dim)
            from_true = prob.gather(dim, true_class) * (coef_true * grad_value).unsqueeze(dim)
            grad = prob.mul_(-(from_pred + from_true))
            grad.scatter_add_(dim, pred, from_pred).scatter_add_(dim, true_class, from_true)
            if ctx.sparse:
                rows = grad
                grad = torch.zeros(logits.shape, dtype=rows.dtype, device=rows.device)
                grad.put_(offsets, rows)
        return grad.to(logits.dtype), None, None, None, None, None, None, None, None, None, None


_Maps = TargetDistanceMaps | Tensor


def _checked_classes(num_classes: int, classes: Sequence[int] | None) -> list[int]:
    if classes is None:
        return list(range(num_classes))
    class_list = list(classes)
    if not class_list:
        raise InvalidOptionError("classes=[] is empty; pass None for all classes")
    for c in class_list:
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < num_classes:
            raise InvalidOptionError(
                f"classes contains {c!r}; expected class indices in 0..{num_classes - 1}"
            )
    if len(set(class_list)) != len(class_list):
        raise InvalidOptionError(f"classes={class_list} has duplicates; list each once")
    return class_list


def _checked_weights(class_list: list[int], class_weights: Sequence[float] | None) -> list[float]:
    if class_weights is None:
        return [1.0] * len(class_list)
    weight_list = [float(w) for w in class_weights]
    if len(weight_list) != len(class_list):
        raise InvalidOptionError(
            f"class_weights has {len(weight_list)} entries but classes has "
            f"{len(class_list)} ({class_list}); expected one weight per class"
        )
    bad = [w for w in weight_list if not (math.isfinite(w) and w >= 0.0)]
    if bad:
        raise InvalidOptionError(f"class_weights contains {bad[0]!r}; expected finite weights >= 0")
    return weight_list


def _check_choices(reduction: str, ignore_mode: str) -> None:
    if reduction not in _REDUCTIONS:
        raise InvalidOptionError(f"reduction={reduction!r}; expected one of {_REDUCTIONS}")
    if ignore_mode not in _IGNORE_MODES:
        raise InvalidOptionError(
            f"ignore_mode={ignore_mode!r}; expected one of {_IGNORE_MODES} ('exclude': "
            "ignored pixels leave the mean; 'authors': they stay in it as background)"
        )


def _class_tables(
    num_classes: int, classes: Sequence[int] | None, class_weights: Sequence[float] | None
) -> tuple[Tensor, Tensor, tuple[int, ...]]:
    """Per-class weights (0 outside ``classes``), the selection mask and the class tuple (CPU)."""
    class_list = _checked_classes(num_classes, classes)
    weight_list = _checked_weights(class_list, class_weights)
    weights = torch.zeros(num_classes, dtype=torch.float32)
    weights[class_list] = torch.tensor(weight_list, dtype=torch.float32)
    selected = torch.zeros(num_classes, dtype=torch.bool)
    selected[class_list] = True
    return weights, selected, tuple(class_list)


def _check_logits(logits: Tensor, target: Tensor, num_classes: int | None) -> None:
    """Logits ``[B, C, H, W]`` (C = ``num_classes``; 1 channel for 2 classes) and target shape."""
    if not isinstance(logits, Tensor) or not logits.dtype.is_floating_point:
        kind = logits.dtype if isinstance(logits, Tensor) else type(logits).__name__
        raise DataFormatError(f"logits are {kind}; expected a floating-point tensor")
    channels = logits.shape[1] if logits.ndim == 4 else -1
    binary = channels == 1 and num_classes in (None, 2)
    if channels < 1 or (num_classes is not None and channels != num_classes and not binary):
        expected = "C" if num_classes is None else str(num_classes)
        raise DataFormatError(
            f"logits have shape {tuple(logits.shape)}; expected [B, {expected}, H, W]"
            + (" (or [B, 1, H, W] for binary masks)" if num_classes == 2 else "")
        )
    expected_shape = (logits.shape[0], *logits.shape[2:])
    if not isinstance(target, Tensor) or tuple(target.shape) != expected_shape:
        shape = tuple(target.shape) if isinstance(target, Tensor) else type(target).__name__
        raise DataFormatError(f"target has shape {shape}; expected {expected_shape} (B, H, W)")


def _check_maps(maps: TargetDistanceMaps, target: Tensor, num_classes: int, max_iter: int,
                ignore_index: int | None) -> None:  # fmt: skip
    if maps.max_iter != max_iter or maps.ignore_index != ignore_index:
        raise InvalidOptionError(
            f"maps were computed with max_iter={maps.max_iter}, "
            f"ignore_index={maps.ignore_index}; this loss has max_iter={max_iter}, "
            f"ignore_index={ignore_index}"
        )
    expected = (target.shape[0], num_classes, *target.shape[1:])
    if tuple(maps.outside.shape) != expected or maps.depth.shape != target.shape:
        raise DataFormatError(
            f"maps have outside {tuple(maps.outside.shape)} and depth "
            f"{tuple(maps.depth.shape)}; expected {expected} and {tuple(target.shape)}"
        )


def _lossd(
    logits: Tensor,
    target: Tensor,
    weights: Tensor,
    selected: Tensor,
    max_iter: int,
    reduction: str,
    ignore_index: int | None,
    ignore_mode: str,
    maps: _Maps | None,
    sparse: bool = False,
) -> Tensor:
    """Lossd of checked options (``weights``/``selected`` from :func:`_class_tables`)."""
    num_classes = weights.shape[0]
    _check_logits(logits, target, num_classes)
    if logits.shape[1] == 1:
        logits = binary_as_two_classes(logits)
    target = target.to(logits.device)
    if maps is None:  # the options were checked by the caller: only the target here
        label, maps = _label_and_maps(target, num_classes, max_iter, ignore_index)
    else:
        if not isinstance(maps, TargetDistanceMaps):
            maps = TargetDistanceMaps.from_packed(maps, max_iter, ignore_index)
        _check_maps(maps, target, num_classes, max_iter, ignore_index)
        label = _label_with_sentinel(target, num_classes, ignore_index)
    device = logits.device
    value: Tensor = _LossdFunction.apply(
        logits,
        label,
        maps.depth.to(device),
        maps.outside.to(device),
        weights.to(device),
        selected.to(device),
        max_iter,
        reduction == "mean",
        ignore_index is not None,
        ignore_mode == "authors",
        bool(sparse),
    )
    return value


def distance_loss(
    logits: Tensor,
    target: Tensor,
    *,
    classes: Sequence[int] | None = None,
    class_weights: Sequence[float] | None = None,
    max_iter: int = 50,
    reduction: Literal["mean", "sum"] = "mean",
    ignore_index: int | None = None,
    ignore_mode: Literal["authors", "exclude"] = "exclude",
    maps: _Maps | None = None,
    sparse: bool = False,
) -> Tensor:
    """Lossd, the function of :class:`DistanceLoss` (the number of classes is the logits').

    Args:
        logits: Network output (before softmax), ``[B, C, H, W]``; binary masks
            ``[B, 1, H, W]`` are the two classes ``[-x/2, x/2]`` (docs/api.md, "Binary masks").
        target: Class indices ``[B, H, W]``.
        classes: Class indices the loss looks at; ``None`` = all.
        class_weights: One weight (finite, >= 0) per entry of ``classes``; ``None`` = 1 each.
        max_iter: Distance cap of docs/lossd.md, step 2 (>= 1).
        reduction: ``"mean"`` over the classes taken, or ``"sum"``.
        ignore_index: Label value of ignored pixels, or ``None`` (the reference).
        ignore_mode: ``"exclude"`` or ``"authors"`` (see :class:`DistanceLoss`).
        maps: The target maps of this ``target`` computed with this ``max_iter`` and
            ``ignore_index``: a :class:`TargetDistanceMaps` (checked against the options), or
            the packed ``[B, C + 1, H, W]`` batch of :class:`~lossd.losses.DistanceMapsTransform`
            (only its shape is checked); ``None`` computes them here.
        sparse: Compute on the misclassified pixels only (see :class:`DistanceLoss`).

    Returns:
        The loss, a float32 scalar (see :class:`DistanceLoss`).

    Raises:
        DataFormatError: For logits, target or maps of the wrong shape or dtype, or a target
            value outside ``0..C-1`` that is not ``ignore_index``.
        InvalidOptionError: For an option out of range, or maps computed with other options.
    """
    if not isinstance(logits, Tensor) or logits.ndim != 4:
        _check_logits(logits, target, None)
    num_classes = max(2, logits.shape[1])
    check_max_iter(max_iter)
    check_ignore_index(ignore_index)
    _check_choices(reduction, ignore_mode)
    weights, selected, _ = _class_tables(num_classes, classes, class_weights)
    return _lossd(
        logits,
        target,
        weights,
        selected,
        max_iter,
        reduction,
        ignore_index,
        ignore_mode,
        maps,
        sparse,
    )


class DistanceLoss(nn.Module):
    """Lossd, the distance loss of Ma et al. (2026), exact and vectorised over classes.

    Scores each predicted class region against the ground truth with truncated signed
    Manhattan distance maps: a false positive far outside the true region, or a missed pixel
    deep inside it, costs more than an error on the boundary (docs/lossd.md). Values and
    gradients equal the reference semantics of docs/lossd.md; computation is in float32 whatever
    the logits' dtype (also under ``torch.autocast``), and the result is a float32 scalar.

    Args:
        num_classes: Number of classes ``C`` of the logits (>= 2; binary masks: 2, with
            logits ``[B, 1, H, W]`` or ``[B, 2, H, W]``).
        classes: Class indices the loss looks at (the paper's ``label_list``); ``None`` = all.
        class_weights: One weight (finite, >= 0) per entry of ``classes`` (per class if
            ``classes`` is ``None``); ``None`` = 1 each.
        max_iter: Distance cap of docs/lossd.md, step 2 (>= 1); 50 in the authors' code.
        reduction: ``"mean"`` divides the weighted sum of the per-class terms by the number of
            classes taken (docs/lossd.md, step 5); ``"sum"`` returns the weighted sum.
        ignore_index: Label value of ignored pixels, or ``None`` (default, the reference).
            Ignored pixels count as "not c" for the distance maps; ``ignore_mode`` says whether
            they also enter the mean. With no ignored pixel present the value equals the
            reference in both modes.
        ignore_mode: ``"exclude"`` (default; docs/lossd.md, "Beyond the reference"): ignored
            pixels are left out of the mean and of the classes taken, and get no gradient.
            ``"authors"``: as the authors' code, which has no ignore handling
            (qwqwqer233/Lossd lossd.py@86ed3c0, lines 162 and 177): ignored pixels are
            background for every class and stay in the mean, so a prediction of class ``k``
            there costs the term of its distance to the true region of ``k``, and ``k``
            counts as taken (see the module docstring). No effect if ``ignore_index`` is
            ``None``.
        sparse: Work on the misclassified pixels only: about a third cheaper on a CPU, the
            same values up to the summation order (so not the same run to the last digit:
            off by default); keep it off on CUDA, where it synchronises at every step.

    Shape:
        - logits: ``[B, C, H, W]``, any floating dtype.
        - target: ``[B, H, W]``, integer class indices in ``0..C-1`` (or ``ignore_index``).
        - output: scalar, float32.

    The class weights and the class selection are two small non-persistent buffers: move the
    module to the logits' device (``loss.to(device)``) to avoid a copy at every call.
    Computing the target maps inside ``forward`` validates the target (one host-device
    synchronisation); with ``maps`` from :func:`target_distance_maps` or from the data loader
    (:class:`~lossd.losses.DistanceMapsTransform`) there is none. The function form is
    :func:`distance_loss`; ``torch.compile(DistanceLoss(C))`` works (the custom backward
    is traced as an autograd function).

    Raises:
        InvalidOptionError: From ``__init__`` for an argument out of range (see Args).

    Reference:
        Ma, Ren, Li, Chen, Acta Aeronautica et Astronautica Sinica 47(8):332780 (2026),
        DOI 10.7527/S1000-6893.2025.32780; docs/lossd.md, Definition, steps 1-5.
    """

    weights: Tensor
    selected: Tensor

    def __init__(
        self,
        num_classes: int,
        classes: Sequence[int] | None = None,
        class_weights: Sequence[float] | None = None,
        max_iter: int = 50,
        reduction: Literal["mean", "sum"] = "mean",
        ignore_index: int | None = None,
        ignore_mode: Literal["authors", "exclude"] = "exclude",
        sparse: bool = False,
    ) -> None:
        super().__init__()
        check_num_classes(num_classes, minimum=2)
        check_max_iter(max_iter)
        _check_choices(reduction, "exclude")
        check_ignore_index(ignore_index)
        _check_choices("mean", ignore_mode)
        weights, selected, class_tuple = _class_tables(num_classes, classes, class_weights)
        self.num_classes = num_classes
        self.classes = class_tuple
        self.max_iter = max_iter
        self.reduction = reduction
        self.ignore_index = ignore_index
        self.ignore_mode = ignore_mode
        self.sparse = bool(sparse)
        self.register_buffer("weights", weights, persistent=False)
        self.register_buffer("selected", selected, persistent=False)

    def extra_repr(self) -> str:
        """Summarise the options in ``repr``."""
        return (
            f"num_classes={self.num_classes}, classes={list(self.classes)}, "
            f"max_iter={self.max_iter}, reduction={self.reduction!r}, "
            f"ignore_index={self.ignore_index}, ignore_mode={self.ignore_mode!r}, "
            f"sparse={self.sparse}"
        )

    def forward(self, logits: Tensor, target: Tensor, maps: _Maps | None = None) -> Tensor:
        """Compute Lossd for a batch.

        Args:
            logits: Network output (before softmax).
            target: Class indices.
            maps: Maps of this ``target`` for this loss's ``max_iter`` and ``ignore_index``:
                from :func:`target_distance_maps`, or the packed batch of
                :class:`~lossd.losses.DistanceMapsTransform` from the data loader; ``None``
                computes them here (one host-device synchronisation for validating
                ``target``; none otherwise).

        Shape:
            - logits: ``[B, C, H, W]`` (binary: ``[B, 1, H, W]`` with ``C = 2``); target:
              ``[B, H, W]``; maps: see :func:`distance_loss`; output: scalar float32.

        Returns:
            The loss; ``0 * logits.sum()``-like zero (keeps the graph) if no class is taken.

        Raises:
            DataFormatError: For logits or target of the wrong shape or dtype, or a target value
                outside ``0..C-1`` that is not ``ignore_index``.
            InvalidOptionError: If ``maps`` were computed with other options.
        """
        return _lossd(
            logits,
            target,
            self.weights,
            self.selected,
            self.max_iter,
            self.reduction,
            self.ignore_index,
            self.ignore_mode,
            maps,
            self.sparse,
        )
