"""Exact truncated Manhattan (taxicab) distance transforms in torch, for all masks at once.

These are the distance maps of Lossd (Ma, Ren, Li, Chen, "Improving remote sensing image
semantic segmentation based on distance loss", Acta Aeronautica et Astronautica Sinica
47(8):332780, 2026, DOI 10.7527/S1000-6893.2025.32780), defined in docs/lossd.md, Definition,
step 2: ``D(M)`` is, for each pixel of a binary mask ``M``, the number of 4-neighbour steps to
the nearest pixel outside ``M``, capped at ``max_iter``; pixels outside ``M`` get 0, and pixels
beyond the image border are not outside ``M``.

How it is computed. Every map here is a min-plus convolution of a seed cost ``g`` with the L1
kernel, ``f(p) = min_q g(q) + |p - q|_1``, over the last two dimensions. The L1 kernel is
separable, so a pass along the rows followed by a pass along the columns is exact. In 1-D,
``f(i) = min_{i'} g(i') + |i - i'|`` is computed by log-step shifted minima (docs/lossd.md,
"Beyond the reference", Speed):

    after the step with shift s:  f(i) <- min(f(i), f(i - s) + s, f(i + s) + s)

Steps with ``s = 1, 2, 4, ...`` make ``f(i)`` exact over the window ``|i - i'| < 2s``, and
because every seed value lies in ``[0, cap]``, offsets ``>= cap`` can never win, so the loop
stops once the window covers ``min(cap - 1, length - 1)``: ``ceil(log2(min(cap, length)))``
steps (6 for the default ``max_iter = 50``), independent of the number of masks. Seeding with
``g = cap`` on pixels that are not sources clamps the result at ``cap`` for free, which is the
truncation of step 2, and the image border simply contributes no source, which is the "border
is not background" rule. Values stay in ``[0, 2 cap)``, so the maps are computed in the
smallest integer type that holds them (``uint8`` for ``max_iter <= 128``).

The alternative ``f(i) = i + cummin(g - i)`` (and its mirror image) is equally exact; on CPU it
was measured 5-20 times slower than these in-place ``uint8`` minima and it allocates an
``int64`` index tensor per pass, so it is not used.
"""

import torch
from torch import Tensor

__all__ = [
    "depth_in_own_region",
    "distance_dtype",
    "distance_to_regions",
    "taxicab_min_plus_",
    "truncated_taxicab_distance",
]


def distance_dtype(max_iter: int) -> torch.dtype:
    """Smallest integer dtype that holds the intermediate values of a transform capped at max_iter.

    The shifted minima add a shift ``s <= max_iter`` to values ``<= max_iter``, so the dtype must
    hold ``2 * max_iter``.

    Args:
        max_iter: The cap of the distances (>= 1).

    Returns:
        ``torch.uint8``, ``torch.int16``, ``torch.int32`` or ``torch.int64``.
    """
    for dtype in (torch.uint8, torch.int16, torch.int32):
        if 2 * max_iter <= torch.iinfo(dtype).max:
            return dtype
    return torch.int64


def _min_plus_l1_along_(cost: Tensor, dim: int, cap: int, scratch: Tensor) -> None:
    """In place, ``cost(i) <- min_{i'} cost(i') + |i - i'|`` along one dimension.

    Exact when every value of ``cost`` lies in ``[0, cap]`` (see the module docstring).
    ``scratch`` is a buffer of the shape and dtype of ``cost`` (saves an allocation per step).
    """
    length = cost.shape[dim]
    radius = min(cap - 1, length - 1)  # offsets beyond this can never win
    shift, covered = 1, 0
    while covered < radius:
        span = length - shift
        head = cost.narrow(dim, 0, span)  # value at i - shift, seen from i
        tail = cost.narrow(dim, shift, span)
        shifted = scratch.narrow(dim, 0, span)
        torch.minimum(tail, torch.add(head, shift, out=shifted), out=tail)  # from the left
        torch.minimum(head, torch.add(tail, shift, out=shifted), out=head)  # from the right
        covered = 2 * shift - 1
        shift *= 2


def taxicab_min_plus_(cost: Tensor, cap: int) -> Tensor:
    """In place over the last two dims: ``cost(p) <- min_q cost(q) + |p - q|_1`` (exact).

    Every value of ``cost`` must lie in ``[0, cap]``; the result then lies in the same range, and
    seeding non-source pixels with ``cap`` gives the distance to the sources capped at ``cap``.

    Args:
        cost: Integer tensor of shape ``[..., H, W]`` with a dtype from :func:`distance_dtype`
            (``cap``), modified in place.
        cap: Upper bound of the values of ``cost`` (>= 1).

    Returns:
        ``cost`` itself.
    """
    scratch = torch.empty_like(cost)
    _min_plus_l1_along_(cost, -1, cap, scratch)
    _min_plus_l1_along_(cost, -2, cap, scratch)
    return cost


