"""Stateless tensor math shared by the losses of the project.

Everything here is a pure function of tensors: argument checks used by the loss functions and
constructors, the common opening of every loss (:func:`prepare_inputs`: input checks, binary
masks as two classes, float32 promotion, class selection, valid pixels, probabilities),
one-hot encoding with an ignore value, boundary maps (max-pool and one-sided edge definitions)
and the exact Euclidean distance transform (the separable squared-distance decomposition or
``scipy.ndimage``; the Manhattan transforms are :mod:`lossd.ops.distance`).

**Binary masks.** Logits with one channel, ``x`` of shape ``[B, 1, H, W]``, with targets in
``{0, 1}``, are the two-class problem of the logits ``[-x/2, x/2]`` (:func:`binary_as_two_classes`).
Their softmax is ``[1 - sigmoid(x), sigmoid(x)]``, so the probability of class 1 is the sigmoid of
the logit, and the predicted class is 1 exactly where ``x > 0``; every loss then computes its
two-class value on these logits.

**Optional accelerators.** ``scipy`` (Euclidean transform on CPU) is imported on first use when
it is installed; without it the exact torch transform runs on CPU too (same numbers up to
float32 rounding). Nothing here needs it: ``pip install lossd`` depends on torch and numpy only.

The Euclidean transform follows the separable construction of the exact distance transform:
first the 1-D distance along each column (two running minima), then along each row the
minimum of ``g(i, j')^2 + (j - j')^2`` over the column offsets (Felzenszwalb & Huttenlocher,
"Distance Transforms of Sampled Functions", Theory of Computing 8, 2012, Sec. 2-3).
"""

import functools
import importlib
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Literal, NamedTuple, ParamSpec, TypeVar, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lossd.errors import DataFormatError, InvalidOptionError

