"""Naive references of the region and competing boundary losses, written from their papers.

Slow on purpose: explicit loops over images, classes and pixels, brute-force distances over
all pixel pairs, windows read pixel by pixel. They share no code with ``lossd.losses``; the
ones built from torch operations on float64 tensors also give reference gradients by autograd.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

IGNORE = 255


def random_case(
    seed: int,
    batch: int = 2,
    classes: int = 3,
    height: int = 6,
    width: int = 7,
    ignore_fraction: float = 0.15,
    scale: float = 2.0,
) -> tuple[Tensor, Tensor]:
    """float64 logits (requires grad) and a blocky target with some ignore pixels."""
    generator = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(batch, classes, height, width, generator=generator)
    coarse = torch.randint(
        0, classes, (batch, 1, (height + 1) // 2, (width + 1) // 2), generator=generator
    )
    target = coarse.repeat_interleave(2, 2).repeat_interleave(2, 3)[:, 0, :height, :width]
    ignored = torch.rand(batch, height, width, generator=generator) < ignore_fraction
    target = torch.where(ignored, IGNORE, target)
    return logits.double().requires_grad_(True), target.long()


def value_and_grad(
    loss: Callable[[Tensor, Tensor], Tensor], logits: Tensor, target: Tensor
) -> tuple[Tensor, Tensor]:
    """Loss value and its gradient with respect to a fresh copy of ``logits``."""
    leaf = logits.detach().clone().requires_grad_(True)
    value = loss(leaf, target)
    (grad,) = torch.autograd.grad(value, leaf, allow_unused=False)
    return value.detach(), grad


def assert_ignore_has_no_effect(
    loss: Callable[[Tensor, Tensor], Tensor],
    logits: Tensor,
    target: Tensor,
    ignore_index: int = IGNORE,
) -> None:
    """Changing logits on ignore pixels changes neither the value nor any gradient, and the
    gradient on ignore pixels is zero."""
    ignored = (target == ignore_index).unsqueeze(1).expand_as(logits)
    assert ignored.any()
    value, grad = value_and_grad(loss, logits, target)
    noise = 5 * torch.randn(logits.shape, generator=torch.Generator().manual_seed(99))
    changed = torch.where(ignored, logits.detach() + noise.to(logits.dtype), logits.detach())
    value2, grad2 = value_and_grad(loss, changed, target)
    torch.testing.assert_close(value2, value, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad2, grad, rtol=1e-9, atol=1e-12)
    assert torch.count_nonzero(grad[ignored]) == 0
    assert torch.count_nonzero(grad[~ignored]) > 0


def assert_all_ignore_gives_connected_zero(
    loss: Callable[[Tensor, Tensor], Tensor], logits: Tensor
) -> None:
    """No valid pixel: the loss is exactly 0, float32, and backward gives zero gradients."""
    leaf = logits.detach().clone().requires_grad_(True)
    target = torch.full((logits.shape[0], *logits.shape[2:]), IGNORE, dtype=torch.long)
    value = loss(leaf, target)
    assert value.dtype == torch.float32
    assert value.requires_grad
    assert float(value.detach()) == 0.0
    value.backward()
    assert leaf.grad is not None
    assert torch.all(leaf.grad == 0)


def pixels(height: int, width: int) -> list[tuple[int, int]]:
    return list(itertools.product(range(height), range(width)))


def is_valid(label: int, ignore_index: int | None) -> bool:
    return ignore_index is None or label != ignore_index


# --------------------------------------------------------------------------- soft CE


def naive_soft_ce(
    logits: Tensor, target: Tensor, eps: float, ignore_index: int | None, reduction: str
) -> Tensor:
    """(1 - eps) * (-log p_y) + eps * mean_c(-log p_c) pixel by pixel."""
    batch, classes, height, width = logits.shape
    terms = []
    for b in range(batch):
        for i, j in pixels(height, width):
            label = int(target[b, i, j])
            if not is_valid(label, ignore_index):
                continue
            scores = logits[b, :, i, j]
            log_norm = torch.log(sum(torch.exp(scores[c]) for c in range(classes)))
            neg_log = [log_norm - scores[c] for c in range(classes)]
            terms.append((1 - eps) * neg_log[label] + eps * sum(neg_log) / classes)
    total = sum(terms, logits.sum() * 0)
    return total / len(terms) if reduction == "mean" else total


# --------------------------------------------------------------------------- Dice


def naive_dice(
    logits: Tensor,
    target: Tensor,
    smooth: float,
    ignore_index: int | None,
    classes: list[int] | None,
    eps: float = 1e-7,
) -> Tensor:
    """Per-class loop of 1 - (2 I + s) / (|P| + |Y| + s), absent classes scoring 0."""
    batch, num_classes, height, width = logits.shape
    probs = torch.softmax(logits, dim=1)
    losses = []
    for c in range(num_classes):
        intersection = logits.sum() * 0
        cardinality = logits.sum() * 0
        count = 0
        for b in range(batch):
            for i, j in pixels(height, width):
                label = int(target[b, i, j])
                if not is_valid(label, ignore_index):
                    continue
                y = 1.0 if label == c else 0.0
                intersection = intersection + probs[b, c, i, j] * y
                cardinality = cardinality + probs[b, c, i, j] + y
                count += int(y)
        denominator = torch.clamp(cardinality + smooth, min=eps)
        dice = (2 * intersection + smooth) / denominator
        losses.append((1 - dice) if count > 0 else dice * 0)
    chosen = range(num_classes) if classes is None else classes
    return sum(losses[c] for c in chosen) / len(list(chosen))


# --------------------------------------------------------------------------- Lovász


def jaccard_loss_of_set(mistakes: set[int], truth: set[int]) -> float:
    """Δ_J(M) = |M| / |truth ∪ M| (Berman et al. 2018, Eq. (3)-(4))."""
    union = truth | mistakes
    return len(mistakes) / len(union) if union else 0.0


def naive_lovasz_class(errors: Tensor, truth: list[int]) -> Tensor:
    """Lovász extension by its definition: Σ_i m_π(i) (Δ(first i) - Δ(first i-1))."""
    order = sorted(range(len(errors)), key=lambda k: -float(errors[k].detach()))
    truth_set = {k for k, y in enumerate(truth) if y}
    total = errors.sum() * 0
    previous = 0.0
    chosen: set[int] = set()
    for k in order:
        chosen.add(k)
        current = jaccard_loss_of_set(chosen, truth_set)
        total = total + errors[k] * (current - previous)
        previous = current
    return total


def naive_lovasz(
    logits: Tensor,
    target: Tensor,
    classes: str | list[int],
    ignore_index: int | None,
    per_image: bool,
) -> Tensor:
    """Berman et al. Alg. 1 per group of pixels, one class at a time."""
    batch, num_classes, height, width = logits.shape
    probs = torch.softmax(logits, dim=1)
    groups = [[b] for b in range(batch)] if per_image else [list(range(batch))]
    group_losses = []
    for group in groups:
        probs_list, labels = [], []
        for b in group:
            for i, j in pixels(height, width):
                label = int(target[b, i, j])
                if is_valid(label, ignore_index):
                    probs_list.append(probs[b, :, i, j])
                    labels.append(label)
        if not labels:
            continue
        stacked = torch.stack(probs_list)  # [N, C]
        chosen = range(num_classes) if isinstance(classes, str) else classes
        class_losses = []
        for c in chosen:
            truth = [int(label == c) for label in labels]
            if classes == "present" and sum(truth) == 0:
                continue
            errors = (torch.tensor(truth, dtype=stacked.dtype) - stacked[:, c]).abs()
            class_losses.append(naive_lovasz_class(errors, truth))
        group_losses.append(sum(class_losses) / len(class_losses))
    if not group_losses:
        return logits.sum() * 0
    return sum(group_losses) / len(group_losses)


# --------------------------------------------------------------------------- distances


def brute_euclidean_distance_to(features: np.ndarray) -> np.ndarray:
    """Distance of every pixel to the nearest True pixel over all pairs (inf if none)."""
    height, width = features.shape
    points = np.argwhere(features)
    result = np.full((height, width), np.inf)
    for i, j in pixels(height, width):
        if len(points):
            result[i, j] = np.sqrt(((points - [i, j]) ** 2).sum(axis=1)).min()
    return result


def brute_manhattan_distance_to(features: np.ndarray, cap: float) -> np.ndarray:
    """L1 distance of every pixel to the nearest True pixel over all pairs, capped."""
    height, width = features.shape
    points = np.argwhere(features)
    result = np.full((height, width), float(cap))
    for i, j in pixels(height, width):
        if len(points):
            result[i, j] = min(cap, np.abs(points - [i, j]).sum(axis=1).min())
    return result


def brute_signed_map(region: np.ndarray) -> np.ndarray:
    """Kervadec ``one_hot2dist`` by brute force: outside +d, inside -(d - 1); 0 if no edge."""
    if not region.any() or region.all():
        return np.zeros(region.shape)
    to_region = brute_euclidean_distance_to(region)
    to_outside = brute_euclidean_distance_to(~region)
    return np.where(region, -(to_outside - 1), to_region)


# --------------------------------------------------------------------------- Kervadec


def naive_kervadec(
    logits: Tensor, target: Tensor, classes: list[int] | None, ignore_index: int | None
) -> Tensor:
    """mean over valid pixels and classes of softmax × signed map, per image and class."""
    batch, num_classes, height, width = logits.shape
    probs = torch.softmax(logits, dim=1)
    chosen = list(range(num_classes)) if classes is None else classes
    labels = target.numpy()
    total = logits.sum() * 0
    count = 0
    for b in range(batch):
        maps = {c: brute_signed_map(labels[b] == c) for c in chosen}
        for i, j in pixels(height, width):
            if not is_valid(int(labels[b, i, j]), ignore_index):
                continue
            for c in chosen:
                total = total + probs[b, c, i, j] * float(maps[c][i, j])
                count += 1
    return total / max(count, 1)


# --------------------------------------------------------------------------- Boundary F1


def window_max(values: Tensor, size: int) -> Tensor:
    """Max over the size×size window centred on each pixel, inside the image only."""
    height, width = values.shape
    half = (size - 1) // 2
    rows = []
    for i in range(height):
        row = []
        for j in range(width):
            block = values[max(0, i - half) : i + half + 1, max(0, j - half) : j + half + 1]
            row.append(block.max())
        rows.append(torch.stack(row))
    return torch.stack(rows)


def naive_boundary_f1(
    logits: Tensor,
    target: Tensor,
    theta0: int,
    theta: int,
    ignore_index: int | None,
    eps: float = 1e-7,
    published_mean: bool = False,
) -> Tensor:
    """Bokhovkin & Burnaev BF1 per image and class with ignore pixels as a void region.

    ``published_mean`` averages over all (image, class) pairs like the reference code;
    otherwise only pairs whose target has a boundary count.
    """
    batch, num_classes, height, width = logits.shape
    probs = torch.softmax(logits, dim=1)
    losses = []
    for b in range(batch):
        valid = torch.tensor(
            [
                [is_valid(int(target[b, i, j]), ignore_index) for j in range(width)]
                for i in range(height)
            ],
            dtype=logits.dtype,
        )
        for c in range(num_classes):
            truth = (target[b] == c).to(logits.dtype) * valid
            pred = probs[b, c] * valid
            gt_b = window_max(1 - truth, theta0) - (1 - truth)
            pr_b = window_max(1 - pred, theta0) - (1 - pred)
            gt_ext, pr_ext = window_max(gt_b, theta), window_max(pr_b, theta)
            precision = (pr_b * gt_ext).sum() / (pr_b.sum() + eps)
            recall = (pr_ext * gt_b).sum() / (gt_b.sum() + eps)
            f1 = 2 * precision * recall / (precision + recall + eps)
            if published_mean or gt_b.sum() > 0:
                losses.append(1 - f1)
    if not losses:
        return logits.sum() * 0
    return sum(losses) / len(losses)


# --------------------------------------------------------------------------- DTL


def loop_edges(region: np.ndarray) -> np.ndarray:
    """segloss edges pixel by pixel: differs from the pixel below or from the pixel left."""
    height, width = region.shape
    edges = np.zeros_like(region, dtype=bool)
    for i, j in pixels(height, width):
        below = i + 1 < height and region[i, j] != region[i + 1, j]
        left = j >= 1 and region[i, j] != region[i, j - 1]
        edges[i, j] = below or left
    return edges


def naive_dtl(
    logits: Tensor,
    target: Tensor,
    dilate: int,
    power: float,
    ignore_index: int | None,
    reduction: str = "sum",
) -> Tensor:
    """Boundary term of segloss DTL, image by image and class by class."""
    batch, num_classes, height, width = logits.shape
    probs = torch.softmax(logits, dim=1)
    labels = target.numpy()
    valid = np.vectorize(lambda v: is_valid(int(v), ignore_index))(labels)
    predicted = logits.detach().argmax(dim=1).numpy()
    predicted = np.where(valid, predicted, -1)  # ignore pixels are a void label
    present = [c for c in range(num_classes) if ((labels == c) & valid).any()]
    total = logits.sum() * 0
    penalised: set[tuple[int, int, int]] = set()
    for b in range(batch):
        for c in present:
            truth_edges = loop_edges((labels[b] == c) & valid[b])
            pred_edges = loop_edges(predicted[b] == c)
            distance = brute_manhattan_distance_to(truth_edges, cap=height + width)
            for i, j in pixels(height, width):
                weight = max(distance[i, j] - dilate, 0.0)
                if valid[b, i, j] and pred_edges[i, j] and weight > 0:
                    total = total + probs[b, c, i, j] * weight
                    penalised.add((b, i, j))
    if reduction == "mean":
        total = total / max(len(penalised), 1)
    return total**power if float(total.detach()) > 0 else total * 0


# --------------------------------------------------------------------------- RMI


def naive_rmi(
    logits: Tensor,
    target: Tensor,
    radius: int,
    pool_stride: int,
    ignore_index: int | None,
    pos_alpha: float = 5e-4,
    clip_min: float = 1e-6,
) -> Tensor:
    """RMI lower bound of Zhao et al. per image and class, vectors gathered pixel by pixel."""
    batch, num_classes, height, width = logits.shape
    valid = torch.tensor(
        np.vectorize(lambda v: is_valid(int(v), ignore_index))(target.numpy()),
        dtype=logits.dtype,
    )
    probs = torch.sigmoid(logits) * valid[:, None] + clip_min
    labels = torch.stack([(target == c).to(logits.dtype) for c in range(num_classes)], 1)
    labels = labels * valid[:, None]
    if pool_stride > 1:
        pad = pool_stride // 2
        probs = torch.nn.functional.max_pool2d(probs, pool_stride, pool_stride, pad)
        labels = torch.nn.functional.max_pool2d(labels, pool_stride, pool_stride, pad)
    height, width = probs.shape[-2:]
    dim = radius * radius
    eye = torch.eye(dim, dtype=logits.dtype)
    per_class = [logits.sum() * 0 for _ in range(num_classes)]
    for b in range(batch):
        for c in range(num_classes):
            y_rows, p_rows = [], []
            for i in range(height - radius + 1):
                for j in range(width - radius + 1):
                    y_rows.append(labels[b, c, i : i + radius, j : j + radius].reshape(-1))
                    p_rows.append(probs[b, c, i : i + radius, j : j + radius].reshape(-1))
            y = torch.stack(y_rows, 1)  # [d, points]
            p = torch.stack(p_rows, 1)
            y = y - y.mean(1, keepdim=True)
            p = p - p.mean(1, keepdim=True)
            sigma_y, sigma_p, sigma_yp = y @ y.T, p @ p.T, y @ p.T
            posterior = sigma_y - sigma_yp @ torch.inverse(sigma_p + pos_alpha * eye) @ sigma_yp.T
            half_log_det = 0.5 * torch.logdet(posterior + pos_alpha * eye)
            per_class[c] = per_class[c] + half_log_det / batch / dim
    return sum(per_class)


# --------------------------------------------------------------------------- Boundary DoU


def naive_boundary_dou(
    logits: Tensor,
    target: Tensor,
    classes: list[int] | None,
    ignore_index: int | None,
    smooth: float = 1e-5,
    alpha_max: float = 0.8,
) -> Tensor:
    """Sun et al.'s Boundary DoU per class, sums over the batch, the cross kernel pixel by pixel."""
    batch, num_classes, height, width = logits.shape
    probs = torch.softmax(logits, dim=1)
    chosen = range(num_classes) if classes is None else classes
    losses = []
    for c in chosen:
        intersection = logits.sum() * 0
        squares = logits.sum() * 0
        area = 0
        edge = 0
        for b in range(batch):
            for i, j in pixels(height, width):
                label = int(target[b, i, j])
                if not is_valid(label, ignore_index):
                    continue
                p = probs[b, c, i, j]
                squares = squares + p * p
                if label != c:
                    continue
                intersection = intersection + p
                area += 1
                # cross-kernel convolution with zero padding: 5 means all 4 neighbours are c
                total = 1
                for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                    ni, nj = i + di, j + dj
                    if 0 <= ni < height and 0 <= nj < width and int(target[b, ni, nj]) == c:
                        total += 1
                if total != 5:
                    edge += 1
        alpha = 1 - (edge + smooth) / (area + smooth)
        alpha = min(2 * alpha - 1, alpha_max)
        numerator = squares + area - 2 * intersection + smooth
        losses.append(numerator / (squares + area - (1 + alpha) * intersection + smooth))
    return sum(losses) / len(losses)


