"""DistanceLoss (Lossd) against the naive reference of docs/lossd.md: values and gradients."""

import importlib.util
import math
import re
from pathlib import Path

import pytest
import torch

from lossd.errors import DataFormatError, InvalidOptionError
from lossd.losses import DistanceLoss, TargetDistanceMaps, distance_loss, target_distance_maps
from lossd.losses.distance import first_max_index

_spec = importlib.util.spec_from_file_location(
    "_naive_lossd_for_loss", Path(__file__).with_name("_naive_lossd.py")
)
assert _spec is not None and _spec.loader is not None
naive = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(naive)

TOL = 1e-5


def value_and_grad(loss_fn, logits, target, **kwargs):
    leaf = logits.detach().clone().requires_grad_()
    value = loss_fn(leaf, target, **kwargs)
    (grad,) = torch.autograd.grad(value, leaf)
    return value.detach(), grad


def assert_matches_naive(logits, target, **options):
    """Value within 1e-5 (relative when large), gradient within 1e-5 of its largest entry."""
    num_classes = logits.shape[1]
    ref_value, ref_grad = value_and_grad(naive.naive_lossd, logits, target, **options)
    loss = DistanceLoss(num_classes, **options)
    value, grad = value_and_grad(loss, logits, target)
    assert value.dtype == torch.float32 and value.ndim == 0
    torch.testing.assert_close(value, ref_value.float(), rtol=TOL, atol=TOL)
    scale = float(ref_grad.abs().max())
    torch.testing.assert_close(grad, ref_grad, rtol=TOL, atol=TOL * max(scale, 1e-12))
    return value, grad


def blob_target(batch, num_classes, height, width, seed):
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randint(
        0, num_classes, (batch, (height + 2) // 3, (width + 2) // 3), generator=gen
    )
    target = coarse.repeat_interleave(3, 1).repeat_interleave(3, 2)[:, :height, :width]
    return target.contiguous()


def noisy_logits(target, num_classes, seed, noise=1.5):
    """Logits that mostly predict the target, with errors near and far from boundaries."""
    gen = torch.Generator().manual_seed(seed)
    onehot = torch.nn.functional.one_hot(target, num_classes).permute(0, 3, 1, 2).float()
    return 2.0 * onehot + noise * torch.randn(onehot.shape, generator=gen)


# --- the worked example of docs/lossd.md --------------------------------------------------------


def worked_example():
    target = torch.zeros(1, 6, 8, dtype=torch.long)
    target[0, 1:5, 1:5] = 1
    logits = torch.zeros(1, 2, 6, 8)
    logits[0, 0] = 0.5
    logits[0, 1, 1:5, 2:7] = 2.0
    return logits, target


@pytest.mark.parametrize("loss_fn", ["fast", "naive"])
def test_worked_example_of_the_spec(loss_fn):
    logits, target = worked_example()
    fn = DistanceLoss(2) if loss_fn == "fast" else naive.naive_lossd
    value, grad = value_and_grad(fn, logits, target)
    assert abs(float(value) - 0.052667) <= 1e-5
    expected_row = torch.tensor([0, -0.000623, 0, 0, 0, 0.000395, 0.000527, 0])
    torch.testing.assert_close(grad[0, 1, 2], expected_row, rtol=0, atol=1e-6)


def test_worked_example_by_hand():
    """The value of the worked example, summed by hand from the per-pixel errors of step 4."""
    logits, target = worked_example()
    n = lambda d: math.log1p(d + 1e-6) / math.log1p(50)  # noqa: E731
    # Column 1 (rows 1-4): class 1 missed at depth 1; class 0 predicted 1 step from class 0.
    # Columns 5, 6 (rows 1-4): class 1 predicted 1 and 2 steps from its truth; class 0
    # missed at depths 1 and 2. All other (pixel, class) pairs have diff 0.
    errors = {1: 4 * [1] + 4 * [1] + 4 * [2], 0: 4 * [1] + 4 * [1] + 4 * [2]}
    pixels = 48
    expected = 0.0
    for diffs in errors.values():
        expected += ((pixels - len(diffs)) * n(0) + sum(n(d) for d in diffs)) / pixels
    expected /= 2
    value = DistanceLoss(2)(logits, target)
    assert abs(float(value) - expected) <= 1e-6


def test_worked_example_signed_map_clipped_at_max_iter_2():
    """The signed map of the spec (full = D(G) - D(not G)), clipped to [-2, 2] at max_iter 2."""
    _, target = worked_example()
    full = torch.tensor(
        [
            [-2, -1, -1, -1, -1, -2, -3, -4],
            [-1, 1, 1, 1, 1, -1, -2, -3],
            [-1, 1, 2, 2, 1, -1, -2, -3],
            [-1, 1, 2, 2, 1, -1, -2, -3],
            [-1, 1, 1, 1, 1, -1, -2, -3],
            [-2, -1, -1, -1, -1, -2, -3, -4],
        ]
    )
    for max_iter, expected in ((50, full), (2, full.clamp(-2, 2))):
        maps = target_distance_maps(target, 2, max_iter)
        inside = target[0] == 1
        signed = torch.where(inside, maps.depth[0].long(), -maps.outside[0, 1].long())
        assert torch.equal(signed, expected)


# --- random inputs against the naive reference --------------------------------------------------


@pytest.mark.parametrize("max_iter", [1, 2, 3, 50, 40])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_random_inputs_match_naive(max_iter, reduction):
    target = blob_target(2, 4, 13, 17, seed=max_iter)
    logits = noisy_logits(target, 4, seed=max_iter + 1)
    assert_matches_naive(logits, target, max_iter=max_iter, reduction=reduction)


@pytest.mark.parametrize(
    ("classes", "class_weights"),
    [([1, 3], None), ([2], [0.5]), ([3, 0, 2], [2.0, 0.25, 1.0]), (None, [1.0, 0.0, 3.0, 0.5])],
)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_class_subsets_and_weights_match_naive(classes, class_weights, reduction):
    target = blob_target(2, 4, 13, 17, seed=5)
    logits = noisy_logits(target, 4, seed=6)
    assert_matches_naive(
        logits, target, classes=classes, class_weights=class_weights, reduction=reduction
    )


def test_uniform_random_logits_match_naive():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 13, 17, generator=gen)
    target = torch.randint(0, 4, (2, 13, 17), generator=gen)
    assert_matches_naive(logits, target)


