"""Every loss of the project as a function: ``loss(logits, target, *, options)``.

One namespace for the functional API, as ``torch.nn.functional`` is for torch's losses::

    import lossd.losses.functional as LF

    value = LF.distance_loss(logits, target, ignore_index=255)

Each function holds its loss's math and takes the keyword arguments of the module class of the
same loss (:mod:`lossd.losses`), which is a thin shell around it: ``DiceLoss(**options)(logits,
target)`` equals ``dice_loss(logits, target, **options)``. The functions live beside their
classes, one loss per module (docs/style.md, "House style": one concept per file); this
module gathers them.
Every function takes logits ``[B, C, H, W]`` of any float dtype (float16 and bfloat16 are
computed in float32) on any device, integer targets ``[B, H, W]``, and binary masks as logits
``[B, 1, H, W]`` with targets in ``{0, 1}``, the two classes ``[-x/2, x/2]``
(docs/api.md, "Binary masks").

| function | class | source |
|---|---|---|
| :func:`distance_loss` | ``DistanceLoss`` (Lossd) | Ma et al. 2026 |
| :func:`soft_cross_entropy_loss` | ``SoftCrossEntropyLoss`` | Szegedy et al. 2016 |
| :func:`dice_loss` | ``DiceLoss`` | Milletari et al. 2016 |
| :func:`kervadec_boundary_loss` | ``KervadecBoundaryLoss`` | Kervadec et al. 2019 |
| :func:`boundary_f1_loss` | ``BoundaryF1Loss`` | Bokhovkin & Burnaev 2019 |
| :func:`distance_transform_loss` | ``DistanceTransformLoss`` | segloss DTL |
| :func:`lovasz_softmax_loss` | ``LovaszSoftmaxLoss`` | Berman et al. 2018 |
| :func:`rmi_loss` | ``RMILoss`` | Zhao et al. 2019 |
| :func:`active_boundary_loss` | ``ActiveBoundaryLoss`` | Wang et al. 2022 |
| :func:`boundary_dou_loss` | ``BoundaryDoULoss`` | Sun et al. 2023 |
| :func:`hausdorff_dt_loss` | ``HausdorffDTLoss`` | Karimi & Salcudean 2020 |
| :func:`cl_dice_loss` | ``ClDiceLoss`` | Shit et al. 2021 |
"""

from lossd.losses.active_boundary import active_boundary_loss
from lossd.losses.boundary_dou import boundary_dou_loss
from lossd.losses.boundary_f1 import boundary_f1_loss
from lossd.losses.boundary_kervadec import kervadec_boundary_loss
from lossd.losses.cldice import cl_dice_loss
from lossd.losses.dice import dice_loss
from lossd.losses.distance import distance_loss, target_distance_maps
from lossd.losses.dtl import distance_transform_loss
from lossd.losses.hausdorff_dt import hausdorff_dt_loss
from lossd.losses.lovasz import lovasz_softmax_loss
from lossd.losses.rmi import rmi_loss
from lossd.losses.soft_ce import soft_cross_entropy_loss

__all__ = [
    "active_boundary_loss",
    "boundary_dou_loss",
    "boundary_f1_loss",
    "cl_dice_loss",
    "dice_loss",
    "distance_loss",
    "distance_transform_loss",
    "hausdorff_dt_loss",
    "kervadec_boundary_loss",
    "lovasz_softmax_loss",
    "rmi_loss",
    "soft_cross_entropy_loss",
    "target_distance_maps",
]
