"""Losses: Lossd (the distance loss), region losses, competing boundary losses, objective."""

from lossd.losses.active_boundary import ActiveBoundaryLoss
from lossd.losses.boundary_dou import BoundaryDoULoss
from lossd.losses.boundary_f1 import BoundaryF1Loss
from lossd.losses.boundary_kervadec import KervadecBoundaryLoss
from lossd.losses.cldice import ClDiceLoss
from lossd.losses.dice import DiceLoss
from lossd.losses.distance import DistanceLoss, TargetDistanceMaps, target_distance_maps
from lossd.losses.dtl import DistanceTransformLoss
from lossd.losses.hausdorff_dt import HausdorffDTLoss
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
    "target_distance_maps",
]
