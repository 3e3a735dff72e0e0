import sys

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from lossd.errors import InvalidOptionError
from lossd.losses import ClDiceLoss, ConstantWeight, SegmentationObjective
from lossd.losses import cldice as cldice_module
from lossd.losses.cldice import binary_skeleton, soft_skeleton
from tests.losses._naive_competitors import (
    IGNORE,
    assert_all_ignore_gives_connected_zero,
    assert_ignore_has_no_effect,
    naive_cldice,
    naive_soft_skeleton,
    pooled_soft_skeleton,
    random_case,
    value_and_grad,
)


def random_maps(seed: int, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator).to(dtype)


@pytest.mark.parametrize("iterations", [0, 1, 3])
def test_soft_skeleton_matches_explicit_windows(iterations):
    maps = random_maps(81, (3, 7, 9), torch.float64)
    result = soft_skeleton(maps, iterations)
    for image, skel in zip(maps, result, strict=True):
        torch.testing.assert_close(skel, naive_soft_skeleton(image, iterations), rtol=0, atol=0)


def test_binary_skeleton_equals_the_soft_skeleton_of_a_mask():
    generator = torch.Generator().manual_seed(82)
    masks = torch.rand(2, 3, 16, 19, generator=generator) < 0.6
    expected = soft_skeleton(masks.double(), 10) > 0
    assert torch.equal(binary_skeleton(masks, 10), expected)
    assert torch.equal(
        soft_skeleton(masks.double(), 10).unique(), torch.tensor([0.0, 1.0]).double()
    )


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_skeleton_gradient_matches_pooling_autograd_at_the_default_iterations(dtype):
    # Values and gradients of Σ upstream · skel against autograd through max-pooling (the
    # reference's formulation), on maps large enough for all 10 steps to matter.
    maps = random_maps(83, (2, 3, 30, 33), dtype)
    maps[0, 0, 5:20, 4:9] = 0.0  # exact ties (an ignore area)
    upstream = random_maps(84, (2, 3, 30, 33), dtype) - 0.3
    leaf = maps.clone().requires_grad_(True)
    truth = (upstream > 0).to(dtype)
    sums = cldice_module._SkeletonSums.apply(leaf, truth, 10)
    weights = torch.tensor([[0.7, -1.3, 2.0], [0.4, 0.1, -0.5]], dtype=dtype)
    (grad,) = torch.autograd.grad((sums * weights).sum(), leaf)
    reference_leaf = maps.clone().requires_grad_(True)
    skel = pooled_soft_skeleton(reference_leaf, 10)
    dims = (0, 2, 3)
    reference_sums = torch.stack([(skel * truth).sum(dims), skel.sum(dims)])
    (expected,) = torch.autograd.grad((reference_sums * weights).sum(), reference_leaf)
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(sums, reference_sums.detach(), rtol=tolerance, atol=tolerance)
    # Equal values of different pixels (the zero block) may route the gradient to another
    # pixel of the tie: elsewhere the gradients agree, over the block their sums do.
    tie = maps == 0
    torch.testing.assert_close(grad[~tie], expected[~tie], rtol=tolerance, atol=tolerance)
    torch.testing.assert_close(grad[tie].sum(), expected[tie].sum(), rtol=tolerance, atol=1e-4)
    assert grad[~tie].abs().sum() > 0


@pytest.mark.parametrize(("alpha", "classes"), [(0.5, None), (1.0, [0, 2]), (0.0, [1])])
def test_matches_naive_loop(alpha, classes):
    logits, target = random_case(seed=85, classes=3, height=7, width=8)
    loss = ClDiceLoss(iterations=3, alpha=alpha, classes=classes)
    value, grad = value_and_grad(loss, logits, target)
    expected, expected_grad = value_and_grad(
        lambda x, t: naive_cldice(x, t, 3, 1.0, alpha, classes, IGNORE), logits, target
    )
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-10, atol=1e-14)