# --------------------------------------------------------------------------- HD-DT


def scipy_boundary_distance(mask: np.ndarray) -> np.ndarray:
    """MONAI ``distance_field`` of one mask: edt(fg) + edt(bg); 0 if empty or full."""
    from scipy import ndimage

    if not mask.any() or mask.all():
        return np.zeros(mask.shape)
    return ndimage.distance_transform_edt(mask) + ndimage.distance_transform_edt(~mask)


def naive_hd_dt(
    logits: Tensor,
    target: Tensor,
    alpha: float,
    classes: list[int] | None,
    ignore_index: int | None,
) -> Tensor:
    """Karimi & Salcudean HD-DT per image and class: scipy distances, explicit pixel sums.

    Prediction map: the first maximal logit per pixel; ignore pixels are in no class of either
    map and out of the mean.
    """
    batch, num_classes, height, width = logits.shape
    probs = torch.softmax(logits, dim=1)
    chosen = list(range(num_classes)) if classes is None else classes
    labels = target.numpy()
    total = logits.sum() * 0
    count = 0
    for b in range(batch):
        valid = np.vectorize(lambda v: is_valid(int(v), ignore_index))(labels[b])
        predicted = np.full((height, width), -1)
        for i, j in pixels(height, width):
            if valid[i, j]:
                scores = [float(logits[b, c, i, j].detach()) for c in range(num_classes)]
                predicted[i, j] = scores.index(max(scores))
        count += int(valid.sum())
        for c in chosen:
            truth_map = scipy_boundary_distance((labels[b] == c) & valid)
            pred_map = scipy_boundary_distance(predicted == c)
            for i, j in pixels(height, width):
                if not valid[i, j]:
                    continue
                g = 1.0 if labels[b, i, j] == c else 0.0
                weight = truth_map[i, j] ** alpha + pred_map[i, j] ** alpha
                total = total + (probs[b, c, i, j] - g) ** 2 * weight
    return total / max(count * len(chosen), 1)


