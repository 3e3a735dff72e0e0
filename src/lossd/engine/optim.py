"""Optimizers with a separate backbone learning rate, and Lookahead as in GeoSeg's recipes.

GeoSeg trains every model with ``Lookahead(AdamW)``, lr 6e-4 for the decoder and 6e-5 for the
backbone, weight decay 0.01 (config/*/unetformer.py; docs/reference.md, Training recipes):

* ``layerwise_params = {"backbone.*": dict(lr=backbone_lr, weight_decay=backbone_weight_decay)}``
  (WangLibo1995/GeoSeg config/loveda/unetformer.py:81 @9453fe4), matched with ``re.match`` on
  the parameter name (tools/utils.py:74), i.e. every parameter whose name starts with
  ``backbone``. Here: the parameters of the model's ``backbone`` module (the same set for
  every lossd model, whose encoder is the attribute ``backbone``).
* ``process_model_params(net, layerwise_params=...)`` (config/loveda/unetformer.py:82) with its
  default ``no_bias_weight_decay=True`` (tools/utils.py:46): weight decay 0 for every parameter
  whose name ends in ``bias`` (tools/utils.py:79, ``name.endswith("bias")``), backbone biases
  included (they keep the backbone lr, tools/utils.py:73-80). Normalisation weights keep their
  decay; their biases lose it like every bias. Here: ``no_bias_decay=True`` (off by default).
* ``Lookahead(base_optimizer)`` (config/loveda/unetformer.py:84) with the defaults ``k=5,
  alpha=0.5`` (tools/utils.py:104). Here: :class:`Lookahead` with ``k``/``alpha`` from the config
  and the synchronisation ``phase`` of the code being reproduced. Both phases sync every k fast
  steps, and the first sync only stores the slow weights; they differ in when:

  - ``phase="geoseg"``: after steps 1 (store), k+1, 2k+1, ... (GeoSeg tools/utils.py:142-148
    @9453fe4, ``if group["counter"] == 0: self.update(group)`` before the counter is raised;
    SFA-Net's ``catalyst.contrib.nn.Lookahead``, catalyst 20.09
    catalyst/contrib/nn/optimizers/lookahead.py:61-67, is the same code). The recipes of the
    real datasets use it.
  - ``phase="timm"``: after steps k (store), 2k, 3k, ... (timm 1.0.31 timm/optim/lookahead.py,
    ``step``: ``if group['lookahead_step'] % group['lookahead_k'] == 0``). The synthetic main
    job keeps it (conf/optimizer/adamw_lookahead.yaml, ``k: 6``, timm's default), because its
    committed results were trained with it.
"""

from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch
from timm.optim.lookahead import Lookahead as TimmLookahead
from torch import nn

from lossd.errors import InvalidOptionError

__all__ = [
    "LOOKAHEAD_PHASES",
    "NO_DECAY_SUFFIX",
    "Lookahead",
    "LookaheadPhase",
    "OptimizerFactory",
    "build_optimizer",
    "is_no_decay_name",
    "lookahead",
    "param_groups",
]

OptimizerFactory = Callable[[Iterable[dict[str, Any]]], torch.optim.Optimizer]
"""A partially applied optimizer (``_partial_: true`` in conf/optimizer/) taking param groups."""

LookaheadPhase = Literal["geoseg", "timm"]
LOOKAHEAD_PHASES: tuple[str, ...] = ("geoseg", "timm")
"""When :class:`Lookahead` syncs: after steps 1, k+1, 2k+1, ... or after k, 2k, 3k, ..."""

NO_DECAY_SUFFIX = "_no_decay"
"""Appended to a group's name for its parameters without weight decay (``no_bias_decay``)."""


def is_no_decay_name(name: str) -> bool:
    """Whether GeoSeg's ``no_bias_weight_decay`` exempts a parameter of this name.

    GeoSeg tests ``name.endswith("bias")`` (WangLibo1995/GeoSeg tools/utils.py:79 @9453fe4):
    every ``*.bias`` (convolution, linear and normalisation biases alike), nothing else.
    """
    return name.endswith("bias")


def _split_no_decay(
    group: dict[str, Any], named: list[tuple[str, nn.Parameter]]
) -> list[dict[str, Any]]:
    """``group`` for the decaying parameters, plus one with weight decay 0 for the biases."""
    options = {k: v for k, v in group.items() if k != "params"}
    decay = [p for n, p in named if not is_no_decay_name(n)]
    no_decay = [p for n, p in named if is_no_decay_name(n)]
    groups = []
    if decay:
        groups.append({**options, "params": decay})
    if no_decay:
        groups.append(
            {
                **options,
                "params": no_decay,
                "weight_decay": 0.0,
                "name": f"{options['name']}{NO_DECAY_SUFFIX}",
            }
        )
    return groups


