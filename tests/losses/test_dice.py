import pytest
import torch
import torch.nn.functional as F

from lossd.errors import InvalidOptionError
from lossd.losses.dice import DiceLoss
from tests.losses._naive_competitors import (
    IGNORE,
    assert_all_ignore_gives_connected_zero,
    assert_ignore_has_no_effect,
    naive_dice,
    random_case,
    value_and_grad,
)


@pytest.mark.parametrize("smooth", [0.0, 0.05, 1.0])
@pytest.mark.parametrize("classes", [None, [0, 2]])
def test_matches_naive_class_loop(smooth, classes):
    logits, target = random_case(seed=11, classes=4)
    target[target == 3] = 1  # class 3 absent: scores 0 but counts in the mean
    loss = DiceLoss(smooth=smooth, classes=classes)
    value, grad = value_and_grad(loss, logits, target)
    expected, expected_grad = value_and_grad(
        lambda x, t: naive_dice(x, t, smooth, IGNORE, classes), logits, target
    )
    torch.testing.assert_close(value, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-9, atol=1e-12)


def test_hand_worked_half_probabilities():
    # p = 0.5 everywhere, two pixels of different classes: per class I = 0.5, |P| + |Y| = 2.
    logits = torch.zeros(1, 2, 1, 2)
    target = torch.tensor([[[0, 1]]])
    assert float(DiceLoss(smooth=0.0)(logits, target)) == pytest.approx(0.5)
    assert float(DiceLoss(smooth=0.05)(logits, target)) == pytest.approx(1 - 1.05 / 2.05)


def test_absent_classes_score_zero_and_count_in_mean():
    # Worst prediction: present classes lose 1, the absent class 0, mean over 3 classes.
    target = torch.tensor([[[0, 0, 1, 1]]])
    worst = 30.0 * F.one_hot(torch.tensor([[[1, 1, 0, 0]]]), 3).permute(0, 3, 1, 2).float()
    assert float(DiceLoss(smooth=0.0)(worst, target)) == pytest.approx(2 / 3, abs=1e-6)
    perfect = 30.0 * F.one_hot(target, 3).permute(0, 3, 1, 2).float()
    assert float(DiceLoss(smooth=0.0)(perfect, target)) == pytest.approx(0.0, abs=1e-6)
    assert float(DiceLoss(smooth=0.0, classes=[0, 1])(worst, target)) == pytest.approx(1.0)


def test_ignore_pixels_have_no_effect():
    logits, target = random_case(seed=12)
    assert_ignore_has_no_effect(DiceLoss(), logits, target)


def test_all_ignore_is_connected_zero():
    assert_all_ignore_gives_connected_zero(DiceLoss(), torch.randn(2, 3, 4, 4))


def test_gradcheck():
    logits, target = random_case(seed=13, batch=1, classes=3, height=3, width=4)
    assert torch.autograd.gradcheck(lambda x: DiceLoss()(x, target), (logits,), fast_mode=True)


def test_low_precision_input_gives_float32():
    logits, target = random_case(seed=14)
    assert DiceLoss()(logits.detach().half(), target).dtype == torch.float32


@pytest.mark.parametrize(
    "kwargs",
    [
        {"smooth": -1.0},
        {"eps": 0.0},
        {"classes": []},
        {"classes": [1, 1]},
        {"classes": [-1]},
        {"ignore_index": "255"},
    ],
)
def test_invalid_options_raise(kwargs):
    with pytest.raises(InvalidOptionError, match=next(iter(kwargs))):
        DiceLoss(**kwargs)


def test_class_outside_logits_raises():
    with pytest.raises(InvalidOptionError, match=r"classes \[5\]"):
        DiceLoss(classes=[0, 5])(torch.randn(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