# --------------------------------------------------------------------------- clDice


def window_min_cross(values: Tensor) -> Tensor:
    """Min over the pixel and its 4 neighbours inside the image, pixel by pixel."""
    height, width = values.shape
    rows = []
    for i in range(height):
        row = []
        for j in range(width):
            cells = [values[i, j]]
            for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                if 0 <= i + di < height and 0 <= j + dj < width:
                    cells.append(values[i + di, j + dj])
            row.append(torch.stack(cells).min())
        rows.append(torch.stack(row))
    return torch.stack(rows)


def naive_soft_skeleton(image: Tensor, iterations: int) -> Tensor:
    """Shit et al.'s soft skeleton of one [H, W] map with explicit windows (Alg. 1)."""

    def opened(x: Tensor) -> Tensor:
        return window_max(window_min_cross(x), 3)

    skel = torch.relu(image - opened(image))
    for _ in range(iterations):
        image = window_min_cross(image)
        delta = torch.relu(image - opened(image))
        skel = skel + torch.relu(delta - skel * delta)
    return skel


def naive_cldice(
    logits: Tensor,
    target: Tensor,
    iterations: int,
    smooth: float,
    alpha: float,
    classes: list[int] | None,
    ignore_index: int | None,
) -> Tensor:
    """(1 - alpha) soft Dice + alpha clDice per class (sums over the batch), mean over classes."""
    batch, num_classes, height, width = logits.shape
    probs = torch.softmax(logits, dim=1)
    chosen = range(num_classes) if classes is None else classes
    losses = []
    for c in chosen:
        skel_pred_truth = skel_pred = skel_truth_pred = skel_truth = logits.sum() * 0
        truth_pred = truth_sum = pred_sum = logits.sum() * 0
        for b in range(batch):
            valid = torch.tensor(
                [
                    [is_valid(int(target[b, i, j]), ignore_index) for j in range(width)]
                    for i in range(height)
                ],
                dtype=logits.dtype,
            )
            p = probs[b, c] * valid
            y = (target[b] == c).to(logits.dtype) * valid
            s_p = naive_soft_skeleton(p, iterations)
            s_y = naive_soft_skeleton(y, iterations)
            skel_pred_truth = skel_pred_truth + (s_p * y).sum()
            skel_pred = skel_pred + s_p.sum()
            skel_truth_pred = skel_truth_pred + (s_y * p).sum()
            skel_truth = skel_truth + s_y.sum()
            truth_pred = truth_pred + (y * p).sum()
            truth_sum = truth_sum + y.sum()
            pred_sum = pred_sum + p.sum()
        tprec = (skel_pred_truth + smooth) / (skel_pred + smooth)
        tsens = (skel_truth_pred + smooth) / (skel_truth + smooth)
        cl_dice = 1 - 2 * tprec * tsens / (tprec + tsens)
        dice = 1 - (2 * truth_pred + smooth) / (truth_sum + pred_sum + smooth)
        losses.append((1 - alpha) * dice + alpha * cl_dice)
    return sum(losses) / len(losses)


