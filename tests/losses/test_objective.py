import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossd.errors import InvalidOptionError
from lossd.losses import (
    ConstantWeight,
    DistanceLoss,
    LinearWarmup,
    SegmentationObjective,
    StealWeight,
)

_spec = importlib.util.spec_from_file_location(
    "_naive_lossd_for_objective", Path(__file__).with_name("_naive_lossd.py")
)
assert _spec is not None and _spec.loader is not None
naive = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(naive)


class CE(nn.Module):
    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits, target)


class MeanProb(nn.Module):
    """A stand-in extra term: mean softmax probability of class 0."""

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return logits.softmax(1)[:, 0].mean()


@pytest.fixture
def batch() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    gen = torch.Generator().manual_seed(0)
    main = torch.randn(2, 3, 8, 8, generator=gen)
    aux1 = torch.randn(2, 3, 8, 8, generator=gen)
    aux2 = torch.randn(2, 3, 8, 8, generator=gen)
    target = torch.randint(0, 3, (2, 8, 8), generator=gen)
    return main, aux1, aux2, target


def test_total_is_the_weighted_sum(batch) -> None:
    main, aux1, aux2, target = batch
    objective = SegmentationObjective(
        main={"ce": CE(), "p0": MeanProb()},
        main_weights={"p0": 0.5},
        aux=CE(),
        aux_weights=[0.4, 0.2],
        extra=MeanProb(),
        extra_weight=2.0,
        extra_name="lossd",
    )
    total, terms = objective((main, aux1, aux2), target)
    ce, p0 = F.cross_entropy(main, target), main.softmax(1)[:, 0].mean()
    expected = ce + 0.5 * p0 + 0.4 * F.cross_entropy(aux1, target)
    expected = expected + 0.2 * F.cross_entropy(aux2, target) + 2.0 * p0
    torch.testing.assert_close(total, expected)
    assert set(terms) == {"ce", "p0", "aux0", "aux1", "lossd", "total"}
    torch.testing.assert_close(terms["lossd"], 2.0 * p0)
    assert not terms["total"].requires_grad


def test_eval_output_ignores_aux_weights(batch) -> None:
    main, _, _, target = batch
    objective = SegmentationObjective(main={"ce": CE()}, aux=CE(), aux_weights=[0.4])
    total, terms = objective(main, target)
    torch.testing.assert_close(total, F.cross_entropy(main, target))
    assert "aux" not in terms


def test_aux_count_mismatch_is_explained(batch) -> None:
    main, aux1, aux2, target = batch
    objective = SegmentationObjective(main={"ce": CE()}, aux=CE(), aux_weights=[0.4])
    with pytest.raises(InvalidOptionError, match=r"2 auxiliary output\(s\).*aux_weights=\[0.4\]"):
        objective((main, aux1, aux2), target)


def test_gradient_flows_through_every_term(batch) -> None:
    main, aux1, _, target = batch
    main, aux1 = main.requires_grad_(), aux1.requires_grad_()
    objective = SegmentationObjective(
        main={"ce": CE()}, aux=CE(), aux_weights=[0.4], extra=MeanProb()
    )
    objective((main, aux1), target).total.backward()
    assert main.grad is not None and main.grad.abs().sum() > 0
    assert aux1.grad is not None and aux1.grad.abs().sum() > 0


def _grad(objective, logits, target, extra_outputs=()):
    leaf = logits.detach().clone().requires_grad_()
    outputs = (leaf, *extra_outputs) if extra_outputs else leaf
    (grad,) = torch.autograd.grad(objective(outputs, target).total, leaf)
    return grad


@pytest.mark.parametrize("lambda_d", [1.0, 0.5])
def test_the_lossd_gradient_reaches_the_logits_through_the_objective(batch, lambda_d) -> None:
    """Issue 24, bug 2: a Lossd term detached from the graph adds to the logged loss but not to
    the gradient. With and without the term, the gradients on the logits differ by exactly
    lambda times the gradient of the naive Lossd (tests/losses/_naive_lossd.py, autograd through
    docs/lossd.md's straight-through mask), which is not zero on this batch."""
    main, _, _, target = batch
    base = SegmentationObjective(main={"ce": CE()})
    with_lossd = SegmentationObjective(
        main={"ce": CE()}, extra=DistanceLoss(3), extra_weight=lambda_d, extra_name="lossd"
    )
    leaf = main.detach().clone().requires_grad_()
    (lossd_grad,) = torch.autograd.grad(naive.naive_lossd(leaf, target), leaf)
    assert lossd_grad.abs().sum() > 0  # the batch has misclassified pixels: Lossd pulls on them
    difference = _grad(with_lossd, main, target) - _grad(base, main, target)
    torch.testing.assert_close(difference, lambda_d * lossd_grad, rtol=1e-5, atol=1e-7)


def test_the_extra_gradient_is_scaled_by_the_schedule(batch) -> None:
    """The extra term's gradient follows the schedule's scale: half the weight at half the
    warm-up, none before it starts; the base terms' gradient is unchanged."""
    main, _, _, target = batch
    objective = SegmentationObjective(
        main={"ce": CE()}, extra=MeanProb(), extra_weight=2.0, schedule=LinearWarmup(2.0)
    )
    leaf = main.detach().clone().requires_grad_()
    (ce_grad,) = torch.autograd.grad(F.cross_entropy(leaf, target), leaf)
    (p0_grad,) = torch.autograd.grad(leaf.softmax(1)[:, 0].mean(), leaf)
    objective.set_progress(0.0)
    torch.testing.assert_close(_grad(objective, main, target), ce_grad)
    objective.set_progress(1.0)
    torch.testing.assert_close(_grad(objective, main, target), ce_grad + 1.0 * p0_grad)


