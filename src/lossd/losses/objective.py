"""The training objective: the model's base recipe plus a weighted extra (boundary) term.

``total = s_base(t) · [Σ_i w_i · L_i(main) + Σ_j a_j · L_aux(aux_j)] + s_extra(t) · L_extra(main)``

where ``main`` is the model's main output, ``aux_j`` its auxiliary outputs (training only),
``L_extra`` is Lossd or a competing boundary loss, and ``(s_base, s_extra)`` come from a weight
schedule of the training progress ``t`` (in epochs). With :class:`ConstantWeight` this is
docs/lossd.md, Definition, step 6: ``total = base_loss + lambda * Lossd``.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn

from lossd.errors import InvalidOptionError

__all__ = [
    "ConstantWeight",
    "LinearWarmup",
    "ObjectiveOutput",
    "SegmentationObjective",
    "StealWeight",
    "WeightSchedule",
]


class WeightSchedule(Protocol):
    """Maps training progress (epochs, fractional) and the extra term's weight to scales."""

    def __call__(self, progress: float, extra_weight: float) -> tuple[float, float]:
        """Return ``(base_scale, extra_scale)``."""
        ...


@dataclass(frozen=True)
class ConstantWeight:
    """``(1, lambda)`` throughout: the reference combination (docs/lossd.md, step 6)."""

    def __call__(self, progress: float, extra_weight: float) -> tuple[float, float]:
        """Return ``(1, extra_weight)``."""
        return 1.0, extra_weight


@dataclass(frozen=True)
class LinearWarmup:
    """``lambda`` rises linearly from 0 to its value over ``warmup_epochs`` (per step).

    Args:
        warmup_epochs: Length of the ramp in epochs (fractions allowed); 0 means no ramp.
    """

    warmup_epochs: float = 1.0

    def __post_init__(self) -> None:
        if self.warmup_epochs < 0:
            raise InvalidOptionError(f"warmup_epochs={self.warmup_epochs}; expected >= 0")

    def __call__(self, progress: float, extra_weight: float) -> tuple[float, float]:
        """Return ``(1, extra_weight * min(1, progress / warmup_epochs))``."""
        if self.warmup_epochs == 0:
            return 1.0, extra_weight
        return 1.0, extra_weight * min(1.0, max(progress, 0.0) / self.warmup_epochs)


@dataclass(frozen=True)
class StealWeight:
    """Kervadec et al.'s schedule: each epoch the base weight gives ``to_steal`` to the extra one.

    After ``e`` whole epochs the base scale is ``max(1 - to_steal·e, floor)`` and the extra
    scale ``lambda + to_steal·e`` (LIVIAETS/boundary-loss ``StealWeight(to_steal=0.01)`` with
    the region weight floored at 0.1 and the boundary weight starting at alpha = 0.01;
    docs/reference.md, Competing losses).

    Args:
        to_steal: Weight moved per epoch (0.01 in the paper's ISLES setting).
        floor: Lowest base scale (0.1).
    """

    to_steal: float = 0.01
    floor: float = 0.1

    def __call__(self, progress: float, extra_weight: float) -> tuple[float, float]:
        """Return the scales after ``floor(progress)`` epochs."""
        epochs = float(int(max(progress, 0.0)))
        return max(1.0 - self.to_steal * epochs, self.floor), extra_weight + self.to_steal * epochs


class ObjectiveOutput(tuple[Tensor, dict[str, Tensor]]):
    """``(total, terms)``: the loss to back-propagate and each weighted term, detached."""

    @property
    def total(self) -> Tensor:
        """The scalar to call ``backward`` on."""
        return self[0]

    @property
    def terms(self) -> dict[str, Tensor]:
        """Detached weighted terms by name (for logging), including ``total``."""
        return self[1]