# --------------------------------------------------------------------------- ABL

ABL_OFFSETS = [(1, 0), (-1, 0), (0, -1), (0, 1), (-1, 1), (1, 1), (-1, -1), (1, -1), (0, 0)]
"""wangchi95/active-boundary-loss abl.py x_range / y_range: 8 neighbours, then the pixel."""


def naive_abl_distance(labels: np.ndarray, valid: np.ndarray) -> np.ndarray | None:
    """abl.py gt2boundary + one_hot2dist into an int32 buffer + positive part of the negation.

    None for an image without any boundary pixel (skipped).
    """
    from scipy import ndimage

    height, width = labels.shape
    boundary = np.zeros((height, width), dtype=bool)
    for i, j in pixels(height, width):
        down = i + 1 < height and labels[i + 1, j] != labels[i, j]
        right = j + 1 < width and labels[i, j + 1] != labels[i, j]
        boundary[i, j] = down or right or not valid[i, j]
    if not boundary.any():
        return None
    to_boundary = ndimage.distance_transform_edt(~boundary)
    inside = ndimage.distance_transform_edt(boundary)
    result = np.zeros((height, width))
    for i, j in pixels(height, width):
        # int32 buffer: truncation toward zero of the signed map of one_hot2dist
        outside = int(-(to_boundary[i, j] - 1))
        signed = int(inside[i, j]) if boundary[i, j] else outside
        result[i, j] = max(-signed, 0)
    return result