def test_tied_logits_pick_the_first_class_like_argmax():
    """Integer logits tie often: the prediction is the first maximal class, as argmax(p)."""
    gen = torch.Generator().manual_seed(7)
    logits = torch.randint(0, 3, (2, 4, 13, 17), generator=gen).float()
    target = blob_target(2, 4, 13, 17, seed=7)
    ties = (logits == logits.amax(1, keepdim=True)).sum(1) > 1
    assert ties.float().mean() > 0.3
    assert_matches_naive(logits, target)


@pytest.mark.parametrize("num_classes", [1, 2, 7, 300])
def testfirst_max_index_equals_max_indices(num_classes):
    gen = torch.Generator().manual_seed(num_classes)
    logits = torch.randint(0, 4, (2, num_classes, 5, 6), generator=gen).float()
    logits[1] = torch.randn((num_classes, 5, 6), generator=gen)
    assert torch.equal(first_max_index(logits), logits.max(dim=1).indices)
    logits[0, 0, 0, 0] = float("nan")
    assert first_max_index(logits)[0, 0, 0] == num_classes - 1


def test_gradient_is_sparse_in_the_probabilities():
    """Only misclassified pixels get a gradient, and it is zero wherever k == t."""
    target = blob_target(2, 4, 13, 17, seed=8)
    logits = noisy_logits(target, 4, seed=9)
    _, grad = assert_matches_naive(logits, target)
    wrong = logits.argmax(1) != target
    assert wrong.any() and (~wrong).any()
    assert (grad.abs().sum(1)[~wrong] == 0).all()
    assert (grad.abs().sum(1)[wrong] > 0).all()


# --- edge cases ---------------------------------------------------------------------------------


def logits_for(pred, num_classes):
    """Logits whose argmax is ``pred``, with non-trivial softmax probabilities."""
    gen = torch.Generator().manual_seed(int(pred.sum()))
    onehot = torch.nn.functional.one_hot(pred, num_classes).permute(0, 3, 1, 2).float()
    return 3.0 * onehot + 0.5 * torch.rand(onehot.shape, generator=gen)


def test_class_only_in_prediction_or_only_in_target():
    target = torch.zeros(2, 10, 12, dtype=torch.long)
    target[:, 2:6, 3:8] = 2  # class 2: in the target, never predicted
    pred = torch.zeros_like(target)
    pred[0, 7:9, 1:4] = 3  # class 3: predicted, absent from the target
    pred[1, 0, 0] = 3
    assert_matches_naive(logits_for(pred, 4), target)
    assert_matches_naive(logits_for(pred, 4), target, classes=[3])
    assert_matches_naive(logits_for(pred, 4), target, classes=[2], reduction="sum")


@pytest.mark.parametrize("max_iter", [1, 5, 50])
def test_image_all_one_class(max_iter):
    target = torch.ones(2, 7, 9, dtype=torch.long)
    pred = target.clone()
    assert_matches_naive(logits_for(pred, 3), target, max_iter=max_iter)
    pred[1, 3, 4] = 2  # a false positive deep inside a one-class image
    pred[0, 0, :] = 0  # a wrong border row
    assert_matches_naive(logits_for(pred, 3), target, max_iter=max_iter)


