"""Optimizers with a separate backbone learning rate, and Lookahead as in GeoSeg's recipes.

GeoSeg trains every model with ``Lookahead(AdamW)``, lr 6e-4 for the decoder and 6e-5 for the
backbone, weight decay 0.01 (config/*/unetformer.py; docs/reference.md, Training recipes).
"""

from collections.abc import Callable, Iterable
from typing import Any

import torch
from timm.optim.lookahead import Lookahead
from torch import nn

from lossd.errors import InvalidOptionError

__all__ = ["OptimizerFactory", "build_optimizer", "lookahead", "param_groups"]

OptimizerFactory = Callable[[Iterable[dict[str, Any]]], torch.optim.Optimizer]
"""A partially applied optimizer (``_partial_: true`` in conf/optimizer/) taking param groups."""


def param_groups(model: nn.Module, backbone_lr: float | None) -> list[dict[str, Any]]:
    """Two groups: the model's ``backbone`` at ``backbone_lr``, the rest at the default lr.

    With ``backbone_lr=None`` (or a model without a ``backbone`` attribute) one group.
    """
    backbone = getattr(model, "backbone", None)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if backbone_lr is None or not isinstance(backbone, nn.Module):
        return [{"params": trainable, "name": "all"}]
    backbone_ids = {id(p) for p in backbone.parameters()}
    return [
        {
            "params": [p for p in trainable if id(p) in backbone_ids],
            "lr": float(backbone_lr),
            "name": "backbone",
        },
        {"params": [p for p in trainable if id(p) not in backbone_ids], "name": "head"},
    ]


def lookahead(
    params: Iterable[dict[str, Any]], base: OptimizerFactory, alpha: float = 0.5, k: int = 6
) -> torch.optim.Optimizer:
    """Lookahead (Zhang et al., NeurIPS 2019) around ``base``; GeoSeg uses alpha 0.5, k 6.

    Raises:
        InvalidOptionError: If alpha is outside (0, 1] or k < 1.
    """
    if not 0.0 < alpha <= 1.0 or k < 1:
        raise InvalidOptionError(f"lookahead alpha={alpha}, k={k}; expected 0 < alpha <= 1, k >= 1")
    optimizer: torch.optim.Optimizer = Lookahead(base(params), alpha=alpha, k=k)  # type: ignore[no-untyped-call]
    return optimizer


def build_optimizer(
    model: nn.Module, factory: OptimizerFactory, backbone_lr: float | None
) -> torch.optim.Optimizer:
    """Apply the configured optimizer to the model's parameter groups."""
    return factory(param_groups(model, backbone_lr))
