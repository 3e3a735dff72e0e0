import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from lossd.errors import InvalidOptionError
from lossd.losses._functional import one_sided_edges
from lossd.losses.dtl import DistanceTransformLoss
from lossd.ops import taxicab_distance
from tests.losses._naive_competitors import (
    IGNORE,
    assert_all_ignore_gives_connected_zero,
    assert_ignore_has_no_effect,
    brute_manhattan_distance_to,
    loop_edges,
    naive_dtl,
    random_case,
    value_and_grad,
)


def random_masks(seed: int, count: int, height: int, width: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    density = torch.rand(count, 1, 1, generator=generator) * 0.2
    masks = torch.rand(count, height, width, generator=generator) < density
    masks[0] = False
    masks[1, :, :] = False
    masks[1, 0, -1] = True
    return masks


def test_manhattan_distance_matches_brute_force_and_scipy():
    masks = random_masks(seed=51, count=6, height=9, width=12)
    cap = 15
    result = taxicab_distance(masks, cap=cap).numpy()
    for mask, distances in zip(masks.numpy(), result, strict=True):
        np.testing.assert_array_equal(distances, brute_manhattan_distance_to(mask, cap))
        if mask.any():
            taxicab = ndimage.distance_transform_cdt(~mask, metric="taxicab")
            np.testing.assert_array_equal(distances, np.minimum(taxicab, cap))
    assert np.all(result[0] == cap)


def test_one_sided_edges_match_pixel_loop():
    masks = random_masks(seed=52, count=4, height=7, width=8) | (torch.rand(4, 7, 8) < 0.4)
    result = one_sided_edges(masks).numpy()
    for mask, edges in zip(masks.numpy(), result, strict=True):
        np.testing.assert_array_equal(edges, loop_edges(mask))


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize(("dilate", "power"), [(0, 0.5), (1, 1.0), (2, 2.0)])
def test_matches_naive_loop(dilate, power, reduction):
    logits, target = random_case(seed=53, classes=3, height=9, width=10)
    target[1] = torch.where(target[1] == IGNORE, IGNORE, 0)  # classes 1, 2 absent in image 1
    target[1, 7:, 8:] = 1
    loss = DistanceTransformLoss(dilate=dilate, power=power, reduction=reduction)
    value, grad = value_and_grad(loss, logits, target)
    expected, expected_grad = value_and_grad(
        lambda x, t: naive_dtl(x, t, dilate, power, IGNORE, reduction), logits, target
    )
    assert float(expected) > 0
    torch.testing.assert_close(value, expected, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-8, atol=1e-12)


def shifted_stripes(shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Target: class 1 from column 3 on; logits of the same stripe moved ``shift`` right."""
    target = torch.zeros(1, 4, 12, dtype=torch.long)
    target[..., 3:] = 1
    predicted = torch.zeros_like(target)
    predicted[..., 3 + shift :] = 1
    return 2.0 * F.one_hot(predicted, 2).permute(0, 3, 1, 2).double(), target


def test_hand_worked_shifted_edge():
    # Edges (pixel differs from its left neighbour): column 3 in the target, column 3 + s in
    # the prediction, for both classes. Each of the 4 rows has one predicted edge pixel per
    # class at L1 distance s, where p_0 = sigmoid(-2) and p_1 = sigmoid(2) (2-class softmax).
    shift, dilate = 6, 2
    logits, target = shifted_stripes(shift)
    value = DistanceTransformLoss(dilate=dilate, power=1.0)(logits, target)
    expected = 4 * (shift - dilate) * 1.0  # p_0 + p_1 = 1 at the predicted edge pixel
    assert float(value) == pytest.approx(expected, rel=1e-12)
    value = DistanceTransformLoss(dilate=dilate, power=0.5)(logits, target)
    assert float(value) == pytest.approx(expected**0.5, rel=1e-12)


def test_edges_within_dilate_give_zero_with_finite_gradient():
    logits, target = shifted_stripes(2)
    leaf = logits.clone().requires_grad_(True)
    value = DistanceTransformLoss(dilate=2, power=0.5)(leaf, target)
    value.backward()
    assert float(value.detach()) == 0.0
    assert leaf.grad is not None and torch.all(leaf.grad == 0)


def test_ignore_pixels_have_no_effect():
    logits, target = random_case(seed=54, classes=3, height=9, width=10)
    loss = DistanceTransformLoss(dilate=1)
    assert float(loss(logits.detach(), target)) > 0
    assert_ignore_has_no_effect(loss, logits, target)


def test_ignore_band_matches_a_correct_prediction():
    logits, target = shifted_stripes(0)
    target[..., 2:4] = IGNORE
    assert float(DistanceTransformLoss(dilate=0)(logits, target)) == 0.0


def test_all_ignore_is_connected_zero():
    assert_all_ignore_gives_connected_zero(DistanceTransformLoss(), torch.randn(2, 3, 5, 5))


def test_gradcheck():
    logits, target = random_case(seed=55, batch=1, classes=3, height=6, width=6)
    loss = DistanceTransformLoss(dilate=0)
    assert float(loss(logits.detach(), target)) > 0
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (logits,), fast_mode=True)


def test_low_precision_input_gives_float32():
    logits, target = random_case(seed=56)
    assert DistanceTransformLoss()(logits.detach().half(), target).dtype == torch.float32


@pytest.mark.parametrize(
    "kwargs", [{"dilate": -1}, {"dilate": 1.5}, {"power": 0.0}, {"reduction": "none"}]
)
def test_invalid_options_raise(kwargs):
    with pytest.raises(InvalidOptionError, match=next(iter(kwargs))):
        DistanceTransformLoss(**kwargs)