def test_single_pixel_objects_and_objects_on_the_border():
    target = torch.zeros(1, 9, 11, dtype=torch.long)
    target[0, 4, 5] = 1  # single pixel inside
    target[0, 0, 0] = 2  # single pixel in a corner
    target[0, :, 10] = 3  # object along the right border
    target[0, 8, 2:6] = 1  # object along the bottom border
    pred = target.clone()
    pred[0, 4, 5] = 0  # single-pixel object missed
    pred[0, 0, 1] = 2  # corner object grown by one pixel
    pred[0, 3:6, 9] = 3  # border object grown inwards
    pred[0, 8, 2:4] = 2  # part of the bottom object taken by a far class
    for max_iter in (1, 2, 50):
        assert_matches_naive(logits_for(pred, 4), target, max_iter=max_iter)


def test_max_iter_larger_than_the_image():
    target = blob_target(2, 3, 5, 6, seed=1)
    target[1] = 0
    logits = noisy_logits(target, 3, seed=2)
    assert_matches_naive(logits, target, max_iter=100)
    assert_matches_naive(logits, target, max_iter=300)  # int16 maps


def test_no_class_taken_returns_a_zero_that_keeps_the_graph():
    target = torch.zeros(2, 6, 7, dtype=torch.long)
    logits = logits_for(target, 4).requires_grad_()
    value = DistanceLoss(4, classes=[2, 3])(logits, target)
    assert value.requires_grad and float(value.detach()) == 0.0
    value.backward()
    assert logits.grad is not None and (logits.grad == 0).all()
    ref = naive.naive_lossd(logits, target, classes=[2, 3])
    assert float(ref.detach()) == 0.0


def test_batch_of_different_images_and_non_square():
    target = blob_target(3, 5, 8, 19, seed=4)
    target[1] = 4  # one image of a single class
    target[2, :, :10] = 0  # class distribution differs per image
    logits = noisy_logits(target, 5, seed=5, noise=2.0)
    assert_matches_naive(logits, target)
    # Each image's distances are its own: a batch is not one big image.
    one = DistanceLoss(5, reduction="sum")
    assert not torch.isclose(one(logits[:1], target[:1]), one(logits[1:2], target[1:2]))


# --- ignore_index -------------------------------------------------------------------------------


def test_ignore_index_without_ignored_pixels_equals_the_reference():
    target = blob_target(2, 4, 13, 17, seed=11)
    logits = noisy_logits(target, 4, seed=12)
    ref_value, ref_grad = value_and_grad(naive.naive_lossd, logits, target)
    value, grad = value_and_grad(DistanceLoss(4, ignore_index=255), logits, target)
    torch.testing.assert_close(value, ref_value, rtol=TOL, atol=TOL)
    torch.testing.assert_close(grad, ref_grad, rtol=TOL, atol=TOL * float(ref_grad.abs().max()))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_ignore_index_matches_naive(reduction):
    target = blob_target(2, 4, 13, 17, seed=13)
    target[0, 4:9, 5:11] = 255
    target[1, 0, :] = 255
    logits = noisy_logits(target.clamp(max=3), 4, seed=14)
    assert_matches_naive(logits, target, ignore_index=255, reduction=reduction)


def test_ignored_pixels_do_not_count():
    """Ignored pixels: no gradient, and changing their logits does not change the value."""
    target = blob_target(2, 4, 13, 17, seed=15)
    target[:, 3:7, 2:9] = 255
    ignored = target == 255
    logits = noisy_logits(target.clamp(max=3), 4, seed=16)
    loss = DistanceLoss(4, ignore_index=255)
    value, grad = value_and_grad(loss, logits, target)
    assert (grad.permute(0, 2, 3, 1)[ignored] == 0).all()
    # A prediction of class 0 at the ignored pixels (class 0 is also predicted elsewhere).
    assert (logits.argmax(1)[~ignored] == 0).any()
    changed = logits.clone()
    changed[:, 0][ignored] = 50.0
    torch.testing.assert_close(loss(changed, target), value, rtol=1e-6, atol=0)


def test_worked_example_with_an_ignored_column():
    """An ignored column right of the worked example changes no distance of an error pixel
    (column 6 stays 2 steps from a non-0 pixel) and, left out of the mean, not the value."""
    logits, target = worked_example()
    target = torch.cat([target, torch.full((1, 6, 1), 255)], dim=2)
    extra = torch.stack([torch.zeros(6, 1), torch.full((6, 1), 9.0)]).unsqueeze(0)
    logits = torch.cat([logits, extra], dim=3)  # predicts class 1 on the ignored column
    value, grad = value_and_grad(DistanceLoss(2, ignore_index=255), logits, target)
    assert abs(float(value) - 0.052667) <= 1e-5
    expected_row = torch.tensor([0, -0.000623, 0, 0, 0, 0.000395, 0.000527, 0, 0])
    torch.testing.assert_close(grad[0, 1, 2], expected_row, rtol=0, atol=1e-6)