def test_float32_path_matches_naive_loop():
    logits, target = random_case(seed=86, classes=3, height=7, width=8)
    loss = ClDiceLoss(iterations=3)
    value, grad = value_and_grad(loss, logits.float(), target)
    expected, expected_grad = value_and_grad(
        lambda x, t: naive_cldice(x, t, 3, 1.0, 0.5, None, IGNORE), logits, target
    )
    torch.testing.assert_close(value.double(), expected, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(grad.double(), expected_grad, rtol=1e-4, atol=1e-7)


def test_torch_morphology_equals_opencv(monkeypatch):
    # The CUDA path uses torch shifts: run it on CPU and compare with OpenCV, values (also
    # index-packed float64) and the whole loss.
    maps = random_maps(87, (4, 11, 13), torch.float32)
    packed = cldice_module._Sources(maps).start
    results = {}
    for use_opencv in (True, False):
        with monkeypatch.context() as patch:
            if not use_opencv:  # OpenCV missing: torch shifts everywhere (binary_skeleton too)
                patch.setitem(sys.modules, "cv2", None)
            outputs = []
            for image in (maps, maps.double(), packed):
                eroded, dilated = torch.empty_like(image), torch.empty_like(image)
                cldice_module._erode_into(eroded, image)
                cldice_module._dilate_into(dilated, image, torch.empty_like(image))
                outputs += [eroded, dilated]
            logits, target = random_case(seed=88, classes=3, height=9, width=10)
            outputs += list(value_and_grad(ClDiceLoss(iterations=4), logits.float(), target))
            outputs.append(binary_skeleton(target == 1, iterations=4))
            results[use_opencv] = outputs
    for opencv, shifts in zip(results[True], results[False], strict=True):
        assert torch.equal(opencv, shifts)


def thin_line(gap: bool) -> tuple[torch.Tensor, torch.Tensor]:
    target = torch.zeros(1, 5, 7, dtype=torch.long)
    target[0, 2] = 1
    predicted = target.clone()
    if gap:
        predicted[0, 2, 3] = 0
    logits = 40.0 * F.one_hot(predicted, 2).permute(0, 3, 1, 2).double()
    return logits, target


def test_hand_worked_thin_line():
    # A 1-pixel line of class 1 is its own skeleton. Perfect prediction: Tprec = Tsens = 1,
    # Dice 1: loss 0. With the centre pixel missed: S_P = the 6 predicted pixels, all on the
    # line: Tprec = 7/7; Tsens = (6 + 1)/(7 + 1); clDice = 1 - 2 (7/8) / (15/8) = 1/15;
    # Dice = 1 - (2·6 + 1)/(7 + 6 + 1) = 1/14; loss = (1/14 + 1/15) / 2.
    loss = ClDiceLoss(classes=[1], ignore_index=None)
    logits, target = thin_line(gap=False)
    assert float(loss(logits, target)) == pytest.approx(0.0, abs=1e-12)
    logits, target = thin_line(gap=True)
    assert float(loss(logits, target)) == pytest.approx((1 / 14 + 1 / 15) / 2, abs=1e-12)
    assert float(ClDiceLoss(classes=[1], alpha=1.0, ignore_index=None)(logits, target)) == (
        pytest.approx(1 / 15, abs=1e-12)
    )


def test_perfect_prediction_is_zero():
    _, target = random_case(seed=89, classes=3, height=12, width=12, ignore_fraction=0.0)
    perfect = 40.0 * F.one_hot(target, 3).permute(0, 3, 1, 2).double()
    assert float(ClDiceLoss(ignore_index=None)(perfect, target)) == pytest.approx(0.0, abs=1e-12)


def test_ignore_pixels_have_no_effect():
    logits, target = random_case(seed=90, height=8, width=9)
    assert_ignore_has_no_effect(ClDiceLoss(iterations=4), logits, target)


def test_all_ignore_is_connected_zero():
    assert_all_ignore_gives_connected_zero(ClDiceLoss(), torch.randn(2, 3, 6, 6))


def test_gradient_is_finite_and_reaches_the_logits():
    logits, target = random_case(seed=91, height=10, width=11)
    _, grad = value_and_grad(ClDiceLoss(), logits.float(), target)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_gradcheck():
    logits, target = random_case(seed=92, batch=1, classes=3, height=5, width=6)
    assert torch.autograd.gradcheck(lambda x: ClDiceLoss(iterations=2)(x, target), (logits,))


def test_low_precision_input_gives_float32():
    logits, target = random_case(seed=93)
    assert ClDiceLoss()(logits.detach().half(), target).dtype == torch.float32


@pytest.mark.parametrize(
    "kwargs", [{"iterations": -1}, {"smooth": 0.0}, {"alpha": 1.5}, {"classes": [0, 0]}]
)
def test_invalid_options_raise(kwargs):
    with pytest.raises(InvalidOptionError, match=next(iter(kwargs))):
        ClDiceLoss(**kwargs)


def test_config_builds_the_published_setting(make_cfg):
    cfg = make_cfg("loss=cldice")
    objective = instantiate(cfg.loss.objective)
    assert isinstance(objective, SegmentationObjective)
    extra = objective.extra
    assert isinstance(extra, ClDiceLoss)
    assert (extra.iterations, extra.smooth, extra.classes) == (10, 1.0, None)
    # the recipe already has Dice (weight 1): clDice alone at weight 1 keeps the reference's
    # 1:1 Dice:clDice ratio (soft_dice_cldice with alpha 0.5)
    assert extra.alpha == 1.0 and objective.extra_weight == 1.0
    assert objective.main_weights["dice"] == 1.0
    assert isinstance(objective.schedule, ConstantWeight) and objective.extra_name == "cldice"
