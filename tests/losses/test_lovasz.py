import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lossd.errors import InvalidOptionError
from lossd.losses.lovasz import LovaszSoftmaxLoss
from tests.losses._naive_competitors import (
    IGNORE,
    assert_all_ignore_gives_connected_zero,
    assert_ignore_has_no_effect,
    naive_lovasz,
    random_case,
    value_and_grad,
)


@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("classes", ["present", "all", [2, 0]])
def test_matches_naive_set_definition(classes, per_image):
    logits, target = random_case(seed=21, classes=4, height=5, width=5)
    target[target == 3] = 1  # class 3 absent: matters for "all"
    loss = LovaszSoftmaxLoss(classes=classes, per_image=per_image)
    value, grad = value_and_grad(loss, logits, target)
    expected, expected_grad = value_and_grad(
        lambda x, t: naive_lovasz(x, t, classes, IGNORE, per_image), logits, target
    )
    torch.testing.assert_close(value, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-9, atol=1e-12)


def mean_jaccard_loss(pred: np.ndarray, target: np.ndarray, classes: list[int]) -> float:
    losses = []
    for c in classes:
        intersection = np.sum((pred == c) & (target == c))
        union = np.sum((pred == c) | (target == c))
        losses.append(1 - intersection / union)
    return float(np.mean(losses))


def test_hard_prediction_equals_one_minus_iou():
    # On 0/1 probabilities the Lovász extension equals the Jaccard loss (Berman et al., Sec. 3).
    generator = torch.Generator().manual_seed(22)
    target = torch.randint(0, 3, (2, 6, 6), generator=generator)
    pred = torch.where(torch.rand(2, 6, 6, generator=generator) < 0.3, (target + 1) % 3, target)
    logits = 60.0 * F.one_hot(pred, 3).permute(0, 3, 1, 2).double()
    value = LovaszSoftmaxLoss()(logits, target)
    expected = mean_jaccard_loss(pred.numpy(), target.numpy(), [0, 1, 2])
    assert float(value) == pytest.approx(expected, abs=1e-12)
    assert 0 < expected < 1


def test_perfect_prediction_is_zero_and_worst_is_one():
    target = torch.tensor([[[0, 0, 1], [1, 2, 2]]])
    perfect = 60.0 * F.one_hot(target, 3).permute(0, 3, 1, 2).double()
    worst = 60.0 * F.one_hot((target + 1) % 3, 3).permute(0, 3, 1, 2).double()
    assert float(LovaszSoftmaxLoss()(perfect, target)) == pytest.approx(0.0, abs=1e-12)
    assert float(LovaszSoftmaxLoss()(worst, target)) == pytest.approx(1.0, abs=1e-12)


def test_per_image_skips_images_without_valid_pixels():
    logits, target = random_case(seed=23, batch=2)
    target[1] = IGNORE
    both = LovaszSoftmaxLoss(per_image=True)(logits, target)
    first = LovaszSoftmaxLoss(per_image=True)(logits[:1], target[:1])
    torch.testing.assert_close(both, first, rtol=1e-12, atol=0)


def test_ignore_pixels_have_no_effect():
    logits, target = random_case(seed=24)
    assert_ignore_has_no_effect(LovaszSoftmaxLoss(), logits, target)
    assert_ignore_has_no_effect(LovaszSoftmaxLoss(per_image=True), logits, target)


@pytest.mark.parametrize("per_image", [False, True])
def test_all_ignore_is_connected_zero(per_image):
    loss = LovaszSoftmaxLoss(per_image=per_image)
    assert_all_ignore_gives_connected_zero(loss, torch.randn(2, 3, 4, 4))


def test_gradcheck():
    logits, target = random_case(seed=25, batch=1, classes=3, height=3, width=4)
    assert torch.autograd.gradcheck(
        lambda x: LovaszSoftmaxLoss()(x, target), (logits,), fast_mode=True
    )


def test_low_precision_input_gives_float32():
    logits, target = random_case(seed=26)
    assert LovaszSoftmaxLoss()(logits.detach().bfloat16(), target).dtype == torch.float32


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"classes": "some"}, "classes"),
        ({"classes": []}, "classes"),
        ({"per_image": 1}, "per_image"),
        ({"ignore_index": None, "classes": [0.5]}, "classes"),
    ],
)
def test_invalid_options_raise(kwargs, match):
    with pytest.raises(InvalidOptionError, match=match):
        LovaszSoftmaxLoss(**kwargs)