def test_ignore_index_inside_the_class_range():
    target = blob_target(2, 4, 9, 10, seed=17)
    logits = noisy_logits(target, 4, seed=18)
    assert_matches_naive(logits, target, ignore_index=0)


def test_all_pixels_ignored_gives_zero():
    target = torch.full((1, 5, 6), 255, dtype=torch.long)
    logits = torch.randn(1, 3, 5, 6, requires_grad=True)
    value = DistanceLoss(3, ignore_index=255)(logits, target)
    assert float(value.detach()) == 0.0 and value.requires_grad


# --- ignore_mode="authors": ignored pixels are background and stay in the mean ------------------


def n_of(d):
    """The normaliser of docs/lossd.md, step 4, for max_iter = 50."""
    return math.log1p(d + 1e-6) / math.log1p(50)


def ignored_blocks(seed):
    target = blob_target(2, 4, 13, 17, seed=seed)
    target[0, 4:9, 5:11] = 255
    target[1, 0, :] = 255
    target[1, 7:, 12:] = 255
    return target, noisy_logits(target.clamp(max=3), 4, seed=seed + 1, noise=2.5)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_authors_ignore_mode_matches_naive(reduction):
    target, logits = ignored_blocks(seed=41)
    ignored = target == 255
    # the prediction on the ignored pixels is varied (a real test of their terms)
    assert logits.argmax(1)[ignored].unique().numel() == 4
    assert_matches_naive(
        logits, target, ignore_index=255, ignore_mode="authors", reduction=reduction
    )


def test_authors_ignore_mode_with_class_subsets_and_weights_matches_naive():
    target, logits = ignored_blocks(seed=43)
    options = {"classes": [3, 1], "class_weights": [0.5, 2.0], "max_iter": 4}
    assert_matches_naive(logits, target, ignore_index=255, ignore_mode="authors", **options)
    # an ignore value inside the class range: class 0's pixels are background for class 0 too
    target = target.masked_fill(target == 255, 2)
    assert_matches_naive(logits, target, ignore_index=0, ignore_mode="authors", max_iter=3)


def test_a_class_predicted_only_on_ignored_pixels_is_taken_in_authors_mode():
    target = blob_target(2, 3, 12, 12, seed=45)  # classes 0..2 only
    target[:, 4:8, 4:8] = 255
    logits = noisy_logits(target.clamp(max=2), 4, seed=46, noise=0.3)
    logits[:, 3][target == 255] = 4.0  # class 3: predicted on the ignored block only
    pred = logits.argmax(1)
    assert (pred[target != 255] != 3).all() and (pred[target == 255] == 3).all()
    authors = assert_matches_naive(logits, target, ignore_index=255, ignore_mode="authors")
    exclude = assert_matches_naive(logits, target, ignore_index=255, ignore_mode="exclude")
    assert float(authors[0]) != pytest.approx(float(exclude[0]), rel=1e-3)
    # class 3 alone: not taken when ignored pixels are excluded (a graph-keeping zero)
    only3 = {"classes": [3], "ignore_index": 255}
    assert float(DistanceLoss(4, ignore_mode="exclude", **only3)(logits, target)) == 0.0
    assert float(DistanceLoss(4, ignore_mode="authors", **only3)(logits, target)) > 0.01


@pytest.mark.parametrize("ignore_index", [255, None])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_ignore_modes_agree_without_ignored_pixels(ignore_index, reduction):
    target = blob_target(2, 4, 13, 17, seed=47)
    logits = noisy_logits(target, 4, seed=48)
    kwargs = {"ignore_index": ignore_index, "reduction": reduction}
    exclude = value_and_grad(DistanceLoss(4, ignore_mode="exclude", **kwargs), logits, target)
    authors = value_and_grad(DistanceLoss(4, ignore_mode="authors", **kwargs), logits, target)
    assert (authors[1] != 0).any()
    torch.testing.assert_close(authors[0], exclude[0], rtol=1e-6, atol=0)
    torch.testing.assert_close(authors[1], exclude[1], rtol=1e-6, atol=1e-12)
    ref_value, _ = value_and_grad(naive.naive_lossd, logits, target, reduction=reduction)
    torch.testing.assert_close(authors[0], ref_value, rtol=TOL, atol=TOL)


def test_authors_mode_penalises_predictions_on_ignored_pixels():
    """The converse of test_ignored_pixels_do_not_count: gradient and value depend on them."""
    target = blob_target(2, 4, 13, 17, seed=15)
    target[:, 3:7, 2:9] = 255
    ignored = target == 255
    logits = noisy_logits(target.clamp(max=3), 4, seed=16)
    loss = DistanceLoss(4, ignore_index=255, ignore_mode="authors")
    value, grad = value_and_grad(loss, logits, target)
    assert (grad.permute(0, 2, 3, 1)[ignored].abs().sum(1) > 0).all()
    # Predicting class 0 on the ignored pixels: a different cost (distances to class 0).
    changed = logits.clone()
    changed[:, 0][ignored] = 50.0
    assert abs(float(loss(changed, target)) - float(value)) > 1e-4


