import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from lossd.errors import InvalidOptionError
from lossd.losses import BoundaryDoULoss, ConstantWeight, SegmentationObjective
from lossd.losses.boundary_dou import cross_boundary
from tests.losses._naive_competitors import (
    IGNORE,
    assert_ignore_has_no_effect,
    naive_boundary_dou,
    random_case,
    value_and_grad,
)


def one_hot_logits(target: torch.Tensor, classes: int, scale: float = 40.0) -> torch.Tensor:
    return scale * F.one_hot(target, classes).permute(0, 3, 1, 2).double()


@pytest.mark.parametrize("classes", [None, [0, 2]])
@pytest.mark.parametrize("seed", [61, 62])
def test_matches_naive_loop(classes, seed):
    logits, target = random_case(seed=seed, classes=3, height=7, width=8)
    loss = BoundaryDoULoss(classes=classes)
    value, grad = value_and_grad(loss, logits, target)
    expected, expected_grad = value_and_grad(
        lambda x, t: naive_boundary_dou(x, t, classes, IGNORE), logits, target
    )
    torch.testing.assert_close(value, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-8, atol=1e-12)


def test_cross_boundary_matches_the_cross_kernel_convolution():
    _, target = random_case(seed=63, classes=3, height=9, width=11, ignore_fraction=0.2)
    edge = cross_boundary(target)
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    for value in (0, 1, 2, IGNORE):
        mask = (target == value).float().unsqueeze(1)
        counts = F.conv2d(mask, kernel, padding=1).squeeze(1) * mask.squeeze(1)
        expected = (counts > 0) & (counts != 5)  # utils.py lines 291-294
        assert torch.equal(edge & (target == value), expected)


def test_hand_worked_example():
    # 4x4, class 1 in the last column. Class 0: S = 12, interior (1,1), (2,1): C = 10,
    # alpha = 1 - 20/12 = -2/3. Class 1: S = C = 4, alpha = -1. Logits 0: p = 1/2 everywhere.
    # class 0: (Z + Y - 2I) / (Z + Y - (1 + alpha) I) = (4 + 12 - 12) / (16 - 6/3) = 2/7
    # class 1: (4 + 4 - 4) / (8 - 0) = 1/2; mean 11/28.
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, :, 3] = 1
    logits = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
    value = BoundaryDoULoss(ignore_index=None)(logits, target)
    assert float(value) == pytest.approx(11 / 28, abs=2e-6)


def test_perfect_prediction_is_about_zero_and_an_absent_class_counts_one():
    _, target = random_case(seed=64, classes=3, height=8, width=8, ignore_fraction=0.0)
    target = target.clamp(max=1)  # class 2 absent
    loss = BoundaryDoULoss(ignore_index=None)
    value = float(loss(one_hot_logits(target, 3), target))
    # present classes: s / ((1 - alpha) S + s) < 1e-6; the absent class: exactly 1
    assert value == pytest.approx(1 / 3, abs=1e-6)
    assert (
        float(BoundaryDoULoss(ignore_index=None, classes=[0, 1])(one_hot_logits(target, 3), target))
        < 1e-6
    )


def test_alpha_is_truncated_at_0_8():
    # 50x50 of class 0 with a one-pixel class-1 corner: C/S is about 0.08, alpha about 0.84,
    # truncated to 0.8: the value with alpha_max=0.8 equals the formula with alpha = 0.8.
    target = torch.zeros(1, 50, 50, dtype=torch.long)
    target[0, 0, 0] = 1
    logits = torch.zeros(1, 2, 50, 50, dtype=torch.float64)
    values = {
        cap: float(BoundaryDoULoss(ignore_index=None, classes=[0], alpha_max=cap)(logits, target))
        for cap in (0.8, 0.99)
    }
    area, s = 2499, 1e-5
    edge = int((cross_boundary(target) & (target == 0)).sum())  # border and corner neighbours
    alpha = 1 - 2 * (edge + s) / (area + s)
    assert alpha > 0.8
    squares, intersection = 2500 * 0.25, area * 0.5

    def formula(a: float) -> float:
        return (squares + area - 2 * intersection + s) / (
            squares + area - (1 + a) * intersection + s
        )

    assert values[0.8] == pytest.approx(formula(0.8), rel=1e-12)
    assert values[0.99] == pytest.approx(formula(alpha), rel=1e-12)


def test_ignore_pixels_have_no_effect():
    logits, target = random_case(seed=65)
    assert_ignore_has_no_effect(BoundaryDoULoss(), logits, target)


def test_all_ignore_gives_one_without_gradient():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.full((2, 4, 4), IGNORE, dtype=torch.long)
    value = BoundaryDoULoss()(logits, target)
    # every class absent: 1 each, as the reference
    assert float(value.detach()) == pytest.approx(1.0)
    value.backward()
    assert logits.grad is not None and torch.all(logits.grad == 0)


def test_gradient_is_finite_and_reaches_the_logits():
    logits, target = random_case(seed=66)
    _, grad = value_and_grad(BoundaryDoULoss(), logits, target)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_gradcheck():
    logits, target = random_case(seed=67, batch=1, classes=3, height=4, width=5)
    assert torch.autograd.gradcheck(lambda x: BoundaryDoULoss()(x, target), (logits,))


def test_low_precision_input_gives_float32():
    logits, target = random_case(seed=68)
    assert BoundaryDoULoss()(logits.detach().half(), target).dtype == torch.float32


@pytest.mark.parametrize(
    "kwargs", [{"classes": []}, {"smooth": 0.0}, {"alpha_max": 1.5}, {"ignore_index": "x"}]
)
def test_invalid_options_raise(kwargs):
    with pytest.raises(InvalidOptionError, match=next(iter(kwargs))):
        BoundaryDoULoss(**kwargs)


def test_config_builds_the_published_setting(make_cfg):
    cfg = make_cfg("loss=boundary_dou")
    objective = instantiate(cfg.loss.objective)
    assert isinstance(objective, SegmentationObjective)
    assert isinstance(objective.extra, BoundaryDoULoss)
    assert objective.extra.classes is None  # all classes, as utils.py lines 314-317
    assert objective.extra.smooth == 1e-5 and objective.extra.alpha_max == 0.8
    assert objective.extra.ignore_index == cfg.dataset.ignore_index
    assert objective.extra_weight == 1.0 and isinstance(objective.schedule, ConstantWeight)
    assert objective.extra_name == "boundary_dou"
