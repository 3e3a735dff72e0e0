import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from scipy import ndimage

from lossd.errors import InvalidOptionError
from lossd.losses import HausdorffDTLoss, SegmentationObjective, StealWeight, hausdorff_dt
from lossd.losses._functional import euclidean_distance_to
from lossd.losses.hausdorff_dt import boundary_distance_maps, label_distance_maps
from tests.losses._naive_competitors import (
    IGNORE,
    assert_all_ignore_gives_connected_zero,
    assert_ignore_has_no_effect,
    naive_hd_dt,
    random_case,
    scipy_boundary_distance,
    value_and_grad,
)


@pytest.fixture(params=["opencv", "torch"])
def backend(request, monkeypatch) -> str:
    """Both ways the maps are made on a CPU: OpenCV (one image per worker) and the generic
    tensor path (scipy or the project's transform), the latter by hiding OpenCV."""
    if request.param == "torch":
        monkeypatch.setattr(hausdorff_dt, "optional_module", lambda name: None)
    return request.param


def random_labels(seed: int, batch: int, labels: int, height: int, width: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    result = torch.randint(0, labels, (batch, height, width), generator=generator)
    result[0] = 0  # only label 0: the others absent, label 0 whole
    result[1, 2:5, 3:6] = labels - 1
    return result


def test_label_distance_maps_match_scipy():
    labels = random_labels(seed=71, batch=4, labels=3, height=9, width=12)
    result = label_distance_maps(labels, 3)
    onehot = labels.unsqueeze(1) == torch.arange(3).view(1, 3, 1, 1)
    torch.testing.assert_close(result, euclidean_distance_to(onehot), rtol=1e-6, atol=1e-6)
    for image, maps in zip(labels.numpy(), result.numpy(), strict=True):
        for label in range(3):
            if (image == label).any():
                expected = ndimage.distance_transform_edt(image != label)
                np.testing.assert_allclose(maps[label], expected, rtol=1e-6)
            else:
                assert np.isinf(maps[label]).all()


@pytest.mark.parametrize("power", [1.0, 2.0, 0.5])
def test_boundary_distance_maps_match_the_monai_field(power, backend):
    labels = random_labels(seed=72, batch=3, labels=3, height=8, width=10)
    result = boundary_distance_maps(labels, 3, power).numpy()
    for image, maps in zip(labels.numpy(), result, strict=True):
        for label in range(3):
            expected = scipy_boundary_distance(image == label) ** power
            np.testing.assert_allclose(maps[label], expected, rtol=1e-5, atol=1e-6)
    assert np.all(result[0] == 0)  # label 0 whole, labels 1, 2 absent: no boundary


@pytest.mark.parametrize(("alpha", "classes"), [(2.0, None), (1.0, [1, 2]), (2.0, [0])])
@pytest.mark.parametrize("seed", [73, 74])
def test_matches_naive_loop(alpha, classes, seed, backend):
    logits, target = random_case(seed=seed, classes=3, height=7, width=8)
    loss = HausdorffDTLoss(alpha=alpha, classes=classes)
    value, grad = value_and_grad(loss, logits, target)
    expected, expected_grad = value_and_grad(
        lambda x, t: naive_hd_dt(x, t, alpha, classes, IGNORE), logits, target
    )
    # the maps are float32 (OpenCV), exact up to float32 rounding
    torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-6, atol=1e-9)


def test_hand_worked_strip():
    # Target [0, 0, 1, 1]. Distance to the boundary of either class: [2, 1, 1, 2]; squared
    # [4, 1, 1, 4], sum 10. Logits 0: p = 1/2, the argmax (first maximum) is class 0
    # everywhere, so the prediction maps are 0 (class 0 whole, class 1 empty).
    # Loss = 2 classes * 0.25 * 10 / (4 pixels * 2 classes) = 5/8.
    target = torch.tensor([[[0, 0, 1, 1]]])
    zero = torch.zeros(1, 2, 1, 4, dtype=torch.float64)
    assert float(HausdorffDTLoss(ignore_index=None)(zero, target)) == pytest.approx(5 / 8)
    # Logits +1 on the true class: the prediction is right, both maps equal, weight 2 d^2;
    # every class has error (1 - sigmoid(1))^2 at every pixel.
    soft = F.one_hot(target, 2).permute(0, 3, 1, 2).double()
    error = (1 - 1 / (1 + math.exp(-1))) ** 2
    expected = 2 * error * 2 * 10 / 8
    assert float(HausdorffDTLoss(ignore_index=None)(soft, target)) == pytest.approx(expected)


def test_perfect_prediction_is_zero_and_a_wrong_one_costs_more():
    _, target = random_case(seed=75, classes=3, height=8, width=8, ignore_fraction=0.0)
    loss = HausdorffDTLoss(ignore_index=None)
    perfect = 40.0 * F.one_hot(target, 3).permute(0, 3, 1, 2).double()
    assert float(loss(perfect, target)) < 1e-20
    shifted = 40.0 * F.one_hot(target.roll(2, dims=2), 3).permute(0, 3, 1, 2).double()
    far = 40.0 * F.one_hot(target.roll(4, dims=2), 3).permute(0, 3, 1, 2).double()
    assert 0 < float(loss(shifted, target)) < float(loss(far, target))


def test_ignore_pixels_have_no_effect():
    logits, target = random_case(seed=76)
    assert_ignore_has_no_effect(HausdorffDTLoss(), logits, target)


def test_all_ignore_is_connected_zero():
    assert_all_ignore_gives_connected_zero(HausdorffDTLoss(), torch.randn(2, 3, 4, 4))


def test_gradient_is_finite_and_reaches_the_logits():
    logits, target = random_case(seed=77)
    _, grad = value_and_grad(HausdorffDTLoss(), logits, target)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_gradcheck():
    logits, target = random_case(seed=78, batch=1, classes=3, height=4, width=5)
    assert torch.autograd.gradcheck(lambda x: HausdorffDTLoss()(x, target), (logits,))


def test_low_precision_input_gives_float32():
    logits, target = random_case(seed=79)
    assert HausdorffDTLoss()(logits.detach().half(), target).dtype == torch.float32


@pytest.mark.parametrize("kwargs", [{"alpha": 0.0}, {"classes": [1, 1]}, {"ignore_index": 2.5}])
def test_invalid_options_raise(kwargs):
    with pytest.raises(InvalidOptionError, match=next(iter(kwargs))):
        HausdorffDTLoss(**kwargs)


def test_config_builds_the_published_setting(make_cfg):
    cfg = make_cfg("loss=hd_dt")
    objective = instantiate(cfg.loss.objective)
    assert isinstance(objective, SegmentationObjective)
    assert isinstance(objective.extra, HausdorffDTLoss)
    assert objective.extra.alpha == 2.0 and objective.extra.classes is None
    assert objective.extra_name == "hd_dt"
    # SegWithDistMap train_LA_HD.py: alpha (CE + Dice) + (1 - alpha) HD, alpha from 1, minus
    # 0.001 per epoch, floor 0.001.
    assert objective.schedule == StealWeight(to_steal=0.001, floor=0.001)
    assert objective.extra_weight == 0.0
    for epoch in (0, 1, 10, 500):
        objective.set_progress(epoch + 0.5)
        base, extra = objective.scales()
        alpha = max(1.0 - 0.001 * epoch, 0.001)
        assert base == pytest.approx(alpha) and extra == pytest.approx(1.0 - alpha)
