"""Segmentation networks on timm backbones and the ``build_model`` factory.

``build_model(name, num_classes, pretrained=False, weights=None, **kw)`` builds one of
:data:`MODEL_NAMES`. Every network takes normalised images [B, 3, H, W] of any size, returns
logits [B, num_classes, H, W] in evaluation mode and the tuple ``(main, aux_1, ...)`` of
``1 + num_aux_outputs`` logits in training mode, and exposes its timm encoder as ``backbone``.
"""

from lossd.models._blocks import SegmentationModel
from lossd.models._factory import MODEL_NAMES, build_model, load_weights
from lossd.models.abcnet import ABCNet
from lossd.models.fcn import FCN8s
from lossd.models.sfanet import SFANet
from lossd.models.unetformer import UNetFormer
from lossd.models.weights import (
    PRETRAINED_BACKBONES,
    WeightStatus,
    check_weights,
    fetch_weights,
)

__all__ = [
    "MODEL_NAMES",
    "PRETRAINED_BACKBONES",
    "ABCNet",
    "FCN8s",
    "SFANet",
    "SegmentationModel",
    "UNetFormer",
    "WeightStatus",
    "build_model",
    "check_weights",
    "fetch_weights",
    "load_weights",
]
