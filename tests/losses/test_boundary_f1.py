import pytest
import torch
import torch.nn.functional as F

from lossd.errors import InvalidOptionError
from lossd.losses.boundary_f1 import BoundaryF1Loss
from tests.losses._naive_competitors import (
    IGNORE,
    assert_all_ignore_gives_connected_zero,
    assert_ignore_has_no_effect,
    naive_boundary_f1,
    random_case,
    value_and_grad,
)


@pytest.mark.parametrize(("theta0", "theta"), [(3, 5), (3, 3), (5, 1)])
def test_matches_naive_window_loops(theta0, theta):
    logits, target = random_case(seed=41, classes=4, height=6, width=7)
    target[target == 3] = 1  # a class without boundary anywhere
    loss = BoundaryF1Loss(theta0=theta0, theta=theta)
    value, grad = value_and_grad(loss, logits, target)
    expected, expected_grad = value_and_grad(
        lambda x, t: naive_boundary_f1(x, t, theta0, theta, IGNORE), logits, target
    )
    torch.testing.assert_close(value, expected, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-8, atol=1e-12)


def test_published_mean_is_an_affine_function_of_this_value():
    # Reference code averages over all (image, class) pairs; pairs without target boundary
    # contribute a constant 1, so published = share * ours + (1 - share).
    logits, target = random_case(seed=42, classes=4, height=6, width=7, ignore_fraction=0.0)
    target[0][target[0] == 2] = 0  # class 2 without boundary in image 0, class 3 nowhere
    target[target == 3] = 1
    ours = BoundaryF1Loss(ignore_index=None)(logits, target).detach()
    published = naive_boundary_f1(logits, target, 3, 5, None, published_mean=True).detach()
    share = 5 / 8  # pairs with a boundary: image 0 -> classes 0, 1; image 1 -> classes 0, 1, 2
    assert naive_boundary_f1(logits, target, 3, 5, None).detach() == pytest.approx(float(ours))
    torch.testing.assert_close(published, share * ours + (1 - share), rtol=1e-10, atol=1e-12)


def stripes(shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Target: class 0 in columns 0-4, class 1 in 5-9; near-hard logits shifted right."""
    target = torch.zeros(1, 8, 10, dtype=torch.long)
    target[..., 5:] = 1
    predicted = torch.zeros_like(target)
    predicted[..., 5 + shift :] = 1
    return 30.0 * F.one_hot(predicted, 2).permute(0, 3, 1, 2).double(), target


@pytest.mark.parametrize(("shift", "expected"), [(0, 0.0), (1, 0.0), (2, 0.0), (3, 1.0), (4, 1.0)])
def test_hand_worked_tolerance_of_theta(shift, expected):
    # Boundaries are single columns; theta = 5 extends them by 2 columns each side, so a
    # shift up to 2 is a perfect match (P = R = 1) and a shift of 3 or more matches nothing.
    logits, target = stripes(shift)
    value = BoundaryF1Loss(theta0=3, theta=5)(logits, target)
    assert float(value) == pytest.approx(expected, abs=1e-6)


def test_ignore_pixels_have_no_effect():
    logits, target = random_case(seed=43)
    assert_ignore_has_no_effect(BoundaryF1Loss(), logits, target)


def test_ignore_band_between_classes_does_not_penalise_a_correct_prediction():
    logits, target = stripes(0)
    target[..., 4:6] = IGNORE
    assert float(BoundaryF1Loss()(logits, target)) == pytest.approx(0.0, abs=1e-6)


def test_all_ignore_is_connected_zero():
    assert_all_ignore_gives_connected_zero(BoundaryF1Loss(), torch.randn(2, 3, 5, 5))


def test_gradcheck():
    logits, target = random_case(seed=44, batch=1, classes=3, height=4, width=5, ignore_fraction=0)
    loss = BoundaryF1Loss(ignore_index=None)
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (logits,), fast_mode=True)


def test_low_precision_input_gives_float32():
    logits, target = random_case(seed=45)
    assert BoundaryF1Loss()(logits.detach().bfloat16(), target).dtype == torch.float32


@pytest.mark.parametrize(
    "kwargs", [{"theta0": 4}, {"theta": 0}, {"theta": 2.0}, {"eps": -1e-7}, {"theta0": True}]
)
def test_invalid_options_raise(kwargs):
    with pytest.raises(InvalidOptionError, match=next(iter(kwargs))):
        BoundaryF1Loss(**kwargs)