class SegmentationObjective(nn.Module):
    """Base recipe of a model (main terms + auxiliary heads) plus an optional extra term.

    Args:
        main: Named losses on the main output, e.g. ``{"ce": SoftCE, "dice": Dice}``
            (GeoSeg UnetFormerLoss: soft CE with smoothing 0.05 + Dice, weights 1:1).
        main_weights: Weight of each main loss (default 1 each).
        aux: Loss applied to every auxiliary output (GeoSeg: soft CE, smoothing 0.05).
        aux_weights: One weight per auxiliary output of the model (UNetFormer: ``[0.4]``).
        extra: Extra term on the main output (Lossd or a competing boundary loss).
        extra_weight: Its weight ``lambda`` (``loss.lambda_d`` for Lossd; default 1.0).
        extra_name: Name of the extra term in the logged terms.
        schedule: Weight schedule over training progress; default :class:`ConstantWeight`.

    Raises:
        InvalidOptionError: If weights do not match the losses, or an auxiliary output arrives
            without a weight (or a weight without an output).
    """

    def __init__(
        self,
        main: Mapping[str, nn.Module],
        main_weights: Mapping[str, float] | None = None,
        aux: nn.Module | None = None,
        aux_weights: Sequence[float] = (),
        extra: nn.Module | None = None,
        extra_weight: float = 1.0,
        extra_name: str = "extra",
        schedule: WeightSchedule | None = None,
    ) -> None:
        super().__init__()
        if not main:
            raise InvalidOptionError("the objective needs at least one loss on the main output")
        self.main = nn.ModuleDict(dict(main))
        weights = dict(main_weights or {})
        unknown = sorted(set(weights) - set(self.main))
        if unknown:
            raise InvalidOptionError(
                f"main_weights for unknown terms {unknown}; the main terms are {list(main)}"
            )
        self.main_weights = {name: float(weights.get(name, 1.0)) for name in self.main}
        if aux_weights and aux is None:
            raise InvalidOptionError("aux_weights given but no aux loss to apply them with")
        self.aux = aux
        self.aux_weights = [float(w) for w in aux_weights]
        self.extra = extra
        self.extra_weight = float(extra_weight)
        self.extra_name = extra_name
        self.schedule: WeightSchedule = schedule if schedule is not None else ConstantWeight()
        self.progress = 0.0

    def set_progress(self, epochs: float) -> None:
        """Tell the schedule how far training is, in (fractional) epochs."""
        self.progress = float(epochs)

    def scales(self) -> tuple[float, float]:
        """Current ``(base_scale, extra_scale)`` from the schedule."""
        return self.schedule(self.progress, self.extra_weight)

    def forward(self, outputs: Tensor | Sequence[Tensor], target: Tensor) -> ObjectiveOutput:
        """Compute the weighted total and its terms.

        Args:
            outputs: The model output: a Tensor (eval) or ``(main, aux_1, ...)`` (training).
            target: Class indices [B,H,W] (255 = ignore).

        Returns:
            :class:`ObjectiveOutput` ``(total, terms)``.
        """
        if isinstance(outputs, Tensor):
            main_out, aux_outs = outputs, []
        else:
            main_out, *aux_outs = outputs
        base_scale, extra_scale = self.scales()
        terms: dict[str, Tensor] = {}
        total = main_out.new_zeros((), dtype=torch.float32)
        for name, loss in self.main.items():
            value = self.main_weights[name] * base_scale * loss(main_out, target)
            terms[name] = value.detach()
            total = total + value
        if aux_outs:
            if len(aux_outs) != len(self.aux_weights) or self.aux is None:
                raise InvalidOptionError(
                    f"the model returned {len(aux_outs)} auxiliary output(s) but the loss recipe "
                    f"has aux_weights={self.aux_weights}; set model.aux_weights to one weight per "
                    "auxiliary output"
                )
            for index, (aux_out, weight) in enumerate(zip(aux_outs, self.aux_weights, strict=True)):
                value = weight * base_scale * self.aux(aux_out, target)
                terms[f"aux{index}" if len(aux_outs) > 1 else "aux"] = value.detach()
                total = total + value
        if self.extra is not None and extra_scale != 0.0:
            value = extra_scale * self.extra(main_out, target)
            terms[self.extra_name] = value.detach()
            total = total + value
        terms["total"] = total.detach()
        return ObjectiveOutput((total, terms))
