"""Losses: Lossd (the distance loss), region losses, competing boundary losses, objective.

Every loss is a module class and a function of the same arguments (docs/api.md): the functions
are gathered in :mod:`lossd.losses.functional` and re-exported here. Importing this package
loads torch and numpy only (scipy and OpenCV are optional accelerators, albumentations is
loaded by :meth:`DistanceMapsTransform.albumentations`).
"""

from lossd.losses.active_boundary import ActiveBoundaryLoss
from lossd.losses.boundary_dou import BoundaryDoULoss
from lossd.losses.boundary_f1 import BoundaryF1Loss
from lossd.losses.boundary_kervadec import KervadecBoundaryLoss
from lossd.losses.cldice import ClDiceLoss
from lossd.losses.dice import DiceLoss
from lossd.losses.distance import DistanceLoss, TargetDistanceMaps
from lossd.losses.dtl import DistanceTransformLoss
from lossd.losses.functional import (
    active_boundary_loss,
    boundary_dou_loss,
    boundary_f1_loss,
    cl_dice_loss,
    dice_loss,
    distance_loss,
    distance_transform_loss,
    hausdorff_dt_loss,
    kervadec_boundary_loss,
    lovasz_softmax_loss,
    rmi_loss,
    soft_cross_entropy_loss,
    target_distance_maps,
)
from lossd.losses.hausdorff_dt import HausdorffDTLoss
from lossd.losses.loader_maps import DistanceMapsTransform
from lossd.losses.lovasz import LovaszSoftmaxLoss
from lossd.losses.objective import (
    ConstantWeight,
    LinearWarmup,
    ObjectiveOutput,
    SegmentationObjective,
    StealWeight,
)
from lossd.losses.rmi import RMILoss
from lossd.losses.soft_ce import SoftCrossEntropyLoss

__all__ = [
    "ActiveBoundaryLoss",
    "BoundaryDoULoss",
    "BoundaryF1Loss",
    "ClDiceLoss",
    "ConstantWeight",
    "DiceLoss",
    "DistanceLoss",
    "DistanceMapsTransform",
    "DistanceTransformLoss",
    "HausdorffDTLoss",
    "KervadecBoundaryLoss",
    "LinearWarmup",
    "LovaszSoftmaxLoss",
    "ObjectiveOutput",
    "RMILoss",
    "SegmentationObjective",
    "SoftCrossEntropyLoss",
    "StealWeight",
    "TargetDistanceMaps",
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