__all__ = [
    "LossInputs",
    "binary_as_two_classes",
    "check_choice",
    "check_classes",
    "check_ignore_index",
    "check_inputs",
    "check_number",
    "eager",
    "euclidean_distance_to",
    "float32_math",
    "one_hot",
    "one_sided_edges",
    "optional_module",
    "prepare_inputs",
    "promote_float",
    "resolve_classes",
    "signed_distance_map",
    "soft_boundary",
    "valid_mask",
    "zero_with_graph",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")

_EDT_ROWS_REGATHER_EVERY = 16
"""Offsets of the torch Euclidean transform between two gathers of unfinished rows (a sync)."""


# --------------------------------------------------------------------------- argument checks


def check_max_iter(max_iter: int) -> None:
    """Check Lossd's distance cap (docs/lossd.md, step 2) is an integer >= 1.

    Raises:
        InvalidOptionError: Otherwise.
    """
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise InvalidOptionError(f"max_iter={max_iter!r}; expected an integer >= 1")


def check_num_classes(num_classes: int, minimum: int = 1) -> None:
    """Check a class count is an integer >= ``minimum``.

    Raises:
        InvalidOptionError: Otherwise (``minimum`` 2 mentions binary masks).
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < minimum:
        hint = " (2 for binary masks)" if minimum == 2 else ""
        raise InvalidOptionError(
            f"num_classes={num_classes!r}; expected an integer >= {minimum}{hint}"
        )


def check_ignore_index(ignore_index: int | None) -> int | None:
    """Return ``ignore_index`` after checking it is an integer or None.

    Raises:
        InvalidOptionError: If it is neither an ``int`` nor None (``bool`` is refused).
    """
    if ignore_index is not None and (
        isinstance(ignore_index, bool) or not isinstance(ignore_index, int)
    ):
        raise InvalidOptionError(
            f"ignore_index={ignore_index!r} is not valid; expected an int label value "
            "(255 in every prepared mask) or None to use every pixel"
        )
    return ignore_index


def check_classes(classes: Sequence[int] | None) -> tuple[int, ...] | None:
    """Return ``classes`` as a tuple after checking it lists distinct non-negative ints.

    Raises:
        InvalidOptionError: If it is empty, holds a non-integer, a negative or a repeated value.
    """
    if classes is None:
        return None
    if isinstance(classes, str) or not isinstance(classes, Sequence):
        raise InvalidOptionError(
            f"classes={classes!r} is not valid; expected a list of class indices or None"
        )
    values = tuple(classes)
    bad = [c for c in values if isinstance(c, bool) or not isinstance(c, int) or c < 0]
    if not values or bad or len(set(values)) != len(values):
        raise InvalidOptionError(
            f"classes={list(values)!r} is not valid; expected a non-empty list of distinct "
            "non-negative class indices, or None for all classes"
        )
    return values


def check_number(
    name: str,
    value: float,
    *,
    minimum: float,
    maximum: float | None = None,
    strict: bool = False,
    integer: bool = False,
    odd: bool = False,
) -> None:
    """Check a numeric option against its bounds (and optionally integrality and parity).

    Args:
        name: Option name used in the message.
        value: The value given by the user.
        minimum: Smallest accepted value.
        maximum: Largest accepted value (inclusive), or None.
        strict: If True the value must be strictly greater than ``minimum``.
        integer: If True the value must be an ``int``.
        odd: If True the value must be odd (kernel sizes that keep the image size).

    Raises:
        InvalidOptionError: If the value is not a number, or breaks one of the conditions.
    """
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    is_number = isinstance(value, kinds) and not isinstance(value, bool)
    if not is_number or value != value:  # NaN fails value != value
        expected = "an int" if integer else "a finite number"
        raise InvalidOptionError(f"{name}={value!r} is not valid; expected {expected}")
    too_small = value <= minimum if strict else value < minimum
    too_large = maximum is not None and value > maximum
    if too_small or too_large or (odd and int(value) % 2 == 0):
        relation = ">" if strict else ">="
        upper = f" and <= {maximum}" if maximum is not None else ""
        parity = " and odd" if odd else ""
        raise InvalidOptionError(
            f"{name}={value!r} is out of range; "
            f"expected a value {relation} {minimum}{upper}{parity}"
        )


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    """Check that ``value`` is one of ``choices``.

    Raises:
        InvalidOptionError: Naming the value and listing the valid choices.
    """
    if value not in choices:
        raise InvalidOptionError(
            f"{name}={value!r} is not valid; expected one of {', '.join(map(repr, choices))}"
        )


def check_inputs(logits: Tensor, target: Tensor) -> None:
    """Check that ``logits`` is [B,C,H,W] floating point and ``target`` is [B,H,W] integer.

    Raises:
        DataFormatError: Naming both shapes or the wrong dtype.
    """
    if logits.ndim != 4 or not logits.is_floating_point():
        raise DataFormatError(
            f"logits of shape {tuple(logits.shape)} and dtype {logits.dtype} are not valid; "
            "expected a floating-point tensor [B, C, H, W]"
        )
    if target.ndim != 3 or target.is_floating_point() or target.dtype == torch.bool:
        raise DataFormatError(
            f"target of shape {tuple(target.shape)} and dtype {target.dtype} is not valid; "
            "expected an integer tensor [B, H, W] of class indices"
        )
    if logits.shape[0] != target.shape[0] or logits.shape[2:] != target.shape[1:]:
        raise DataFormatError(
            f"logits {tuple(logits.shape)} and target {tuple(target.shape)} do not match; "
            "expected target [B, H, W] for logits [B, C, H, W]"
        )


def resolve_classes(classes: tuple[int, ...] | None, num_classes: int) -> list[int]:
    """Return the class indices to use for logits with ``num_classes`` channels.

    Raises:
        InvalidOptionError: If a requested class is not below ``num_classes``.
    """
    if classes is None:
        return list(range(num_classes))
    outside = [c for c in classes if c >= num_classes]
    if outside:
        raise InvalidOptionError(
            f"classes {outside} do not exist in logits with {num_classes} channels; "
            f"expected indices in 0..{num_classes - 1}"
        )
    return list(classes)


def optional_module(name: str) -> ModuleType | None:
    """Import an optional accelerator (``scipy.ndimage``, ``cv2``) or return None if missing.

    Called at each use, not at import time, so that ``import lossd.losses`` loads neither;
    an import already done is a dictionary look-up. A module set to None in ``sys.modules``
    counts as missing (how the tests run the fallbacks).
    """
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# --------------------------------------------------------------------------- the common opening


def eager(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Keep a no-gradient helper out of ``torch.compile`` graphs (``torch.compiler.disable``).

    For the target-side maps and pixel lists of the losses: they carry no gradient, and are
    data-dependent (host-side counts, OpenCV or scipy calls, bool kernels that inductor's C++
    backend of torch 2.14 fails to compile). ``torch.compile`` runs them eagerly between the
    compiled parts; autograd is unaffected.
    """
    disable: Callable[[Callable[_P, _R]], object] = torch.compiler.disable
    return cast(Callable[_P, _R], disable(function))


def float32_math(loss: Callable[_P, Tensor]) -> Callable[_P, Tensor]:
    """Run a loss function with autocast off on the logits' device (decorator).

    Under ``torch.autocast`` the network's logits are float16 or bfloat16; a loss promotes
    them to float32 (:func:`prepare_inputs`), and this keeps autocast from casting its matrix
    products (RMI, ABL) and reductions back to low precision. The first positional argument
    must be the logits.
    """

    @functools.wraps(loss)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Tensor:
        logits = args[0] if args else kwargs.get("logits")
        device = logits.device.type if isinstance(logits, Tensor) else "cpu"
        if device in ("cpu", "cuda") and torch.is_autocast_enabled(device):
            with torch.autocast(device_type=device, enabled=False):
                return loss(*args, **kwargs)
        return loss(*args, **kwargs)

    return wrapper


def binary_as_two_classes(logits: Tensor) -> Tensor:
    """Two-class logits ``[-x/2, x/2]`` of one-channel binary logits ``x`` ([B, 1, H, W]).

    ``softmax([-x/2, x/2]) = [1 - sigmoid(x), sigmoid(x)]``: class 1 has the probability
    ``sigmoid(x)`` of a binary (building, road) model, and is predicted where ``x > 0``
    (``x = 0`` predicts class 0, the first maximum). Logits of any other channel count are
    returned unchanged.
    """
    if logits.ndim != 4 or logits.shape[1] != 1:
        return logits
    half = 0.5 * logits
    return torch.cat([-half, half], dim=1)


class LossInputs(NamedTuple):
    """Checked and prepared inputs of a loss (:func:`prepare_inputs`).

    Attributes:
        logits: float32 (float64 if given) ``[B, C, H, W]``; one-channel binary logits are
            already the two classes of :func:`binary_as_two_classes` (C = 2).
        target: Integer class indices ``[B, H, W]``.
        num_classes: C.
        selected: The class indices the loss uses (``classes``, or all).
        valid: Bool ``[B, H, W]``, False on ignore pixels.
        probs: ``softmax(logits)`` (``"softmax"``), the same times ``valid`` (``"masked"``),
            or None.
    """

    logits: Tensor
    target: Tensor
    num_classes: int
    selected: list[int]
    valid: Tensor
    probs: Tensor | None


def prepare_inputs(
    logits: Tensor,
    target: Tensor,
    ignore_index: int | None,
    classes: tuple[int, ...] | None = None,
    probs: Literal["softmax", "masked"] | None = None,
) -> LossInputs:
    """The opening every loss shares: check, binary to two classes, promote, select, mask.

    Args:
        logits: Raw scores ``[B, C, H, W]``, or ``[B, 1, H, W]`` for binary masks.
        target: Class indices ``[B, H, W]`` (binary: ``{0, 1}``; ``[B, 1, H, W]`` and bool
            are accepted with one-channel logits).
        ignore_index: Label value of ignored pixels, or None.
        classes: Class indices to use, or None for all.
        probs: Which probabilities to compute (see :class:`LossInputs`).

    Returns:
        The prepared inputs.

    Raises:
        DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong.
        InvalidOptionError: If ``classes`` names a channel that ``logits`` lacks.
    """
    if isinstance(logits, Tensor) and logits.ndim == 4 and logits.shape[1] == 1:
        if isinstance(target, Tensor) and target.ndim == 4 and target.shape[1] == 1:
            target = target[:, 0]
        if isinstance(target, Tensor) and target.dtype == torch.bool:
            target = target.to(torch.uint8)
    check_inputs(logits, target)
    logits = binary_as_two_classes(promote_float(logits))
    num_classes = logits.shape[1]
    selected = resolve_classes(classes, num_classes)
    valid = valid_mask(target, ignore_index)
    probabilities = None
    if probs is not None:
        probabilities = torch.softmax(logits, dim=1)
        if probs == "masked":
            probabilities = probabilities * valid.unsqueeze(1)
    return LossInputs(logits, target, num_classes, selected, valid, probabilities)


# --------------------------------------------------------------------------- labels


def valid_mask(target: Tensor, ignore_index: int | None) -> Tensor:
    """Return a bool [B,H,W] mask that is True where the pixel is not ``ignore_index``."""
    if ignore_index is None:
        return torch.ones_like(target, dtype=torch.bool)
    return target != ignore_index


def one_hot(target: Tensor, num_classes: int, ignore_index: int | None = None) -> Tensor:
    """Bool one-hot encoding [B,C,H,W] of ``target`` with ignore pixels all False.

    Labels outside ``0..num_classes-1`` (the ignore value included) get no channel, so an
    ignore pixel is "not c" for every class c. If ``ignore_index`` is itself a class index, its
    pixels are still all False.

    Args:
        target: Class indices, shape [B,H,W].
        num_classes: Number of channels C.
        ignore_index: Label value whose pixels are left out, or None.

    Returns:
        Bool tensor of shape [B,C,H,W].
    """
    classes = torch.arange(num_classes, device=target.device).view(1, num_classes, 1, 1)
    encoded = target.unsqueeze(1) == classes
    if ignore_index is not None:
        encoded &= (target != ignore_index).unsqueeze(1)
    return encoded


def promote_float(logits: Tensor) -> Tensor:
    """Return ``logits`` in float32, or unchanged if float64 (half and bfloat16 are widened).

    Losses are computed in at least float32 even when the network runs under autocast.
    """
    return logits if logits.dtype == torch.float64 else logits.float()


def zero_with_graph(logits: Tensor) -> Tensor:
    """Return a zero connected to ``logits`` (gradient zero, graph kept), float32 or wider."""
    return promote_float(logits).sum() * 0.0 + 0.0  # + 0.0 turns -0.0 into 0.0


# --------------------------------------------------------------------------- boundary maps


def soft_boundary(region: Tensor, kernel_size: int) -> Tensor:
    """Max-pool inner boundary map of soft or hard class regions.

    ``b = maxpool_k(1 - y) - (1 - y)`` (Bokhovkin & Burnaev, ISNN 2019, arXiv 1905.07852,
    Sec. 3): 1 on pixels of the region that have a non-region pixel within the k×k window,
    0 elsewhere for hard maps. Padding is -inf, so the image border is not a boundary.

    Args:
        region: Region maps in [0, 1], shape [B,C,H,W].
        kernel_size: Odd window size k.

    Returns:
        Tensor of the shape of ``region``.
    """
    outside = 1.0 - region
    pooled = F.max_pool2d(outside, kernel_size, stride=1, padding=(kernel_size - 1) // 2)
    return pooled - outside


def one_sided_edges(region: Tensor) -> Tensor:
    """One-pixel class edges as defined by segloss ``get_class_boundaries``.

    Pixel (i, j) is an edge when its membership differs from the pixel below it, (i+1, j),
    or from the pixel to its left, (i, j-1) (segloss, github rafaelvareto/segmentation-loss,
    ``python/segloss/src/dtl.py``; docs/reference.md, "Competing losses"). The definition is
    one-sided: a vertical transition marks the upper pixel, a horizontal one the right pixel.

    Args:
        region: Bool region masks, shape [..., H, W].

    Returns:
        Bool tensor of the shape of ``region``.
    """
    edges = torch.zeros_like(region)
    edges[..., :-1, :] |= region[..., :-1, :] ^ region[..., 1:, :]
    edges[..., :, 1:] |= region[..., :, 1:] ^ region[..., :, :-1]
    return edges


# --------------------------------------------------------------------------- distances


def _column_distance(features: Tensor) -> Tensor:
    """Distance along each column to the nearest True pixel of that column (inf if none)."""
    height = features.shape[-2]
    rows = torch.arange(height, device=features.device, dtype=torch.float32).view(height, 1)
    inf = torch.tensor(float("inf"), device=features.device)
    previous = torch.where(features, rows, -inf).cummax(dim=-2).values
    following = torch.where(features, rows, inf).flip(-2).cummin(dim=-2).values.flip(-2)
    return torch.minimum(rows - previous, following - rows)


def _euclidean_distance_to_torch(features: Tensor) -> Tensor:
    """Exact Euclidean distance transform on any device, slices [N, H, W] in parallel.

    Squared distance = ``min_{j'} g(i, j')^2 + (j - j')^2`` with ``g`` the column distance
    (Felzenszwalb & Huttenlocher 2012, Sec. 2). The row minimum is taken over growing offsets
    k = |j - j'|. A row is finished once k^2 reaches its largest current value, since no
    farther column can improve it; every few offsets the unfinished rows are gathered, so the
    work follows the distances actually present rather than the image width.
    """
    has_feature = features.flatten(-2).any(dim=-1)[..., None, None]
    column_sq = _column_distance(features).square()
    column_sq = torch.where(has_feature, column_sq, 0.0)  # empty slices are finished at once
    width = features.shape[-1]
    rows_sq = column_sq.reshape(-1, width)
    best = rows_sq.clone()
    active = torch.arange(best.shape[0], device=features.device)
    for start in range(1, width, _EDT_ROWS_REGATHER_EVERY):
        unfinished = best[active].amax(dim=-1) > start * start
        active = active[unfinished]
        if active.numel() == 0:
            break
        part, source = best[active], rows_sq[active]
        for offset in range(start, min(start + _EDT_ROWS_REGATHER_EVERY, width)):
            step = float(offset * offset)
            part[:, offset:] = torch.minimum(part[:, offset:], source[:, :-offset] + step)
            part[:, :-offset] = torch.minimum(part[:, :-offset], source[:, offset:] + step)
        best[active] = part
    distances = best.sqrt().reshape(features.shape)
    return torch.where(has_feature, distances, float("inf"))


def _euclidean_distance_to_scipy(features: Tensor, ndimage: ModuleType) -> Tensor:
    """Exact Euclidean distance transform with ``scipy.ndimage`` on CPU, slice by slice."""
    flat = features.detach().cpu().reshape(-1, *features.shape[-2:]).numpy()
    result = np.full(flat.shape, np.inf, dtype=np.float32)
    for index in np.flatnonzero(flat.any(axis=(1, 2))):
        result[index] = ndimage.distance_transform_edt(~flat[index])
    return torch.from_numpy(result).reshape(features.shape).to(features.device)


def euclidean_distance_to(features: Tensor) -> Tensor:
    """Exact Euclidean distance of every pixel to the nearest True pixel of its [H, W] slice.

    0 on True pixels; ``inf`` on every pixel of a slice without any True pixel. Pixels beyond
    the image border are not features. CUDA tensors use a vectorised torch transform that
    stays on the device; CPU tensors use ``scipy.ndimage.distance_transform_edt`` (faster
    there) when scipy is installed, and the torch transform otherwise. Both give the same
    numbers up to float32 rounding.

    Args:
        features: Bool masks, shape [..., H, W].

    Returns:
        float32 tensor of the shape of ``features``, without gradient.
    """
    features = features.detach().bool()
    if features.device.type == "cpu":
        ndimage = optional_module("scipy.ndimage")
        if ndimage is not None:
            return _euclidean_distance_to_scipy(features, ndimage)
    return _euclidean_distance_to_torch(features)


def signed_distance_map(region: Tensor) -> Tensor:
    """Signed Euclidean distance map of binary regions, as ``one_hot2dist`` of Kervadec et al.

    Outside the region the value is the distance to the nearest region pixel (>= 1); inside
    it is ``-(d - 1)`` with d the distance to the nearest outside pixel, so the region's own
    boundary pixels are 0 (LIVIAETS/boundary-loss ``utils.py::one_hot2dist``; docs/reference.md,
    "Competing losses"). A slice whose region is empty is 0 everywhere (as in the reference);
    a slice that is all region has no boundary and is also 0 (the reference leaves this case
    to scipy, which then measures to a point outside the image).

    Args:
        region: Bool masks, shape [..., H, W].

    Returns:
        float32 tensor of the shape of ``region``, without gradient.
    """
    region = region.detach().bool()
    distances = euclidean_distance_to(torch.stack([region, ~region]))
    to_region, to_outside = distances[0], distances[1]
    signed = torch.where(region, 1.0 - to_outside, to_region)
    return torch.where(torch.isfinite(signed), signed, 0.0)