def param_groups(
    model: nn.Module, backbone_lr: float | None, no_bias_decay: bool = False
) -> list[dict[str, Any]]:
    """Parameter groups: the model's ``backbone`` at ``backbone_lr``, the rest at the default lr.

    Args:
        model: The network; its encoder, if any, is the attribute ``backbone``.
        backbone_lr: Learning rate of the backbone group; ``None`` (or a model without a
            ``backbone`` module) gives one group ``"all"`` at the optimizer's lr.
        no_bias_decay: GeoSeg's ``no_bias_weight_decay`` (tools/utils.py:79): each group is
            split, and the parameters whose name ends in ``bias`` go to a group named
            ``<group>_no_decay`` with ``weight_decay`` 0 and the group's own lr.

    Returns:
        Groups named ``"backbone"`` and ``"head"`` (or ``"all"``), each
        ``{"params": [...], "name": ..., ["lr": ...]}``, trainable parameters only, in model
        order; with ``no_bias_decay`` the ``*_no_decay`` group follows its group (empty groups
        are left out).
    """
    backbone = getattr(model, "backbone", None)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if backbone_lr is None or not isinstance(backbone, nn.Module):
        parts: list[tuple[dict[str, Any], list[tuple[str, nn.Parameter]]]] = [
            ({"name": "all"}, named)
        ]
    else:
        backbone_ids = {id(p) for p in backbone.parameters()}
        parts = [
            (
                {"lr": float(backbone_lr), "name": "backbone"},
                [(n, p) for n, p in named if id(p) in backbone_ids],
            ),
            ({"name": "head"}, [(n, p) for n, p in named if id(p) not in backbone_ids]),
        ]
    if not no_bias_decay:
        return [{"params": [p for _, p in members], **options} for options, members in parts]
    return [group for options, members in parts for group in _split_no_decay(options, members)]


class Lookahead(TimmLookahead):
    """Lookahead (Zhang et al., NeurIPS 2019, arXiv:1907.08610) with a choice of phase.

    timm's wrapper (its state, ``state_dict`` and slow-weight update) with the step at which
    the slow weights are synchronised chosen by ``phase`` (see the module docstring): after
    every ``n``-th fast step with ``n % k == 0`` (``timm``), or with ``(n - 1) % k == 0``
    (``geoseg``). The first sync of either phase stores the fast weights as the slow ones,
    then copies them back unchanged. The phase is kept in every param group
    (``lookahead_phase``), so a resumed optimizer keeps it.

    Args:
        base_optimizer: The inner optimizer.
        alpha: Slow-weights step, in (0, 1].
        k: Fast steps between two syncs (>= 1).
        phase: ``geoseg`` or ``timm``.

    Raises:
        InvalidOptionError: If ``phase`` is not one of :data:`LOOKAHEAD_PHASES`.
    """

    def __init__(
        self,
        base_optimizer: torch.optim.Optimizer,
        alpha: float = 0.5,
        k: int = 5,
        phase: LookaheadPhase = "geoseg",
    ) -> None:
        if phase not in LOOKAHEAD_PHASES:
            raise InvalidOptionError(
                f"lookahead phase={phase!r}; expected one of {list(LOOKAHEAD_PHASES)}"
            )
        super().__init__(base_optimizer, alpha=alpha, k=k)  # type: ignore[no-untyped-call]
        for group in self.param_groups:
            group.setdefault("lookahead_phase", phase)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One step of the inner optimizer, then the slow-weight sync where the phase says."""
        loss: float | None = self._base_optimizer.step(closure)
        for group in self.param_groups:
            group["lookahead_step"] += 1
            offset = 1 if group.get("lookahead_phase", "timm") == "geoseg" else 0
            if (group["lookahead_step"] - offset) % group["lookahead_k"] == 0:
                self.update_slow(group)  # type: ignore[no-untyped-call]
        return loss


def lookahead(
    params: Iterable[dict[str, Any]],
    base: OptimizerFactory,
    alpha: float = 0.5,
    k: int | None = 6,
    phase: LookaheadPhase = "timm",
) -> torch.optim.Optimizer:
    """Lookahead (Zhang et al., NeurIPS 2019, arXiv:1907.08610) around ``base``.

    GeoSeg's recipes use ``Lookahead(base_optimizer)`` with its defaults ``k=5, alpha=0.5``
    (WangLibo1995/GeoSeg tools/utils.py:104, config/loveda/unetformer.py:84 @9453fe4) and
    its phase; ``k=6`` and ``phase="timm"`` here are timm's, kept for the committed results of
    the synthetic main job (see the module docstring).

    Args:
        params: Parameter groups (from :func:`param_groups` via :func:`build_optimizer`).
        base: The inner optimizer, applied to ``params``.
        alpha: Slow-weights step, in (0, 1].
        k: Fast steps between two syncs (>= 1); None: no Lookahead, ``base`` alone
            (``optimizer=adamw``).
        phase: ``geoseg`` (sync after steps 1, k+1, ...) or ``timm`` (after k, 2k, ...).

    Raises:
        InvalidOptionError: If alpha is outside (0, 1], k < 1 or the phase is unknown.
    """
    groups = list(params)
    if k is None:
        return base(groups)
    if isinstance(k, bool) or not isinstance(k, int) or not 0.0 < alpha <= 1.0 or k < 1:
        raise InvalidOptionError(f"lookahead alpha={alpha}, k={k}; expected 0 < alpha <= 1, k >= 1")
    return Lookahead(base(groups), alpha=alpha, k=k, phase=phase)


def build_optimizer(
    model: nn.Module,
    factory: OptimizerFactory,
    backbone_lr: float | None,
    no_bias_decay: bool = False,
) -> torch.optim.Optimizer:
    """Apply the configured optimizer to the model's parameter groups.

    Args:
        model: The network.
        factory: The configured optimizer (``build(cfg.optimizer)``), taking param groups.
        backbone_lr: Learning rate of the backbone (``model.backbone_lr``); ``None``: one lr.
        no_bias_decay: Weight decay 0 for parameters whose name ends in ``bias``
            (``model.no_bias_decay``; GeoSeg's ``process_model_params(no_bias_weight_decay=True)``,
            see :func:`param_groups`).

    Returns:
        The optimizer.

    Raises:
        InvalidOptionError: If ``no_bias_decay`` is not a bool.
    """
    if not isinstance(no_bias_decay, bool):
        raise InvalidOptionError(f"model.no_bias_decay={no_bias_decay!r}; expected true or false")
    return factory(param_groups(model, backbone_lr, no_bias_decay))
