"""A sanity suite for every loss of the project (issue 22), over tests/losses/_specs.py.

For each loss: the gradient reaches the logits and is finite under bf16 autocast (CPU); a pixel
labelled ignore has no influence on value or gradient (Lossd: per ignore_mode); the value is
invariant to batch splitting where the definition says so (``Spec.split``); dtype and device
are preserved; a tiny network overfits one batch with base (soft CE + Dice) + that loss.
"""

import pytest
import torch
from torch import nn

import lossd.losses.functional as LF
from tests.losses._specs import IDS, IGNORE, NUM_CLASSES, SPECS, blocky_case

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
        ],
    ),
]


def tiny_network(num_classes: int = NUM_CLASSES, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, num_classes, 1))


def images_of(target: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """RGB-like inputs that carry the target (one colour per class, ignore grey) plus noise."""
    generator = torch.Generator().manual_seed(seed)
    palette = torch.rand(NUM_CLASSES + 1, 3, generator=generator)
    index = target.clamp(max=NUM_CLASSES).long()
    images = palette[index].permute(0, 3, 1, 2)
    return images + 0.3 * torch.randn(images.shape, generator=generator)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_gradient_reaches_the_logits_and_is_finite_under_bf16_autocast(spec):
    _, target = blocky_case(seed=20)
    network = tiny_network()
    loss = spec.build()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = network(images_of(target))
        logits.retain_grad()
        value = loss(logits, target)
    assert logits.dtype == torch.bfloat16
    assert value.dtype in (torch.float32, torch.float64) and torch.isfinite(value)
    value.backward()
    assert logits.grad is not None and logits.grad.dtype == torch.bfloat16
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    for parameter in network.parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all()


def value_and_grad(loss, logits, target):
    leaf = logits.detach().clone().requires_grad_()
    value = loss(leaf, target)
    (grad,) = torch.autograd.grad(value, leaf)
    return value.detach(), grad


@pytest.mark.parametrize("spec", [s for s in SPECS if s.name != "lossd_authors"], ids=str)
def test_an_ignored_pixel_has_no_influence(spec):
    logits, target = blocky_case(seed=21)
    ignored = (target == IGNORE).unsqueeze(1).expand_as(logits)
    loss = spec.build()
    value, grad = value_and_grad(loss, logits, target)
    changed = logits + 5.0 * torch.randn(logits.shape, generator=torch.Generator().manual_seed(3))
    other_value, other_grad = value_and_grad(loss, torch.where(ignored, changed, logits), target)
    torch.testing.assert_close(other_value, value, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(other_grad, grad, rtol=1e-5, atol=1e-7)
    assert torch.count_nonzero(grad[ignored]) == 0


def test_an_ignored_pixel_is_background_under_ignore_mode_authors():
    # DistanceLoss(ignore_mode="authors") keeps ignored pixels in the mean as background of
    # every class (qwqwqer233/Lossd lossd.py@86ed3c0): a prediction there is penalised like a
    # false positive, so their logits do get a gradient, and the value depends on them.
    logits, target = blocky_case(seed=21)
    ignored = (target == IGNORE).unsqueeze(1).expand_as(logits)
    loss = LF.distance_loss
    value, grad = value_and_grad(
        lambda x, t: loss(x, t, ignore_index=IGNORE, ignore_mode="authors"), logits, target
    )
    assert torch.count_nonzero(grad[ignored]) > 0
    shifted = torch.where(ignored, logits.roll(1, dims=1), logits)
    other = loss(shifted, target, ignore_index=IGNORE, ignore_mode="authors")
    assert not torch.equal(other, value)


SPLIT_SPECS = [s for s in SPECS if s.split is not None]


@pytest.mark.parametrize("spec", SPLIT_SPECS, ids=[s.name for s in SPLIT_SPECS])
def test_value_is_invariant_to_batch_splitting_where_the_definition_says_so(spec):
    logits, target = blocky_case(seed=22, batch=4, ignore=False)
    loss = spec.build(**spec.split_options)
    whole = loss(logits, target)
    parts = torch.stack([loss(logits[i : i + 2], target[i : i + 2]) for i in (0, 2)])
    if spec.split == "sum":
        torch.testing.assert_close(whole, parts.sum(), rtol=1e-5, atol=1e-6)
    elif spec.split == "mean":
        torch.testing.assert_close(whole, parts.mean(), rtol=1e-5, atol=1e-6)
    else:  # "between": a count-weighted mean of the parts
        assert parts.min() - 1e-6 <= whole <= parts.max() + 1e-6


def test_every_loss_states_its_batch_splitting():
    for spec in SPECS:
        assert spec.split in ("sum", "mean", "between") or spec.split_reason, spec.name


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_dtype_and_device_are_preserved(spec, device):
    logits, target = blocky_case(seed=23)
    loss = spec.build().to(device)
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        leaf = logits.to(device=device, dtype=dtype).requires_grad_()
        value = loss(leaf, target.to(device))
        (grad,) = torch.autograd.grad(value, leaf)
        assert grad.dtype == dtype and grad.device == leaf.device
        assert value.ndim == 0 and value.device == leaf.device
        # float32 for half, bfloat16 and float32 logits; float64 logits keep float64, except
        # Lossd, whose float32 scalar is documented (DistanceLoss: "output: scalar, float32").
        wide = dtype == torch.float64 and spec.module.__name__ != "DistanceLoss"
        assert value.dtype == (torch.float64 if wide else torch.float32)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_a_tiny_network_overfits_one_batch_with_base_plus_the_loss(spec):
    _, target = blocky_case(seed=24)
    images = images_of(target, seed=1)
    network = tiny_network(seed=2)
    extra = spec.build()
    optimiser = torch.optim.Adam(network.parameters(), lr=0.02)
    valid = target != IGNORE

    def step() -> tuple[float, float]:
        logits = network(images)
        base = LF.soft_cross_entropy_loss(logits, target) + LF.dice_loss(logits, target)
        total = base + extra(logits, target)
        error = (logits.argmax(1) != target)[valid].float().mean()
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        return float(total.detach()), float(error)

    first_total, first_error = step()
    for _ in range(40):
        total, error = step()
    assert total < first_total
    assert error < min(first_error, 0.2)