def test_worked_example_with_an_ignored_column_in_authors_mode():
    """By hand: the ignored column 8 predicts class 1 and stays in the mean (54 pixels).

    Distances of the other pixels do not change (see the exclude-mode test above). On column
    8, class 0 has diff 0 (not predicted, not true) and class 1 has diff = distance to the
    class-1 block (columns 1-4): 4 on rows 1-4, 5 on rows 0 and 5. So the two class sums of
    the spec's example (0.052667 * 2 * 48) gain 6 n(0) + 4 n(4) + 2 n(5), divided by 2 * 54.
    """
    logits, target = worked_example()
    target = torch.cat([target, torch.full((1, 6, 1), 255)], dim=2)
    extra = torch.stack([torch.zeros(6, 1), torch.ones(6, 1)]).unsqueeze(0)
    logits = torch.cat([logits, extra], dim=3)  # predicts class 1 (p = sigmoid(1)) on column 8
    loss = DistanceLoss(2, ignore_index=255, ignore_mode="authors")
    value, grad = value_and_grad(loss, logits, target)
    expected = (0.052667 * 96 + 6 * n_of(0) + 4 * n_of(4) + 2 * n_of(5)) / 108
    assert abs(float(value) - expected) <= 1e-5
    # Columns 0-7: the spec's gradient, rescaled from a mean over 48 to one over 54 pixels.
    # Column 8, class-1 logit: d value / d m_1 = 4 n'(4) / 108 with n'(d) = 1/((1+d) ln 51),
    # times the softmax derivative p1 (1 - p1).
    p1 = 1.0 / (1.0 + math.exp(-1.0))
    column8 = 4.0 / ((1.0 + 4.0 + 1e-6) * math.log1p(50) * 108) * p1 * (1 - p1)
    spec_row = [0, -0.000623, 0, 0, 0, 0.000395, 0.000527, 0]
    expected_row = torch.tensor([g * 48 / 54 for g in spec_row] + [column8])
    torch.testing.assert_close(grad[0, 1, 2], expected_row, rtol=0, atol=1e-6)
    assert column8 > 3e-4  # far above the tolerance: the hand value is really tested
    torch.testing.assert_close(grad[0, 0, :, 8], -grad[0, 1, :, 8])  # two-class softmax


def test_authors_mode_with_every_pixel_ignored():
    """Every predicted class is taken and costs n(max_iter) per pixel: no region anywhere."""
    target = torch.full((1, 5, 6), 255, dtype=torch.long)
    logits = torch.zeros(1, 3, 5, 6)
    logits[0, 1, :2] = 1.0  # class 1 on 12 pixels, class 0 on 18
    value, grad = assert_matches_naive(logits, target, ignore_index=255, ignore_mode="authors")
    expected = ((12 * n_of(50) + 18 * n_of(0)) + (18 * n_of(50) + 12 * n_of(0))) / 30 / 2
    assert abs(float(value) - expected) <= 1e-6
    assert (grad != 0).any()


def test_precomputed_maps_serve_both_ignore_modes():
    target, logits = ignored_blocks(seed=49)
    maps = target_distance_maps(target, 4, ignore_index=255)
    loss = DistanceLoss(4, ignore_index=255, ignore_mode="authors")
    inside_value, inside_grad = value_and_grad(loss, logits, target)
    pre_value, pre_grad = value_and_grad(loss, logits, target, maps=maps)
    assert torch.equal(inside_value, pre_value) and torch.equal(inside_grad, pre_grad)


@pytest.mark.parametrize("mode", [None, "authors", "exclude"])
def test_ignore_mode_is_wired_in_conf_loss_lossd(make_cfg, mode):
    from lossd.engine.config import build

    overrides = ["loss=lossd"] + ([] if mode is None else [f"loss.ignore_mode={mode}"])
    cfg = make_cfg(*overrides)
    loss = build(cfg.loss.objective).extra
    assert isinstance(loss, DistanceLoss)
    assert loss.ignore_mode == (mode or "exclude")
    assert loss.ignore_index == cfg.dataset.ignore_index
    assert f"ignore_mode={loss.ignore_mode!r}" in repr(loss)


# --- precision, autocast, precomputed maps ------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_logits_under_autocast(dtype):
    target = blob_target(2, 4, 13, 17, seed=19)
    logits = noisy_logits(target, 4, seed=20).to(dtype)
    ref_value, ref_grad = value_and_grad(naive.naive_lossd, logits.float(), target)
    leaf = logits.clone().requires_grad_()
    with torch.autocast(device_type="cpu", dtype=dtype):
        value = DistanceLoss(4)(leaf, target)
    assert value.dtype == torch.float32
    value.backward()
    assert leaf.grad is not None and leaf.grad.dtype == dtype
    torch.testing.assert_close(value, ref_value, rtol=TOL, atol=TOL)
    # The gradient is cast to the logits' dtype (as autograd does for the reference): compare
    # with the reference rounded to that dtype, up to one unit in the last place (the float32
    # values may straddle a rounding boundary; fp16 gradients this small are subnormal).
    info = torch.finfo(dtype)
    subnormal_step = info.smallest_normal * info.eps
    torch.testing.assert_close(
        leaf.grad.float(),
        ref_grad.to(dtype).float(),
        rtol=info.eps,
        atol=max(TOL * float(ref_grad.abs().max()), subnormal_step),
    )


