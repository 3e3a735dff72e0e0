import pytest
import torch
import torch.nn.functional as F

from lossd.errors import DataFormatError, InvalidOptionError
from lossd.losses.rmi import RMILoss
from tests.losses._naive_competitors import (
    IGNORE,
    assert_all_ignore_gives_connected_zero,
    assert_ignore_has_no_effect,
    naive_rmi,
    random_case,
    value_and_grad,
)


@pytest.mark.parametrize(("radius", "pool_stride"), [(3, 3), (2, 1), (3, 2)])
def test_matches_naive_loop(radius, pool_stride):
    logits, target = random_case(seed=61, classes=3, height=12, width=11)
    loss = RMILoss(radius=radius, pool_stride=pool_stride)
    value, grad = value_and_grad(loss, logits, target)
    expected, expected_grad = value_and_grad(
        lambda x, t: naive_rmi(x, t, radius, pool_stride, IGNORE), logits, target
    )
    # The official log det adds 1e-8 to the Cholesky diagonal (>= sqrt(pos_alpha) ~ 0.02):
    # a relative change below 1e-6 that the naive torch.logdet does not make.
    torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-5, atol=1e-7)


def test_mean_reduction_divides_by_classes():
    logits, target = random_case(seed=62, classes=4, height=9, width=9)
    total = RMILoss(pool_stride=1)(logits, target)
    mean = RMILoss(pool_stride=1, reduction="mean")(logits, target)
    torch.testing.assert_close(mean * 4, total, rtol=1e-12, atol=0)


def test_hand_worked_constant_maps_give_log_alpha():
    # A constant label map has zero covariance, so M = 0 and ½ log det(α I) / d = ½ log α
    # per class, whatever the prediction.
    target = torch.zeros(1, 6, 6, dtype=torch.long)
    logits = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    value = RMILoss(pool_stride=1, pos_alpha=5e-4)(logits, target)
    expected = 2 * 0.5 * torch.log(torch.tensor(5e-4, dtype=torch.float64))
    assert float(value) == pytest.approx(float(expected), rel=1e-6)


def test_perfect_prediction_scores_lower_than_wrong_ones():
    _, target = random_case(seed=63, classes=3, height=12, width=12, ignore_fraction=0.0)
    loss = RMILoss(pool_stride=1, ignore_index=None)
    perfect = 12.0 * (2 * F.one_hot(target, 3).permute(0, 3, 1, 2).double() - 1)
    shuffled = perfect.roll(shifts=3, dims=-1)
    noise = torch.randn(perfect.shape, generator=torch.Generator().manual_seed(0)).double()
    assert float(loss(perfect, target)) < float(loss(shuffled, target))
    assert float(loss(perfect, target)) < float(loss(noise, target))


def test_ignore_pixels_have_no_effect():
    logits, target = random_case(seed=64, classes=3, height=15, width=15)
    assert_ignore_has_no_effect(RMILoss(), logits, target)


def test_all_ignore_is_connected_zero():
    assert_all_ignore_gives_connected_zero(RMILoss(), torch.randn(2, 3, 9, 9))


def test_gradcheck():
    logits, target = random_case(seed=65, batch=1, classes=2, height=5, width=5)
    loss = RMILoss(radius=2, pool_stride=1)
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (logits,), fast_mode=True)


def test_low_precision_input_gives_float32():
    logits, target = random_case(seed=66, height=9, width=9)
    assert RMILoss()(logits.detach().half(), target).dtype == torch.float32


def test_autocast_keeps_the_float64_covariances():
    # Under autocast matmul would run in bfloat16; the loss must not change.
    logits, target = random_case(seed=67, height=12, width=12)
    logits = logits.detach().float()
    reference = RMILoss()(logits, target)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = RMILoss()(logits, target)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, reference, rtol=1e-6, atol=1e-6)


def test_image_too_small_after_pooling_raises():
    with pytest.raises(DataFormatError, match="radius=3"):
        RMILoss()(torch.randn(1, 2, 5, 5), torch.zeros(1, 5, 5, dtype=torch.long))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"radius": 0},
        {"radius": 11},
        {"pool_stride": 0},
        {"pool": "nearest"},
        {"pos_alpha": 0.0},
        {"reduction": "none"},
    ],
)
def test_invalid_options_raise(kwargs):
    with pytest.raises(InvalidOptionError, match=next(iter(kwargs))):
        RMILoss(**kwargs)
