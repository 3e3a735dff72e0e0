"""Hausdorff distance-transform loss (HD-DT) of Karimi & Salcudean, multi-class.

Karimi & Salcudean, "Reducing the Hausdorff Distance in Medical Image Segmentation with
Convolutional Neural Networks", IEEE Transactions on Medical Imaging 39(2):499-513, 2020
(arXiv 1904.10030), loss "HD-DT" (Eq. 8 as numbered in the issue; the paper text could not be
retrieved here, the formula is the one both reference codes below implement):
``Loss_DT(q, p) = 1/|Ω| Σ_Ω (p - q)² ∘ (d_p^α + d_q^α)``, α = 2.

Reference code read for this module (the brief names it; the paper has no official code):

- github JunMa11/SegWithDistMap at commit 153dabf3bc5d9e48058e1497857ac6b00c7abab8,
  ``code/train_LA_HD.py``: ``compute_dtm`` (lines 86-104: ``distance_transform_edt`` of the
  foreground only, so the map is 0 outside the object), ``hd_loss`` (lines 106-123:
  ``((p - g)² * (d_seg² + d_gt²)).mean()``), the prediction map from ``softmax > 0.5``
  (line 186) and the schedule ``alpha * (CE + Dice) + (1 - alpha) * HD`` with alpha starting
  at 1.0 and lowered by 0.001 after every epoch, floored at 0.001 (lines 164, 190, 241-243);
- MONAI (github Project-MONAI/MONAI at commit d388d1c6fec8cb3a0eebee5b5a0b9776ca59ca83,
  ``monai/losses/hausdorff_loss.py``): ``distance_field`` (lines 106-119) sums the distance
  transforms of the foreground and of the background, so every pixel gets its distance to
  the other side of the boundary, and leaves a mask that is empty or full at 0; ``forward``
  (lines 182-199) uses each channel's ``> 0.5`` mask for the prediction, α = 2.0 (line 46)
  and skips channel 0 by default (``include_background=False``, line 47);
- mmsegmentation (github open-mmlab/mmsegmentation at commit 081c6956c1c6588300f807ea3160ffed
  227b4e57, ``mmseg/models/losses/huasdorff_distance_loss.py``, "modified from" the
  SegWithDistMap file): not trustworthy for multi-class use. ``compute_dtm`` takes
  ``posmask = img_gt[b].byte()`` for every class (line 31), i.e. the map of "any label other
  than 0", so all classes share one foreground map; ``hd_loss`` compares each class
  probability with the label *value* ``gt.float()`` instead of its one-hot channel (line 62);
  the test ``i != ignore_index`` compares a class index with 255 (line 61) and ignore pixels
  are relabelled 0 and kept.
"""

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
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
    euclidean_distance_to,
    float32_math,
    optional_module,
    prepare_inputs,
    zero_with_graph,
)
from lossd.losses.distance import first_max_index  # the argmax of Lossd's prediction

__all__ = [
    "HausdorffDTLoss",
    "boundary_distance_maps",
    "hausdorff_dt_loss",
    "label_distance_maps",
]