def test_double_logits_give_float32():
    target = blob_target(1, 3, 8, 9, seed=21)
    logits = noisy_logits(target, 3, seed=22).double()
    value, grad = assert_matches_naive(logits, target)
    assert value.dtype == torch.float32 and grad.dtype == torch.float64


def test_precomputed_maps_give_the_same_value_and_gradient():
    target = blob_target(2, 4, 13, 17, seed=23)
    target[0, 0, :5] = 255
    logits = noisy_logits(target.clamp(max=3), 4, seed=24)
    loss = DistanceLoss(4, max_iter=7, ignore_index=255)
    maps = target_distance_maps(target, 4, max_iter=7, ignore_index=255)
    assert isinstance(maps, TargetDistanceMaps)
    assert maps.outside.shape == (2, 4, 13, 17) and maps.depth.shape == (2, 13, 17)
    assert not maps.outside.requires_grad
    inside_value, inside_grad = value_and_grad(loss, logits, target)
    pre_value, pre_grad = value_and_grad(loss, logits, target, maps=maps)
    assert torch.equal(inside_value, pre_value) and torch.equal(inside_grad, pre_grad)


def test_precomputed_maps_with_other_options_are_rejected():
    target = blob_target(1, 3, 6, 7, seed=25)
    logits = torch.randn(1, 3, 6, 7)
    with pytest.raises(InvalidOptionError, match="max_iter=5"):
        DistanceLoss(3)(logits, target, maps=target_distance_maps(target, 3, 5))
    with pytest.raises(DataFormatError, match="maps"):
        DistanceLoss(3)(logits[:, :, :5], target[:, :5], target_distance_maps(target, 3, 50))


# --- argument and input validation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_classes": 0}, "num_classes=0"),
        ({"num_classes": 4, "classes": [0, 4]}, "classes contains 4"),
        ({"num_classes": 4, "classes": [-1]}, "classes contains -1"),
        ({"num_classes": 4, "classes": [1, 1]}, "duplicates"),
        ({"num_classes": 4, "classes": []}, "empty"),
        ({"num_classes": 4, "classes": [0, 1], "class_weights": [1.0]}, "1 entries"),
        ({"num_classes": 3, "class_weights": [1.0, 2.0]}, "2 entries"),
        ({"num_classes": 3, "class_weights": [1.0, -2.0, 1.0]}, "-2.0"),
        ({"num_classes": 3, "class_weights": [1.0, float("nan"), 1.0]}, "nan"),
        ({"num_classes": 3, "max_iter": 0}, "max_iter=0"),
        ({"num_classes": 3, "max_iter": 2.5}, "max_iter=2.5"),
        ({"num_classes": 3, "reduction": "max"}, "reduction='max'"),
        ({"num_classes": 3, "ignore_index": "255"}, "ignore_index='255'"),
        (
            {"num_classes": 3, "ignore_mode": "ignore"},
            r"^ignore_mode='ignore'; expected one of \('authors', 'exclude'\)",
        ),
    ],
)
def test_invalid_options_are_rejected(kwargs, match):
    with pytest.raises(InvalidOptionError, match=match):
        DistanceLoss(**kwargs)


@pytest.mark.parametrize(
    ("args", "match"),
    [((0, 50, None), "num_classes=0"), ((3, 0, None), "max_iter=0"), ((3, 5, "x"), "'x'")],
)
def test_target_distance_maps_rejects_invalid_options(args, match):
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    with pytest.raises(InvalidOptionError, match=match):
        target_distance_maps(target, *args)


def test_target_value_out_of_range_is_named():
    logits = torch.randn(1, 4, 5, 5)
    target = torch.zeros(1, 5, 5, dtype=torch.long)
    target[0, 2, 2] = 7
    with pytest.raises(DataFormatError, match="label value 7"):
        DistanceLoss(4)(logits, target)
    target[0, 2, 2] = 255
    with pytest.raises(DataFormatError, match="label value 255"):
        DistanceLoss(4)(logits, target)
    with pytest.raises(DataFormatError, match="label value 255"):
        DistanceLoss(4, ignore_index=254)(logits, target)
    assert torch.isfinite(DistanceLoss(4, ignore_index=255)(logits, target))


