import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossd.errors import InvalidOptionError
from lossd.losses import ConstantWeight, LinearWarmup, SegmentationObjective, StealWeight


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
