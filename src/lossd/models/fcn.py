"""FCN-8s: class scores at strides 8, 16 and 32 fused by learned upsampling.

Paper: Jonathan Long, Evan Shelhamer, Trevor Darrell, "Fully Convolutional Networks for
Semantic Segmentation", CVPR 2015, arXiv:1411.4038, DOI 10.1109/CVPR.2015.7298965.
Official code: https://github.com/shelhamer/fcn.berkeleyvision.org (Caffe, VGG-16).

This is the FCN-8s skip architecture of Sec. 4.2 of the paper on a timm encoder (ResNet-50
by default, as in the LoveDA benchmark's FCN baseline; docs/reference.md, "Baseline
anchors"). Written from the paper; there is no published parameter count to match.

* A 1x1 score layer with bias on each of the stride-8, -16 and -32 encoder features,
  initialised to zero (the paper found random initialisation no better; Sec. 4.3,
  "Optimization").
* Stride 32 -> 16 -> 8 by 2x transposed convolutions (kernel 4, no bias) initialised to
  bilinear interpolation and then learned, each followed by a sum with the finer scores
  (Sec. 4.2, Fig. 3).
* Stride 8 -> input resolution: bilinear interpolation, fixed as the paper's final
  deconvolution is (Sec. 4.3, "Upsampling"), so it has no parameter.

Departures from the VGG-16 original, all forced by the encoder: no fc6/fc7 (ResNet's pooled
classifier is dropped and its last stage is scored directly), no 100-pixel input padding and
no crop layers (the 'same'-padded encoder keeps the feature maps aligned), and no 0.01 /
0.0001 scaling of the pool4 / pool3 scores (a VGG at-once training trick).
"""

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossd.errors import InvalidOptionError
from lossd.models._backbone import (
    check_encoder_strides,
    create_backbone,
    feature_channels_and_strides,
)
from lossd.models._blocks import SegmentationModel

__all__ = ["FCN8s", "bilinear_upsampling_kernel"]

#: timm ResNet-50 (default tag ``resnet50.a1_in1k`` in timm 1.0.31).
DEFAULT_BACKBONE = "resnet50"
#: Strides of the three scored encoder features (pool3, pool4, conv7 in the paper).
ENCODER_STRIDES = (8, 16, 32)


def bilinear_upsampling_kernel(channels: int, factor: int) -> Tensor:
    """Per-channel bilinear kernel of a ``factor`` x upsampling transposed convolution.

    Kernel side ``2 * factor - factor % 2``; channel ``i`` maps only to channel ``i``
    (the initialisation of the FCN paper, Sec. 3.3).

    Returns:
        Weight [channels, channels, k, k] for ``nn.ConvTranspose2d``.
    """
    size = 2 * factor - factor % 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    ramp = 1.0 - (torch.arange(size, dtype=torch.float32) - center).abs() / factor
    kernel = ramp[:, None] * ramp[None, :]
    weight = torch.zeros(channels, channels, size, size)
    weight[range(channels), range(channels)] = kernel
    return weight


def _learned_upsampling(num_classes: int) -> nn.ConvTranspose2d:
    layer = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2, padding=1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(bilinear_upsampling_kernel(num_classes, 2))
    return layer


def _score_layer(in_channels: int, num_classes: int) -> nn.Conv2d:
    layer = nn.Conv2d(in_channels, num_classes, 1)
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


class FCN8s(SegmentationModel):
    """FCN-8s (Long et al. 2015) on a timm encoder.

    Args:
        num_classes: output classes.
        backbone: timm encoder with features at strides 8, 16, 32 (``out_indices`` 2, 3, 4).
        pretrained: load the encoder's timm weights (HF cache or download).
        backbone_weights: local file with the encoder's timm weights (implies pretrained).

    Raises:
        InvalidOptionError: ``num_classes`` < 1 or the encoder has other strides.

    Shape:
        See :meth:`SegmentationModel.forward`; no auxiliary output (a 1-tuple in training).
    """

    num_aux_outputs = 0

    def __init__(
        self,
        num_classes: int,
        backbone: str = DEFAULT_BACKBONE,
        pretrained: bool = False,
        backbone_weights: str | Path | None = None,
    ) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise InvalidOptionError(f"num_classes={num_classes!r}; expected an integer >= 1")
        self.num_classes = num_classes
        self.backbone = create_backbone(
            backbone, (2, 3, 4), pretrained=pretrained, weights_file=backbone_weights
        )
        channels, strides = feature_channels_and_strides(self.backbone)
        check_encoder_strides(backbone, strides, ENCODER_STRIDES)
        c8, c16, c32 = channels
        self.score_stride8 = _score_layer(c8, num_classes)
        self.score_stride16 = _score_layer(c16, num_classes)
        self.score_stride32 = _score_layer(c32, num_classes)
        self.upscore_stride32 = _learned_upsampling(num_classes)
        self.upscore_stride16 = _learned_upsampling(num_classes)

    def forward_logits(self, images: Tensor) -> list[Tensor]:
        """See :meth:`SegmentationModel.forward_logits`."""
        feat8, feat16, feat32 = self.backbone(images)
        scores = self.upscore_stride32(self.score_stride32(feat32)) + self.score_stride16(feat16)
        scores = self.upscore_stride16(scores) + self.score_stride8(feat8)
        return [F.interpolate(scores, size=images.shape[-2:], mode="bilinear", align_corners=False)]