@pytest.mark.parametrize(
    ("logits", "target", "match"),
    [
        (torch.randn(1, 3, 5, 5), torch.zeros(1, 5, 5), "dtype torch.float32"),
        (torch.randn(1, 3, 5, 5), torch.zeros(1, 5, 5, dtype=torch.bool), "dtype torch.bool"),
        (torch.randn(1, 4, 5, 5), torch.zeros(1, 5, 5, dtype=torch.long), r"\[B, 3, H, W\]"),
        (torch.randn(3, 5, 5), torch.zeros(1, 5, 5, dtype=torch.long), r"\[B, 3, H, W\]"),
        (torch.randn(1, 3, 5, 5), torch.zeros(1, 5, 6, dtype=torch.long), r"\(1, 5, 5\)"),
        (torch.zeros(1, 3, 5, 5, dtype=torch.long), torch.zeros(1, 5, 5), "floating-point"),
    ],
)
def test_malformed_inputs_are_rejected(logits, target, match):
    with pytest.raises(DataFormatError, match=match):
        DistanceLoss(3)(logits, target)


def test_uint8_target_is_accepted():
    target = blob_target(1, 3, 8, 9, seed=26)
    logits = noisy_logits(target, 3, seed=27)
    expected = DistanceLoss(3)(logits, target)
    assert torch.equal(DistanceLoss(3)(logits, target.to(torch.uint8)), expected)


