"""Stateless tensor math shared by the region losses and the competing boundary losses.

Everything here is a pure function of tensors: argument checks used by the loss constructors,
one-hot encoding with an ignore value, boundary maps (max-pool and one-sided edge definitions)
and exact distance transforms (Manhattan by separable running minima, Euclidean by the
separable squared-distance decomposition or ``scipy.ndimage``).

The distance transforms follow the separable construction of the exact distance transform:
first the 1-D distance along each column, then a minimum along each row (Felzenszwalb &
Huttenlocher, "Distance Transforms of Sampled Functions", Theory of Computing 8, 2012,
Sec. 2-3). For the L1 metric the row minimum of ``f(j') + |j - j'|`` splits into a forward
and a backward running minimum, so the whole transform is four ``cummin`` calls.
"""

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor

from lossd.errors import DataFormatError, InvalidOptionError

__all__ = [
    "check_choice",
    "check_classes",
    "check_ignore_index",
    "check_inputs",
    "check_number",
    "euclidean_distance_to",
    "one_hot",
    "one_sided_edges",
    "promote_float",
    "resolve_classes",
    "signed_distance_map",
    "soft_boundary",
    "valid_mask",
    "zero_with_graph",
]

_EDT_ROWS_REGATHER_EVERY = 16
"""Offsets of the torch Euclidean transform between two gathers of unfinished rows (a sync)."""


# --------------------------------------------------------------------------- argument checks


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


def _euclidean_distance_to_scipy(features: Tensor) -> Tensor:
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
    there). Both give the same numbers up to float32 rounding.

    Args:
        features: Bool masks, shape [..., H, W].

    Returns:
        float32 tensor of the shape of ``features``, without gradient.
    """
    features = features.detach().bool()
    if features.is_cuda:
        return _euclidean_distance_to_torch(features)
    return _euclidean_distance_to_scipy(features)


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