def test_invalid_configurations() -> None:
    with pytest.raises(InvalidOptionError, match="at least one loss"):
        SegmentationObjective(main={})
    with pytest.raises(InvalidOptionError, match="unknown terms"):
        SegmentationObjective(main={"ce": CE()}, main_weights={"dice": 1.0})
    with pytest.raises(InvalidOptionError, match="no aux loss"):
        SegmentationObjective(main={"ce": CE()}, aux_weights=[0.4])
    with pytest.raises(InvalidOptionError, match="warmup_epochs"):
        LinearWarmup(warmup_epochs=-1)


def test_schedules_by_hand() -> None:
    assert ConstantWeight()(7.3, 0.5) == (1.0, 0.5)
    warm = LinearWarmup(warmup_epochs=4)
    assert warm(0.0, 2.0) == (1.0, 0.0)
    assert warm(1.0, 2.0) == (1.0, 0.5)
    assert warm(10.0, 2.0) == (1.0, 2.0)
    assert LinearWarmup(0)(0.0, 2.0) == (1.0, 2.0)
    steal = StealWeight(to_steal=0.01, floor=0.1)
    assert steal(0.9, 0.01) == (1.0, 0.01)  # whole epochs only
    base, extra = steal(3.5, 0.01)
    assert base == pytest.approx(0.97) and extra == pytest.approx(0.04)
    assert steal(200.0, 0.01)[0] == pytest.approx(0.1)  # floored


def test_schedule_drives_the_objective(batch) -> None:
    main, _, _, target = batch
    objective = SegmentationObjective(
        main={"ce": CE()}, extra=MeanProb(), extra_weight=1.0, schedule=LinearWarmup(2.0)
    )
    objective.set_progress(0.0)
    _, terms = objective(main, target)
    assert "extra" not in terms  # weight 0: the extra term is not even computed
    objective.set_progress(1.0)
    total, _ = objective(main, target)
    expected = F.cross_entropy(main, target) + 0.5 * main.softmax(1)[:, 0].mean()
    torch.testing.assert_close(total, expected)


def test_defaults_weight_the_extra_term_by_one_under_its_name(batch) -> None:
    main, aux1, _, target = batch
    objective = SegmentationObjective(
        main={"ce": CE()}, aux=CE(), aux_weights=[0.4], extra=MeanProb()
    )
    total, terms = objective((main, aux1), target)
    ce, aux, p0 = (
        F.cross_entropy(main, target),
        F.cross_entropy(aux1, target),
        main.softmax(1)[:, 0].mean(),
    )
    torch.testing.assert_close(total, ce + 0.4 * aux + 1.0 * p0)
    # one auxiliary output is logged as "aux", the extra term as "extra"
    assert set(terms) == {"ce", "aux", "extra", "total"}
    torch.testing.assert_close(terms["ce"], ce)
    torch.testing.assert_close(terms["aux"], 0.4 * aux)
    torch.testing.assert_close(terms["extra"], p0)
    torch.testing.assert_close(terms["total"], total.detach())


def test_a_warm_up_starts_at_zero_before_any_progress_is_set(batch) -> None:
    main, _, _, target = batch
    objective = SegmentationObjective(main={"ce": CE()}, extra=MeanProb(), schedule=LinearWarmup(2))
    assert objective.scales() == (1.0, 0.0)
    total, terms = objective(main, target)
    assert "extra" not in terms
    torch.testing.assert_close(total, F.cross_entropy(main, target))


def test_the_base_scale_multiplies_the_main_and_aux_terms(batch) -> None:
    # StealWeight after 3 whole epochs: base 1 - 0.03 = 0.97, extra 0.5 + 0.03 = 0.53
    main, aux1, aux2, target = batch
    objective = SegmentationObjective(
        main={"ce": CE()},
        aux=CE(),
        aux_weights=[0.4, 0.2],
        extra=MeanProb(),
        extra_weight=0.5,
        schedule=StealWeight(to_steal=0.01, floor=0.1),
    )
    objective.set_progress(3.5)
    total, terms = objective((main, aux1, aux2), target)
    ce, p0 = F.cross_entropy(main, target), main.softmax(1)[:, 0].mean()
    aux_a, aux_b = F.cross_entropy(aux1, target), F.cross_entropy(aux2, target)
    torch.testing.assert_close(terms["ce"], 0.97 * ce)
    torch.testing.assert_close(terms["aux0"], 0.97 * 0.4 * aux_a)
    torch.testing.assert_close(terms["aux1"], 0.97 * 0.2 * aux_b)
    torch.testing.assert_close(terms["extra"], 0.53 * p0)
    torch.testing.assert_close(total, 0.97 * (ce + 0.4 * aux_a + 0.2 * aux_b) + 0.53 * p0)


class HalfMean(nn.Module):
    """A loss computed in the logits' own low precision."""

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return logits.mean()


def test_the_total_is_accumulated_in_float32_for_low_precision_logits() -> None:
    # Under autocast the logits (and a loss computed from them) may be bfloat16; the total is
    # float32, the sum of the terms in float32.
    logits = torch.full((1, 2, 2, 2), 1.0 + 2.0**-7, dtype=torch.bfloat16)
    target = torch.zeros(1, 2, 2, dtype=torch.int64)
    objective = SegmentationObjective(main={"a": HalfMean(), "b": HalfMean()})
    total, _ = objective(logits, target)
    assert total.dtype == torch.float32
    assert float(total) == 2 * (1.0 + 2.0**-7)