def _seed_cost(not_source: Tensor, cap: int, source_cost: int = 0) -> Tensor:
    """Seed of a transform: ``cap`` where ``not_source`` is True, ``source_cost`` elsewhere.

    ``not_source`` must be a boolean tensor the caller no longer needs: its memory is reused.
    """
    dtype = distance_dtype(cap)
    if dtype == torch.uint8 and source_cost == 0:
        # bool and uint8 share their layout: reinterpret instead of a converting copy.
        return not_source.view(torch.uint8).mul_(cap)
    return torch.full_like(not_source, source_cost, dtype=dtype).masked_fill_(not_source, cap)


def truncated_taxicab_distance(mask: Tensor, max_iter: int) -> Tensor:
    """``D(M)`` of docs/lossd.md, Definition, step 2, for a batch of binary masks.

    For each pixel of ``mask`` the taxicab distance to the nearest pixel outside ``mask``, capped
    at ``max_iter``; 0 outside ``mask``. The image border is not outside ``mask``: a mask that is
    all foreground gives ``max_iter`` everywhere. Equals
    ``min(scipy.ndimage.distance_transform_cdt(mask, metric="taxicab"), max_iter)`` per image
    where the mask has any background.

    Args:
        mask: Boolean tensor of shape ``[..., H, W]``.
        max_iter: The cap (>= 1).

    Returns:
        Integer tensor (dtype :func:`distance_dtype`) of the shape of ``mask``.
    """
    cost = _seed_cost(mask.to(torch.bool, copy=True), max_iter)  # sources: outside the mask
    return taxicab_min_plus_(cost, max_iter)


def distance_to_regions(label: Tensor, num_classes: int, max_iter: int) -> Tensor:
    """Distance of every pixel to the region of every class, capped, for a batch of label maps.

    For class ``c`` this is ``D(label != c)`` of docs/lossd.md, step 2: 0 on the region of ``c``,
    the taxicab distance to it elsewhere, capped at ``max_iter``, and ``max_iter`` everywhere if
    the image has no pixel of ``c``. Labels outside ``0..num_classes-1`` belong to no class.

    Args:
        label: Integer tensor of shape ``[B, H, W]``.
        num_classes: Number of classes ``C``.
        max_iter: The cap (>= 1).

    Returns:
        Integer tensor (dtype :func:`distance_dtype`) of shape ``[B, C, H, W]``.
    """
    classes = torch.arange(num_classes, device=label.device).view(1, num_classes, 1, 1)
    cost = _seed_cost(label.unsqueeze(1) != classes, max_iter)  # sources: the class region
    return taxicab_min_plus_(cost, max_iter)


def depth_in_own_region(label: Tensor, max_iter: int) -> Tensor:
    """Depth of every pixel inside the region of its own label, capped, in one channel.

    The depth of pixel ``p`` with label ``t`` is ``D(label == t)`` of docs/lossd.md, step 2, at
    ``p``: the taxicab distance to the nearest pixel with another label, capped at ``max_iter``
    (``max_iter`` if the image has one label only). It equals ``min(1 + d_B(p), max_iter)``,
    where ``B`` is the set of pixels having a 4-neighbour (inside the image) with a different
    label. Proof: let ``q`` be a nearest pixel with a label other than ``t``, at distance ``d``.
    On a shortest 4-path from ``p`` to ``q``, the pixel before ``q`` is at distance ``d - 1 < d``
    from ``p``, so its label is ``t``; it touches ``q``, so it is in ``B``: ``d_B <= d - 1``.
    Conversely a pixel ``b`` of ``B`` at distance ``e`` either has a label other than ``t`` (then
    ``d <= e``) or has a neighbour with such a label (then ``d <= e + 1``): ``d <= 1 + d_B``.
    Every label value, including an ignore value, is its own label.

    Args:
        label: Integer tensor of shape ``[..., H, W]``.
        max_iter: The cap (>= 1).

    Returns:
        Integer tensor (dtype :func:`distance_dtype`) of the shape of ``label``.
    """
    on_boundary = torch.zeros_like(label, dtype=torch.bool)
    across_columns = label[..., :, 1:] != label[..., :, :-1]
    on_boundary[..., :, 1:] |= across_columns
    on_boundary[..., :, :-1] |= across_columns
    across_rows = label[..., 1:, :] != label[..., :-1, :]
    on_boundary[..., 1:, :] |= across_rows
    on_boundary[..., :-1, :] |= across_rows
    # Seed 1 on B and max_iter elsewhere: the transform gives min(1 + d_B, max_iter).
    cost = _seed_cost(on_boundary.logical_not_(), max_iter, source_cost=1)
    return taxicab_min_plus_(cost, max_iter)
