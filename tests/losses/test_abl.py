import math

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from lossd.errors import InvalidOptionError
from lossd.losses import ActiveBoundaryLoss, ConstantWeight, SegmentationObjective
from lossd.losses.active_boundary import boundary_directions, boundary_distance
from tests.losses._naive_competitors import (
    ABL_OFFSETS,
    IGNORE,
    assert_all_ignore_gives_connected_zero,
    assert_ignore_has_no_effect,
    naive_abl,
    naive_abl_distance,
    random_case,
    value_and_grad,
)


def abl_case(
    seed: int, batch: int = 2, height: int = 12, width: int = 13, block: int = 4
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and a target of blocks large enough for M = floor(d) - 1 to reach 1-3."""
    logits, target = random_case(seed, batch, 3, height, width, ignore_fraction=0.1, scale=3.0)
    generator = torch.Generator().manual_seed(seed + 1000)
    coarse = torch.randint(
        0, 3, (batch, height // block + 1, width // block + 1), generator=generator
    )
    blocks = coarse.repeat_interleave(block, 1).repeat_interleave(block, 2)[:, :height, :width]
    return logits, torch.where(target == IGNORE, IGNORE, blocks)


def test_distance_map_is_the_truncated_reference_map():
    _, target = random_case(seed=101, batch=3, classes=3, height=9, width=11)
    target[2] = 1  # one label, no ignore: no boundary
    valid = target != IGNORE
    distance, has_boundary = boundary_distance(target, valid)
    assert has_boundary.tolist() == [True, True, False]
    for b in range(2):
        expected = naive_abl_distance(target[b].numpy(), valid[b].numpy())
        np.testing.assert_array_equal(distance[b].numpy(), expected)
    assert torch.all(distance[2] == 0)


def test_directions_are_the_first_smallest_neighbour():
    _, target = random_case(seed=102, batch=2, classes=3, height=8, width=9)
    valid = target != IGNORE
    distance, _ = boundary_distance(target, valid)
    image, row, col = torch.ones_like(target, dtype=torch.bool).nonzero(as_tuple=True)
    result = boundary_directions(distance, image, row, col)
    height, width = target.shape[1:]
    for b, i, j, found in zip(image, row, col, result, strict=True):
        around = []
        for di, dj in ABL_OFFSETS:
            ni, nj = int(i) + di, int(j) + dj
            inside = 0 <= ni < height and 0 <= nj < width
            around.append(float(distance[b, ni, nj]) if inside else 1e5)
        assert int(found) == around.index(min(around))


@pytest.mark.parametrize(
    ("seed", "max_n_ratio", "label_smoothing", "max_clip_dist"),
    [(103, 0.1, 0.2, 20.0), (104, 0.05, 0.0, 2.0), (105, 0.3, 0.2, 1.0), (106, 0.03, 0.5, 3.0)],
)
def test_matches_naive_loop(seed, max_n_ratio, label_smoothing, max_clip_dist):
    logits, target = abl_case(seed)
    options = {
        "max_n_ratio": max_n_ratio,
        "label_smoothing": label_smoothing,
        "max_clip_dist": max_clip_dist,
    }
    value, grad = value_and_grad(ActiveBoundaryLoss(**options), logits, target)
    expected, expected_grad = value_and_grad(
        lambda x, t: naive_abl(x, t, ignore_index=IGNORE, **options), logits, target
    )
    assert float(expected) > 0
    torch.testing.assert_close(value, expected, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-8, atol=1e-14)


def kl(q: torch.Tensor, p: torch.Tensor) -> float:
    return float((q * (q / p).log()).sum())


def smoothed_cross_entropy(logits: list[float], label: int, smoothing: float = 0.2) -> float:
    log_z = math.log(sum(math.exp(v) for v in logits))
    target = [smoothing / 8] * 8
    target[label] = 1 - smoothing
    return -sum(t * (v - log_z) for t, v in zip(target, logits, strict=True))


def test_hand_worked_shifted_boundary():
    # Target: class 0 in columns 0-1, class 1 in columns 2-4 of a 5x5 image. Ground-truth
    # boundary: column 1 (label differs on the right); d = 1, 0, 1, 2, 3 per column, so
    # M = floor(d) - 1 (>= 0) = 0, 0, 0, 1, 2. The prediction puts the boundary one column
    # late: class 0 up to column 3. Only column 3 has KL > 0 (to its right neighbour), 5 pixels
    # = floor(25 · 0.2): threshold 1e-5, dilated to columns 2-4 (15 pixels). Column 2 has
    # M = 0 (weight 0, counted); columns 3 and 4 point left (direction 2), weights 1/20, 2/20.
    # Column 3: KL logits [0, 0, 0, K, K, K, 0, 0] (right neighbours are class 1);
    # column 4: [0, 0, K, 0, 0, 0, K, K] (left neighbours are class 0; the right ones are
    # replicated column 4).
    target = torch.zeros(1, 5, 5, dtype=torch.long)
    target[0, :, 2:] = 1
    logits = torch.zeros(1, 2, 5, 5, dtype=torch.float64)
    logits[0, 0, :, :4], logits[0, 1, :, :4] = 2.0, -2.0
    logits[0, 0, :, 4], logits[0, 1, :, 4] = -2.0, 2.0
    p0 = torch.softmax(torch.tensor([2.0, -2.0], dtype=torch.float64), 0)
    p1 = p0.flip(0)
    k3, k4 = kl(p1, p0), kl(p0, p1)
    ce3 = smoothed_cross_entropy([0, 0, 0, k3, k3, k3, 0, 0], 2)
    ce4 = smoothed_cross_entropy([0, 0, k4, 0, 0, 0, k4, k4], 2)
    expected = (5 * ce3 * 1 / 20 + 5 * ce4 * 2 / 20) / 15
    value = ActiveBoundaryLoss(max_n_ratio=0.2, ignore_index=None)(logits, target)
    assert float(value) == pytest.approx(expected, rel=1e-9)


def test_perfect_prediction_is_zero():
    # Predicted boundary = ground-truth boundary, dilated by one pixel: M = floor(d) - 1 = 0.
    _, target = random_case(seed=107, classes=3, height=12, width=12, ignore_fraction=0.0)
    perfect = 10.0 * torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).double()
    loss = ActiveBoundaryLoss(max_n_ratio=0.5, ignore_index=None)
    assert float(loss(perfect, target)) == 0.0
    shifted = perfect.roll(3, dims=3)
    assert float(loss(shifted, target)) > 0


def test_image_without_boundary_contributes_nothing():
    logits, target = abl_case(108)
    loss = ActiveBoundaryLoss(max_n_ratio=0.2, ignore_index=None)
    target[1] = 2
    both = loss(logits.detach(), target)
    first = loss(logits.detach()[:1], target[:1])
    torch.testing.assert_close(both, first)


def test_ignore_pixels_have_no_effect():
    logits, target = abl_case(109)
    assert_ignore_has_no_effect(ActiveBoundaryLoss(max_n_ratio=0.2), logits, target)


def test_all_ignore_is_connected_zero():
    assert_all_ignore_gives_connected_zero(ActiveBoundaryLoss(), torch.randn(2, 3, 5, 5))


def test_gradient_is_finite_and_reaches_the_logits():
    logits, target = abl_case(110)
    _, grad = value_and_grad(ActiveBoundaryLoss(max_n_ratio=0.1), logits.float(), target)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_neighbours_are_detached():
    # abl.py isdetach=True: a pixel's direction logits move only its own distribution, so the
    # loss has no gradient through the neighbours (gradcheck, which differentiates through
    # them numerically, does not apply).
    logits, target = abl_case(111)
    loss = ActiveBoundaryLoss(max_n_ratio=0.2)
    _, grad = value_and_grad(loss, logits, target)
    leaf = logits.detach().clone().requires_grad_(True)
    loss(leaf, target).backward()
    assert leaf.grad is not None
    torch.testing.assert_close(leaf.grad, grad)


def test_low_precision_input_gives_float32():
    logits, target = random_case(seed=112, scale=3.0)
    value = ActiveBoundaryLoss(max_n_ratio=0.2)(logits.detach().half(), target)
    assert value.dtype == torch.float32


@pytest.mark.parametrize(
    "kwargs",
    [{"max_n_ratio": 0.0}, {"label_smoothing": 1.5}, {"max_clip_dist": 0}, {"ignore_index": 1.0}],
)
def test_invalid_options_raise(kwargs):
    with pytest.raises(InvalidOptionError, match=next(iter(kwargs))):
        ActiveBoundaryLoss(**kwargs)


def test_config_builds_the_published_setting(make_cfg):
    cfg = make_cfg("loss=abl")
    objective = instantiate(cfg.loss.objective)
    assert isinstance(objective, SegmentationObjective)
    extra = objective.extra
    assert isinstance(extra, ActiveBoundaryLoss)
    assert (extra.max_n_ratio, extra.label_smoothing, extra.max_clip_dist) == (0.01, 0.2, 20.0)
    assert extra.ignore_index == cfg.dataset.ignore_index
    assert objective.extra_weight == 1.0 and isinstance(objective.schedule, ConstantWeight)
    assert objective.extra_name == "abl"
