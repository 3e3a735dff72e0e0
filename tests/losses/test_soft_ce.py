import pytest
import torch
import torch.nn.functional as F

from lossd.errors import DataFormatError, InvalidOptionError
from lossd.losses.soft_ce import SoftCrossEntropyLoss
from tests.losses._naive_competitors import (
    IGNORE,
    assert_all_ignore_gives_connected_zero,
    assert_ignore_has_no_effect,
    naive_soft_ce,
    random_case,
    value_and_grad,
)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("eps", [0.0, 0.05, 0.3])
def test_matches_naive_pixel_loop(reduction, eps):
    logits, target = random_case(seed=1, classes=4)
    loss = SoftCrossEntropyLoss(smooth_factor=eps, reduction=reduction)
    value, grad = value_and_grad(loss, logits, target)
    expected, expected_grad = value_and_grad(
        lambda x, t: naive_soft_ce(x, t, eps, IGNORE, reduction), logits, target
    )
    torch.testing.assert_close(value, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-9, atol=1e-12)


def test_equals_torch_label_smoothing_on_valid_pixels():
    logits, target = random_case(seed=2, classes=5, height=8, width=8)
    valid = target != IGNORE
    flat_logits = logits.detach().permute(0, 2, 3, 1)[valid]  # [N, C] of valid pixels
    expected = F.cross_entropy(flat_logits, target[valid], label_smoothing=0.05)
    value = SoftCrossEntropyLoss(0.05)(logits, target)
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-12)


def test_geoseg_value_is_this_value_times_valid_fraction():
    # GeoSeg zeroes ignored terms and averages over all pixels (docs/reference.md, last paragraph).
    logits, target = random_case(seed=3, ignore_fraction=0.4)
    valid = target != IGNORE
    per_pixel_sum = naive_soft_ce(logits, target, 0.05, IGNORE, "sum")
    geoseg = per_pixel_sum / target.numel()
    ours = SoftCrossEntropyLoss(0.05)(logits, target)
    torch.testing.assert_close(ours * valid.double().mean(), geoseg.detach(), rtol=1e-10, atol=0)
    assert float(ours.detach()) > float(geoseg.detach())


def test_hand_worked_uniform_logits():
    # Uniform logits: -log p_c = log C for every c, so the loss is log C for any eps.
    logits = torch.zeros(1, 4, 2, 3)
    target = torch.tensor([[[0, 1, 2], [3, 0, 1]]])
    for eps in (0.0, 0.05, 1.0):
        value = SoftCrossEntropyLoss(eps)(logits, target)
        assert float(value) == pytest.approx(torch.log(torch.tensor(4.0)).item(), rel=1e-6)


def test_perfect_prediction_minimum_with_smoothing():
    # The minimiser of smoothed CE puts (1 - eps) + eps / C on the true class.
    classes, eps = 3, 0.1
    target = torch.tensor([[[0, 1], [2, 1]]])
    best = torch.log(torch.tensor([1 - eps + eps / classes, eps / classes, eps / classes]))
    optimal = torch.stack([best.roll(int(c)) for c in target.flatten()], 1)
    optimal = optimal.view(1, classes, 2, 2).requires_grad_(True)
    loss = SoftCrossEntropyLoss(eps)
    value = loss(optimal, target)
    value.backward()
    assert optimal.grad is not None
    torch.testing.assert_close(optimal.grad, torch.zeros_like(optimal.grad), atol=1e-7, rtol=0)
    hard = 20 * F.one_hot(target, classes).permute(0, 3, 1, 2).float()
    assert float(loss(hard, target)) > float(value.detach())


def test_ignore_index_none_uses_every_pixel():
    logits, target = random_case(seed=4, ignore_fraction=0.0)
    value = SoftCrossEntropyLoss(0.05, ignore_index=None)(logits, target)
    expected = naive_soft_ce(logits, target, 0.05, None, "mean")
    torch.testing.assert_close(value, expected, rtol=1e-10, atol=0)


def test_ignore_pixels_have_no_effect():
    logits, target = random_case(seed=5)
    assert_ignore_has_no_effect(SoftCrossEntropyLoss(), logits, target)


def test_all_ignore_is_connected_zero():
    assert_all_ignore_gives_connected_zero(SoftCrossEntropyLoss(), torch.randn(2, 3, 4, 4))


def test_gradcheck():
    logits, target = random_case(seed=6, batch=1, classes=3, height=3, width=4)
    assert torch.autograd.gradcheck(
        lambda x: SoftCrossEntropyLoss(0.05)(x, target), (logits,), fast_mode=True
    )


def test_low_precision_input_gives_float32():
    logits, target = random_case(seed=7)
    value = SoftCrossEntropyLoss()(logits.detach().bfloat16(), target)
    assert value.dtype == torch.float32
    expected = SoftCrossEntropyLoss()(logits.detach().bfloat16().double(), target)
    assert float(value) == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"smooth_factor": -0.1},
        {"smooth_factor": 1.5},
        {"smooth_factor": "0.1"},
        {"reduction": "none"},
        {"ignore_index": 2.5},
        {"ignore_index": True},
    ],
)
def test_invalid_options_raise(kwargs):
    with pytest.raises(InvalidOptionError, match=next(iter(kwargs))):
        SoftCrossEntropyLoss(**kwargs)


def test_mismatched_shapes_raise():
    loss = SoftCrossEntropyLoss()
    with pytest.raises(DataFormatError, match="do not match"):
        loss(torch.randn(2, 3, 4, 4), torch.zeros(2, 4, 5, dtype=torch.long))
    with pytest.raises(DataFormatError, match="integer tensor"):
        loss(torch.randn(2, 3, 4, 4), torch.zeros(2, 4, 4))
