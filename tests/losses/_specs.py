"""Every loss of the project, once: module class, function, options for the shared tests.

Used by test_api.py (function = module, binary masks, torch.compile, loader maps) and
test_sanity.py. ``split`` says which batch-splitting invariance the loss's definition gives:

- ``"sum"``: the value of a batch is the sum of the values of its parts;
- ``"mean"``: the mean of the parts' values, for equal-size parts without ignore pixels and
  (where the definition selects classes per batch) the same classes present in every part;
- ``"between"``: a mean weighted by a count the API does not return, so it lies between the
  parts' values;
- ``None``: the definition pools sums over the batch (batch Dice), so the value is not a
  function of the parts' values; ``split_reason`` says where.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

import lossd.losses as L
import lossd.losses.functional as LF

NUM_CLASSES = 3
IGNORE = 255


@dataclass(frozen=True)
class Spec:
    name: str
    module: Callable[..., nn.Module]
    function: Callable[..., Tensor]
    options: dict[str, Any] = field(default_factory=dict)
    split: str | None = "mean"
    split_options: dict[str, Any] = field(default_factory=dict)
    split_reason: str = ""
    num_classes_arg: bool = False  # the class takes num_classes first (DistanceLoss)

    def build(self, num_classes: int = NUM_CLASSES, **options: Any) -> nn.Module:
        merged = {**self.options, **options}
        if self.num_classes_arg:
            return self.module(num_classes, **merged)
        return self.module(**merged)

    def call(self, logits: Tensor, target: Tensor, **options: Any) -> Tensor:
        return self.function(logits, target, **{**self.options, **options})


SPECS: list[Spec] = [
    Spec("lossd", L.DistanceLoss, LF.distance_loss, {"ignore_index": IGNORE},
         split="mean", num_classes_arg=True),
    Spec("lossd_authors", L.DistanceLoss, LF.distance_loss,
         {"ignore_index": IGNORE, "ignore_mode": "authors"}, split="mean", num_classes_arg=True),
    Spec("soft_ce", L.SoftCrossEntropyLoss, LF.soft_cross_entropy_loss,
         split="sum", split_options={"reduction": "sum"}),
    Spec("dice", L.DiceLoss, LF.dice_loss, split=None,
         split_reason="dice.py: intersections and cardinalities summed over the batch"),
    Spec("boundary_kervadec", L.KervadecBoundaryLoss, LF.kervadec_boundary_loss),
    Spec("boundary_f1", L.BoundaryF1Loss, LF.boundary_f1_loss),
    Spec("dtl", L.DistanceTransformLoss, LF.distance_transform_loss, {"dilate": 1},
         split="sum", split_options={"power": 1.0, "reduction": "sum"}),
    Spec("lovasz", L.LovaszSoftmaxLoss, LF.lovasz_softmax_loss,
         split="mean", split_options={"per_image": True}),
    Spec("rmi", L.RMILoss, LF.rmi_loss),
    Spec("abl", L.ActiveBoundaryLoss, LF.active_boundary_loss, split="between"),
    Spec("boundary_dou", L.BoundaryDoULoss, LF.boundary_dou_loss, split=None,
         split_reason="boundary_dou.py: areas, edges and intersections summed over the batch"),
    Spec("hd_dt", L.HausdorffDTLoss, LF.hausdorff_dt_loss),
    Spec("cldice", L.ClDiceLoss, LF.cl_dice_loss, split=None,
         split_reason="cldice.py: skeleton and region sums taken over the batch"),
]  # fmt: skip
BY_NAME = {spec.name: spec for spec in SPECS}
IDS = [spec.name for spec in SPECS]


def blocky_case(
    seed: int,
    batch: int = 2,
    num_classes: int = NUM_CLASSES,
    size: int = 24,
    block: int = 6,
    ignore: bool = True,
    noise: float = 1.5,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """Logits that mostly predict a blocky target (every class in every image), and the target.

    With ``ignore``, a 4×5 patch of each image is labelled ``IGNORE``.
    """
    generator = torch.Generator().manual_seed(seed)
    cells = size // block
    coarse = torch.randint(0, num_classes, (batch, cells, cells), generator=generator)
    coarse[:, 0, :num_classes] = torch.arange(num_classes)  # every class in every image
    target = coarse.repeat_interleave(block, 1).repeat_interleave(block, 2)
    onehot = torch.nn.functional.one_hot(target, num_classes).permute(0, 3, 1, 2).float()
    logits = 2.0 * onehot + noise * torch.randn(onehot.shape, generator=generator)
    if ignore:
        target[:, 9:13, 14:19] = IGNORE
    return logits.to(dtype), target