def naive_abl(
    logits: Tensor,
    target: Tensor,
    max_n_ratio: float = 0.01,
    label_smoothing: float = 0.2,
    max_clip_dist: float = 20.0,
    ignore_index: int | None = IGNORE,
) -> Tensor:
    """Active Boundary Loss of Wang et al. pixel by pixel, threshold loop per image.

    As abl.py, except: the threshold is searched per image; KL pairs with an ignore pixel are
    0; ignore pixels are never predicted-boundary pixels; images without boundary are skipped.
    """
    batch, num_classes, height, width = logits.shape
    log_probs = torch.log_softmax(logits, dim=1)
    detached = log_probs.detach()
    labels = target.numpy()
    terms = []

    def kl(b: int, i: int, j: int, ni: int, nj: int) -> Tensor:
        """KL(P_(i,j) || P_(ni,nj)) of detached probabilities."""
        return sum(
            detached[b, c, i, j].exp() * (detached[b, c, i, j] - detached[b, c, ni, nj])
            for c in range(num_classes)
        )

    for b in range(batch):
        valid = np.vectorize(lambda v: is_valid(int(v), ignore_index))(labels[b])
        distance = naive_abl_distance(labels[b], valid)
        # KL to the pixel below plus KL to the pixel on the right (0 past the border)
        score = np.zeros((height, width))
        for i, j in pixels(height, width):
            for ni, nj in ((i + 1, j), (i, j + 1)):
                if ni < height and nj < width and valid[i, j] and valid[ni, nj]:
                    score[i, j] += float(kl(b, i, j, ni, nj))
        eps = 1e-5
        while (score > eps).sum() > height * width * max_n_ratio:
            eps *= 1.2
        above = score > eps
        if distance is None:
            continue
        for i, j in pixels(height, width):
            window = above[max(0, i - 1) : i + 2, max(0, j - 1) : j + 2]
            if not window.any() or not valid[i, j]:
                continue
            around = []
            for di, dj in ABL_OFFSETS:
                ni, nj = i + di, j + dj
                inside = 0 <= ni < height and 0 <= nj < width
                around.append(distance[ni, nj] if inside else 1e5)
            direction = around.index(min(around))  # first minimum
            if direction == 8:
                continue
            centre = log_probs[b, :, i, j]
            direction_logits = []
            for di, dj in ABL_OFFSETS[:8]:
                ni = min(max(i + di, 0), height - 1)  # replicate padding
                nj = min(max(j + dj, 0), width - 1)
                if not valid[ni, nj]:
                    direction_logits.append(centre.sum() * 0)
                    continue
                q = detached[b, :, ni, nj]
                direction_logits.append(
                    sum(q[c].exp() * (q[c] - centre[c]) for c in range(num_classes))
                )
            stacked = torch.stack(direction_logits)
            log_soft = stacked - torch.logsumexp(stacked, dim=0)
            soft_target = [label_smoothing / 8] * 8
            soft_target[direction] = 1 - label_smoothing
            cross_entropy = -sum(t * log_soft[k] for k, t in enumerate(soft_target))
            weight = min(distance[i, j], max_clip_dist) / max_clip_dist
            terms.append(cross_entropy * weight)
    if not terms:
        return logits.sum() * 0
    return sum(terms) / len(terms)


def pooled_soft_skeleton(image: Tensor, iterations: int) -> Tensor:
    """The soft skeleton with max-pooling windows, differentiated by autograd ([N, C, H, W]).

    Erosion: the smaller of a 3×1 and a 1×3 min-pool; dilation: a 3×3 max-pool; padding never
    wins (jocpae/clDice soft_skeleton.py, read for the definition).
    """

    def erode(x: Tensor) -> Tensor:
        vertical = -torch.nn.functional.max_pool2d(-x, (3, 1), 1, (1, 0))
        horizontal = -torch.nn.functional.max_pool2d(-x, (1, 3), 1, (0, 1))
        return torch.minimum(vertical, horizontal)

    def opened(x: Tensor) -> Tensor:
        return torch.nn.functional.max_pool2d(erode(x), 3, 1, 1)

    skel = torch.relu(image - opened(image))
    for _ in range(iterations):
        image = erode(image)
        delta = torch.relu(image - opened(image))
        skel = skel + torch.relu(delta - skel * delta)
    return skel