# --- the path on misclassified pixels only (DistanceLoss(sparse=True)) -------------------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"reduction": "sum", "classes": [0, 2], "class_weights": [0.5, 2.0]},
        {"ignore_index": 255},
        {"ignore_index": 255, "ignore_mode": "authors"},
        {"max_iter": 3},
    ],
)
def test_sparse_and_dense_paths_agree(options):
    target = blob_target(2, 4, 13, 17, seed=40)
    if "ignore_index" in options:
        target[:, 2:5, 3:9] = 255
    logits = noisy_logits(target.clamp(max=3), 4, seed=41)
    loss = DistanceLoss(4, sparse=True, **options)
    sparse = value_and_grad(loss, logits, target)
    dense = value_and_grad(DistanceLoss(4, **options), logits, target)
    torch.testing.assert_close(sparse[0], dense[0], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(sparse[1], dense[1], rtol=1e-6, atol=1e-9)
    # channels-last (non-contiguous) logits take the same path with the same numbers
    strided = value_and_grad(loss, logits.to(memory_format=torch.channels_last), target)
    torch.testing.assert_close(strided[0], sparse[0], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(strided[1], sparse[1], rtol=1e-6, atol=1e-9)


# --- issue 24: the functional form, packed maps, binary logits, many classes, messages ---------


def test_the_functional_form_equals_the_module_and_the_naive_reference():
    target = blob_target(2, 4, 11, 10, seed=31)
    target[0, :2, :3] = 255
    logits = noisy_logits(target.clamp(max=3), 4, seed=31)
    options = {"classes": [0, 2, 3], "class_weights": [1.0, 0.5, 2.0], "max_iter": 7}
    options |= {"reduction": "sum", "ignore_index": 255}
    value, grad = value_and_grad(distance_loss, logits, target, **options)
    module_value, module_grad = value_and_grad(DistanceLoss(4, **options), logits, target)
    assert torch.equal(value, module_value) and torch.equal(grad, module_grad)
    ref_value, ref_grad = value_and_grad(naive.naive_lossd, logits, target, **options)
    torch.testing.assert_close(value, ref_value.float(), rtol=TOL, atol=TOL)
    torch.testing.assert_close(grad, ref_grad, rtol=TOL, atol=TOL * float(ref_grad.abs().max()))


@pytest.mark.parametrize("ignore_index", [None, 255])
def test_packed_maps_round_trip_and_give_the_same_loss(ignore_index):
    target = blob_target(2, 3, 9, 8, seed=32)
    if ignore_index is not None:
        target[1, 4:, :2] = ignore_index
    logits = noisy_logits(target.clamp(max=2), 3, seed=32)
    maps = target_distance_maps(target, 3, 6, ignore_index)
    packed = maps.packed()
    assert packed.shape == (2, 4, 9, 8)
    assert torch.equal(packed[:, :3], maps.outside) and torch.equal(packed[:, 3], maps.depth)
    again = TargetDistanceMaps.from_packed(packed, 6, ignore_index)
    assert torch.equal(again.outside, maps.outside) and torch.equal(again.depth, maps.depth)
    assert (again.max_iter, again.ignore_index) == (6, ignore_index)
    loss = DistanceLoss(3, max_iter=6, ignore_index=ignore_index)
    expected = value_and_grad(loss, logits, target)
    for given in (maps, packed):
        got = value_and_grad(loss, logits, target, maps=given)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
        functional = value_and_grad(
            distance_loss, logits, target, max_iter=6, ignore_index=ignore_index, maps=given
        )
        assert torch.equal(functional[0], expected[0])


@pytest.mark.parametrize(
    "packed",
    [
        torch.zeros(2, 4, 9, 8),  # floating point
        torch.zeros(2, 4, 9, 8, dtype=torch.bool),
        torch.zeros(4, 9, 8, dtype=torch.long),  # no batch axis
        torch.zeros(2, 1, 9, 8, dtype=torch.long),  # no class channel
        [[0]],
    ],
)
def test_malformed_packed_maps_are_refused(packed):
    shape = tuple(packed.shape) if isinstance(packed, torch.Tensor) else "list"
    with pytest.raises(
        DataFormatError, match=re.escape(f"packed distance maps {shape} are not valid")
    ):
        TargetDistanceMaps.from_packed(packed, 50, None)


def test_maps_of_other_options_or_shapes_are_refused():
    target = blob_target(2, 3, 9, 8, seed=33)
    logits = noisy_logits(target, 3, seed=33)
    loss = DistanceLoss(3, max_iter=50, ignore_index=255)
    with pytest.raises(
        InvalidOptionError,
        match=re.escape(
            "maps were computed with max_iter=10, ignore_index=255; this loss has max_iter=50, "
            "ignore_index=255"
        ),
    ):
        loss(logits, target, target_distance_maps(target, 3, 10, 255))
    with pytest.raises(InvalidOptionError, match="ignore_index=None; this loss has"):
        loss(logits, target, target_distance_maps(target, 3, 50, None))
    other = target_distance_maps(target[:1], 3, 50, 255)  # one image of two
    with pytest.raises(DataFormatError, match=r"maps have outside \(1, 3, 9, 8\) and depth"):
        loss(logits, target, other)
    with pytest.raises(DataFormatError, match=r"maps have outside \(1, 3, 9, 8\)"):
        loss(logits, target, other.packed())


def test_binary_logits_are_the_two_classes_minus_and_plus_half():
    target = blob_target(2, 2, 8, 9, seed=34)
    x = noisy_logits(target, 2, seed=34)[:, 1:] - 0.3
    two = torch.cat([-x / 2, x / 2], dim=1)
    value, grad = value_and_grad(DistanceLoss(2), x, target)
    ref_value, ref_grad = value_and_grad(naive.naive_lossd, two, target)
    torch.testing.assert_close(value, ref_value.float(), rtol=TOL, atol=TOL)
    # d/dx of f(-x/2, x/2) = (df/dx1 - df/dx0) / 2
    torch.testing.assert_close(grad, (ref_grad[:, 1:] - ref_grad[:, :1]) / 2, rtol=TOL, atol=TOL)
    assert torch.equal(value_and_grad(distance_loss, x, target)[0], value)


def test_257_classes_keep_the_class_indices_of_the_backward():
    # more classes than a byte holds: the saved class maps must stay wider than uint8
    gen = torch.Generator().manual_seed(35)
    target = torch.randint(250, 257, (1, 4, 5), generator=gen)
    logits = torch.randn(1, 257, 4, 5, generator=gen)
    logits[0, 256, 1, 2] = 20.0  # predicts class 256 ...
    target[0, 1, 2] = 251  # ... where the truth is another class
    assert_matches_naive(logits, target, max_iter=3)


def test_a_perfect_prediction_costs_the_log_of_the_epsilon():
    # every diff is 0: each pixel adds n(0) = log1p(1e-6) / log1p(max_iter) (the authors'
    # normalize_log, docs/lossd.md step 4), so the mean is n(0), not 0
    target = blob_target(1, 3, 6, 6, seed=36)
    logits = 10.0 * torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float()
    value = DistanceLoss(3, max_iter=50)(logits, target)
    assert float(value) == pytest.approx(math.log1p(1e-6) / math.log1p(50), rel=1e-4)
    assert float(value) > 0


def test_errors_name_the_shapes():
    logits = torch.zeros(2, 3, 4, 4)
    with pytest.raises(
        DataFormatError,
        match=re.escape(
            "logits have shape (2, 3, 4, 4); expected [B, 2, H, W] "
            "(or [B, 1, H, W] for binary masks)"
        ),
    ):
        DistanceLoss(2)(logits, torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(
        DataFormatError,
        match=re.escape("logits have shape (2, 3, 4, 4); expected [B, 4, H, W]") + "$",
    ):
        DistanceLoss(4)(logits, torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(
        DataFormatError, match=re.escape("logits have shape (3, 4, 4); expected [B, C, H, W]")
    ):
        distance_loss(torch.zeros(3, 4, 4), torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(
        DataFormatError, match=re.escape("target has shape list; expected (2, 4, 4) (B, H, W)")
    ):
        DistanceLoss(3)(logits, [[0]])
    with pytest.raises(
        DataFormatError, match=re.escape("target has shape (2, 4); expected (2, 4, 4)")
    ):
        DistanceLoss(3)(logits, torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(DataFormatError, match=r"^target is a list; expected a torch.Tensor$"):
        target_distance_maps([[0]], 3, 50, None)