def _for_each_image(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(0)``, ..., ``work(count - 1)`` on torch's threads at once.

    The work is OpenCV transforms and large numpy operations, which release the GIL.
    """
    threads = max(1, min(torch.get_num_threads(), count))
    if threads == 1:
        for index in range(count):
            work(index)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, range(count)))


def _label_distance_maps_cv2(labels: Tensor, num_labels: int, cv2: ModuleType) -> Tensor:
    """:func:`label_distance_maps` on CPU, one ``cv2.distanceTransform`` per present label.

    ``cv2.distanceTransform(..., DIST_L2, DIST_MASK_PRECISE)`` is the exact Euclidean transform
    of Felzenszwalb & Huttenlocher (Theory of Computing 8, 2012, Sec. 2-3); it equals
    ``scipy.ndimage.distance_transform_edt`` up to float32 rounding (the tests check it) and is
    several times faster. Pixels beyond the image border are not sources (as scipy).
    """
    flat = labels.detach().cpu().reshape(-1, *labels.shape[-2:]).numpy()
    height, width = flat.shape[-2:]
    result = np.empty((flat.shape[0], num_labels, height, width), dtype=np.float32)

    def image_maps(index: int) -> None:
        image = flat[index]
        counts = np.bincount(image.ravel(), minlength=num_labels)
        for label in range(num_labels):
            if counts[label] == 0:
                result[index, label] = np.inf
                continue
            others = (image != label).view(np.uint8)  # 0 on the sources
            cv2.distanceTransform(
                others, cv2.DIST_L2, cv2.DIST_MASK_PRECISE, dst=result[index, label]
            )

    _for_each_image(flat.shape[0], image_maps)
    return torch.from_numpy(result).reshape(*labels.shape[:-2], num_labels, height, width)


@torch.no_grad()
def label_distance_maps(labels: Tensor, num_labels: int) -> Tensor:
    """Distance of every pixel to the region of each label value, one transform per label.

    CPU tensors use OpenCV (:func:`_label_distance_maps_cv2`) when ``cv2`` is installed (an
    optional accelerator: ``pip install opencv-python-headless``); every other case uses the
    project's transform (:func:`euclidean_distance_to`: scipy on CPU when installed, exact
    torch otherwise). All are exact up to float32 rounding.

    Args:
        labels: Integer label maps [B, H, W] with values in ``0..num_labels-1``.
        num_labels: Number of label values K.

    Returns:
        float32 [B, K, H, W]: 0 on the region of label k, the Euclidean distance to its
        nearest pixel elsewhere, ``inf`` if the image has no pixel of label k.
    """
    cv2 = optional_module("cv2") if labels.device.type == "cpu" else None
    if cv2 is not None:
        return _label_distance_maps_cv2(labels, num_labels, cv2)
    values = torch.arange(num_labels, device=labels.device).view(1, num_labels, 1, 1)
    return euclidean_distance_to(labels.unsqueeze(1) == values)


def _image_boundary_maps(
    image: np.ndarray, num_labels: int, power: float, out: np.ndarray, cv2: ModuleType
) -> None:
    """:func:`boundary_distance_maps` of one label map ``[H, W]`` into ``out`` ``[K, H, W]``.

    The whole computation of one image in one worker (OpenCV and these numpy calls release the
    GIL), so the images run on torch's threads at once and each image's maps stay in cache.
    """
    counts = np.bincount(image.ravel(), minlength=num_labels)
    present = np.flatnonzero(counts)
    if len(present) <= 1:  # one label covers the image: no boundary anywhere
        out.fill(0.0)
        return
    for label in range(num_labels):
        if counts[label] == 0:
            out[label] = np.inf  # neutral in the minimum below, 0 at the end
            continue
        others = (image != label).view(np.uint8)  # 0 on the sources
        cv2.distanceTransform(others, cv2.DIST_L2, cv2.DIST_MASK_PRECISE, dst=out[label])
    own = image[None].astype(np.intp, copy=False)
    np.put_along_axis(out, own, np.inf, axis=0)
    inside = out.min(axis=0, keepdims=True)  # to the nearest pixel of another label
    if power == 2.0:
        np.multiply(out, out, out=out)
        np.multiply(inside, inside, out=inside)
    elif power != 1.0:
        np.power(out, power, out=out)
        np.power(inside, power, out=inside)
    np.put_along_axis(out, own, inside, axis=0)
    out[counts == 0] = 0.0


def _boundary_distance_maps_cv2(
    labels: Tensor, num_labels: int, power: float, cv2: ModuleType
) -> Tensor:
    """:func:`boundary_distance_maps` on CPU with OpenCV, one image per worker thread."""
    flat = labels.detach().cpu().reshape(-1, *labels.shape[-2:]).numpy()
    height, width = flat.shape[-2:]
    result = np.empty((flat.shape[0], num_labels, height, width), dtype=np.float32)

    def image_maps(index: int) -> None:
        _image_boundary_maps(flat[index], num_labels, power, result[index], cv2)

    _for_each_image(flat.shape[0], image_maps)
    return torch.from_numpy(result).reshape(*labels.shape[:-2], num_labels, height, width)


@torch.no_grad()
def boundary_distance_maps(labels: Tensor, num_labels: int, power: float = 1.0) -> Tensor:
    """Unsigned distance of every pixel to the boundary of each label's region (to a power).

    For label k and pixel x: outside the region of k, the Euclidean distance to the nearest
    pixel of k; inside it, the distance to the nearest pixel of another label (MONAI's
    ``distance_field``: transform of the foreground plus transform of the background). An image
    whose region of k is empty or covers it whole has no boundary of k and gets 0 (as MONAI).

    The labels partition each image, so ``num_labels`` transforms give both sides: inside the
    region of k (where the distance to k is 0), the distance to another label is the smallest
    distance to any other label.

    Args:
        labels: Integer label maps [B, H, W] with values in ``0..num_labels-1``.
        num_labels: Number of label values K (a "void" label counts as one).
        power: Exponent applied to the distances (> 0).

    Returns:
        float32 [B, K, H, W] without gradient.
    """
    cv2 = optional_module("cv2") if labels.device.type == "cpu" else None
    if cv2 is not None:
        return _boundary_distance_maps_cv2(labels, num_labels, float(power), cv2)
    distance = label_distance_maps(labels, num_labels)  # 0 on the own label, inf if absent
    own = labels.unsqueeze(1).long()
    distance.scatter_(1, own, float("inf"))
    inside = distance.amin(dim=1, keepdim=True)  # to the nearest pixel of another label
    if power != 1.0:
        distance.pow_(power)
        inside.pow_(power)
    distance.scatter_(1, own, inside)
    return distance.nan_to_num_(posinf=0.0)  # inf: the label is absent, or alone


class _WeightedSquaredError(torch.autograd.Function):
    """``Σ W (softmax(x) - onehot(labels))² · scale`` with a closed-form backward.

    The same value and gradient as the autograd chain ``softmax -> sub -> square -> mul -> sum``;
    written out because on a CPU every ``[B, C, H, W]`` intermediate of that chain is a fresh
    allocation, which costs more than the arithmetic. Backward:
    ``dx = p ⊙ (G - Σ_c p_c G_c)`` with ``G = 2 · scale · W (p - g)``. Pixels whose weights
    are all 0 (ignore pixels) may carry any label.
    """

    @staticmethod
    def forward(ctx: Any, logits: Tensor, weights: Tensor, labels: Tensor, scale: float) -> Tensor:
        probs = torch.softmax(logits, dim=1)
        index = labels.unsqueeze(1)
        error = probs.scatter_add(1, index, probs.new_full(index.shape, -1.0))  # p - g
        weighted = error.mul_(weights)  # W (p - g)
        # Σ W (p - g)² = Σ W (p - g) p - Σ W (p - g) g, and g is 1 at the label only.
        value = torch.dot(weighted.flatten(), probs.flatten()) - weighted.gather(1, index).sum()
        value = value * scale
        ctx.save_for_backward(probs, weighted)
        ctx.scale = scale
        return value

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_value: Tensor) -> tuple[Tensor | None, ...]:
        probs, weighted = ctx.saved_tensors
        grad = weighted * (grad_value * (2.0 * ctx.scale))
        grad.sub_((probs * grad).sum(dim=1, keepdim=True)).mul_(probs)
        return grad, None, None, None


def _distance_weights_cv2(
    both: Tensor, num_labels: int, num_classes: int, alpha: float, cv2: ModuleType
) -> Tensor:
    """``d_g^α + d_k^α`` on CPU with OpenCV: target and prediction of an image in one worker.

    ``both`` stacks the B target maps over the B predicted maps. Each worker thread keeps one
    scratch buffer for the two images' ``[K, H, W]`` maps and writes only their sum, so no
    ``[2B, K, H, W]`` array is allocated (and page-faulted) per call.
    """
    stacked = both.numpy()
    batch, (height, width) = stacked.shape[0] // 2, stacked.shape[-2:]
    result = np.empty((batch, num_classes, height, width), dtype=np.float32)
    scratch = threading.local()

    def image_weights(index: int) -> None:
        maps = getattr(scratch, "maps", None)
        if maps is None:
            maps = scratch.maps = np.empty((2, num_labels, height, width), dtype=np.float32)
        _image_boundary_maps(stacked[index], num_labels, alpha, maps[0], cv2)
        _image_boundary_maps(stacked[batch + index], num_labels, alpha, maps[1], cv2)
        np.add(maps[0, :num_classes], maps[1, :num_classes], out=result[index])

    _for_each_image(batch, image_weights)
    return torch.from_numpy(result)


@eager
def _distance_weights(logits: Tensor, labels: Tensor, valid: Tensor | None, alpha: float) -> Tensor:
    """``d_g^α + d_k^α`` for every class, target and prediction maps in one transform."""
    num_classes = logits.shape[1]
    batch = labels.shape[0]
    both = torch.empty((2 * batch, *labels.shape[1:]), dtype=torch.long, device=labels.device)
    both[:batch] = labels
    both[batch:] = first_max_index(logits.detach())  # argmax, three times faster on a CPU
    num_labels = num_classes
    if valid is not None:  # ignore pixels: a void label in both maps
        both.masked_fill_(~valid.repeat(2, 1, 1), num_classes)
        num_labels += 1
    cv2 = optional_module("cv2") if both.device.type == "cpu" else None
    if cv2 is not None:
        return _distance_weights_cv2(both, num_labels, num_classes, alpha, cv2)
    powered = boundary_distance_maps(both, num_labels, alpha)
    return powered[:batch, :num_classes].add_(powered[batch:, :num_classes])


@float32_math
def hausdorff_dt_loss(
    logits: Tensor,
    target: Tensor,
    *,
    alpha: float = 2.0,
    classes: Sequence[int] | None = None,
    ignore_index: int | None = 255,
) -> Tensor:
    """Distance-weighted squared error, the function of :class:`HausdorffDTLoss`.

    Not ``torch.compile``-able as one graph: the distance maps come from OpenCV or scipy on
    CPU and the number of valid pixels is read on the host; ``torch.compile`` runs those
    parts eagerly (graph breaks) and compiles the rest.

    Args:
        logits: Raw scores [B, C, H, W] (binary masks: [B, 1, H, W]).
        target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.
        alpha: Exponent of the distances.
        classes: Class indices in the sum, or None for all classes.
        ignore_index: Label value to ignore, or None.

    Returns:
        The scalar loss (a graph-connected zero when no pixel is valid).

    Raises:
        DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong.
        InvalidOptionError: For an option out of range, or ``classes`` naming a channel that
            ``logits`` lacks.
    """
    check_number("alpha", alpha, minimum=0.0, strict=True)
    inputs = prepare_inputs(
        logits, target, check_ignore_index(ignore_index), check_classes(classes)
    )
    logits, valid, selected = inputs.logits, inputs.valid, inputs.selected
    num_classes = inputs.num_classes
    num_valid = int(valid.sum())
    if num_valid == 0:
        return zero_with_graph(logits)
    partial = num_valid < valid.numel()
    with torch.no_grad():
        labels = inputs.target.long()
        mask = valid if partial else None
        weights = _distance_weights(logits.detach(), labels, mask, float(alpha))
        weights = weights.to(logits.dtype)
        if partial:
            weights.mul_(valid.unsqueeze(1).to(logits.dtype))
            labels = labels.masked_fill(~valid, 0)  # any class: the weights there are 0
        if len(selected) < num_classes:
            weights[:, [c for c in range(num_classes) if c not in selected]] = 0.0
    scale = 1.0 / (num_valid * len(selected))
    value: Tensor = _WeightedSquaredError.apply(logits, weights, labels, scale)
    return value


class HausdorffDTLoss(nn.Module):
    """HD-DT loss: squared errors weighted by target and prediction boundary distances.

    With ``p = softmax(logits)``, the one-hot target ``g``, the hard prediction ``k`` (the
    argmax of the logits) and, for each class c, the distance maps of
    :func:`boundary_distance_maps` of the target (``d_g``) and of ``k`` (``d_k``), both
    Euclidean and without gradient:

    ``loss = 1 / (N · |classes|) Σ_{valid x} Σ_{c ∈ classes} (p_c - g_c)² (d_g,c^α + d_k,c^α)``

    where N is the number of valid pixels (HD-DT with ``p`` the target and ``q`` the
    prediction, per class, averaged). Distances are float32 and exact up to float32 rounding:
    OpenCV, else scipy, on a CPU (the optional ``speedups`` dependencies), and the project's
    torch transform on CUDA or where neither is installed. Choices, where the sources differ:

    - distances on both sides of the boundary (MONAI ``distance_field``): a false positive far
      outside the true region is weighted by its distance to it, as the HD estimate of the
      paper needs; SegWithDistMap's ``compute_dtm`` uses the foreground transform only
      (0 outside the object);
    - the prediction map is the argmax, the multi-class form of SegWithDistMap's
      ``softmax > 0.5`` (the same for two classes); MONAI thresholds every channel at 0.5,
      which for more than two classes can leave a pixel in no class;
    - all classes by default: in the Potsdam-style label sets channel 0 is a real class
      (impervious surfaces), not a background to skip as MONAI's default does;
    - an image whose region of c is empty or whole has a zero map for c (MONAI).

    Ignore pixels are "not c" for every class in both maps (a void label, so a region next to
    an ignore area has a boundary there), are left out of the sum and of N, and their logits
    get no gradient. With no valid pixel the loss is a zero that keeps the graph.

    Published schedule (implemented by the training objective, not here): SegWithDistMap
    trains ``alpha · (CE + Dice) + (1 - alpha) · HD`` with alpha lowered from 1 by 0.001 per
    epoch (floor 0.001), i.e. :class:`~lossd.losses.StealWeight` with ``to_steal=0.001``,
    ``floor=0.001`` and an initial weight of 0.

    Args:
        alpha: Exponent of the distances (2.0 in the paper and in both reference codes).
        classes: Class indices in the sum, or None for all classes.
        ignore_index: Label value to ignore (255 in prepared masks), or None.

    Shape:
        - logits: [B, C, H, W] (any float dtype; float16 and bfloat16 are computed in float32).
        - target: [B, H, W] integer class indices.
        - output: scalar, float32 (float64 for float64 logits).

    Reference:
        Karimi & Salcudean, IEEE TMI 39(2), 2020 (arXiv 1904.10030), HD-DT, α = 2;
        JunMa11/SegWithDistMap @153dabf ``code/train_LA_HD.py`` lines 86-123 and 164-243;
        MONAI @d388d1c ``monai/losses/hausdorff_loss.py`` lines 106-119 and 182-199.
    """

    def __init__(
        self,
        alpha: float = 2.0,
        classes: Sequence[int] | None = None,
        ignore_index: int | None = 255,
    ) -> None:
        super().__init__()
        check_number("alpha", alpha, minimum=0.0, strict=True)
        self.alpha = float(alpha)
        self.classes = check_classes(classes)
        self.ignore_index = check_ignore_index(ignore_index)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Return the distance-weighted squared error, averaged over valid pixels and classes.

        Args:
            logits: Raw scores [B, C, H, W].
            target: Class indices [B, H, W]; ``ignore_index`` marks ignored pixels.

        Returns:
            The scalar loss (a graph-connected zero when no pixel is valid).

        Raises:
            DataFormatError: If the shapes or dtypes of ``logits`` and ``target`` are wrong.
            InvalidOptionError: If ``classes`` names a channel that ``logits`` lacks.
        """
        return hausdorff_dt_loss(
            logits, target, alpha=self.alpha, classes=self.classes, ignore_index=self.ignore_index
        )

    def extra_repr(self) -> str:
        """Return the options shown by ``repr``."""
        return f"alpha={self.alpha}, classes={self.classes}, ignore_index={self.ignore_index}"
