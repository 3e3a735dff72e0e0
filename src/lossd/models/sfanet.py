"""SFA-Net: UNetFormer-style decoder with multi-scale feature fusion on EfficientNet-B3.

Paper: Gyutae Hwang, Jiwoo Jeong, Sang Jun Lee, "SFA-Net: Semantic Feature Adjustment
Network for Remote Sensing Image Segmentation", Remote Sens. 16(17):3278, 2024,
DOI 10.3390/rs16173278.
Official code: https://github.com/j2jeong/priv (network/models/SFANet.py, commit 3c442da,
GPL-3.0), identical to network/models/SFANet.py of the Lossd code (qwqwqer233/Lossd).
Re-implemented here, not copied; module names follow the original so its state dicts load.

Same layers, channels, biases and norms as the original: 10,700,121 parameters for 6
classes, encoder 10,103,336 (docs/reference.md, "Model fidelity targets"). On top of the
UNetFormer decoder (:class:`~lossd.models.unetformer.UNetFormerDecoder`), the encoder features
are fused before decoding:

* ``f1 = enc2 + down12(enc1)`` and ``f2 = enc3 + down231(enc2)`` (strided 1x1 ConvBN);
* ``input3 = down232(gate(f1)) + se(f2)``, where ``gate`` is the original's ``FAM1``: a
  sigmoid gate applied to the *globally pooled* ``f1``, so it returns a [B, C, 1, 1] map that
  is broadcast over the stride-16 grid (kept as in the original), and ``se`` its ``FAM2``, a
  squeeze-and-excitation block (reduction 16, no biases);
* ``input4 = enc4 + down34(se(f2))``; ``input4`` and ``input3`` replace ``enc4`` and ``enc3``
  in the decoder, whose refinement head shuffles the upsampled channels in 4 groups.

Departures, none of which changes a parameter: the strided fusion convolutions use
:class:`~lossd.models._blocks.SingleValueSafeBatchNorm2d` (``down232`` sees a 1x1 map, which
``nn.BatchNorm2d`` cannot normalise at batch size 1); the auxiliary head only runs in
training mode; inputs of any size (see :class:`~lossd.models._blocks.SegmentationModel`).
"""

from collections.abc import Sequence
from pathlib import Path

from torch import Tensor, nn

from lossd.models._blocks import (
    FeatureRefinementHead,
    SingleValueSafeBatchNorm2d,
)
from lossd.models.unetformer import UNetFormer, UNetFormerDecoder

__all__ = ["SFANet", "SFANetDecoder"]

#: The original's backbone (timm default tag ``efficientnet_b3.ra2_in1k``).
DEFAULT_BACKBONE = "efficientnet_b3"
#: Channel reduction of both attention gates (``reduction_ratio=16`` in the original).
GATE_REDUCTION = 16
#: Channel-shuffle groups of the refinement head (``ChannelShuffle(groups=4)``).
SHUFFLE_GROUPS = 4


class PooledChannelGate(nn.Module):
    """The original's ``FAM1``: sigmoid gate times the globally pooled input.

    Shape:
        x: [B, C, H, W] -> [B, C, 1, 1].
    """

    def __init__(self, channels: int, reduction: int = GATE_REDUCTION) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Gate the pooled descriptor of ``x``."""
        pooled = self.pool(x)
        gated: Tensor = self.conv(pooled) * pooled
        return gated


class SqueezeExcitation(nn.Module):
    """The original's ``FAM2``: squeeze-and-excitation without biases (Hu et al., CVPR 2018).

    Shape:
        x: [B, C, H, W] -> [B, C, H, W].
    """

    def __init__(self, channels: int, reduction: int = GATE_REDUCTION) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channels // reduction, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Reweight the channels of ``x``."""
        weights: Tensor = self.fc(self.pool(x).flatten(1))
        return x * weights[:, :, None, None]


class DownConnection(nn.Module):
    """Strided 1x1 convolution with bias, then BatchNorm (safe on 1x1 maps at batch 1)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=2)
        self.bn = SingleValueSafeBatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """Shape: [B, in, H, W] -> [B, out, ceil(H/2), ceil(W/2)]."""
        out: Tensor = self.bn(self.conv(x))
        return out


class SFANetDecoder(UNetFormerDecoder):
    """UNetFormer decoder preceded by SFA-Net's multi-scale fusion of the encoder features.

    Args:
        encoder_channels: channels of the encoder features at strides 4, 8, 16, 32.
        decode_channels: decoder width (64 in the original).
        dropout: Dropout2d probability before the classifier (0.1 in the original).
        window_size: attention window side (8 in the original).
        num_classes: output classes.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        decode_channels: int,
        dropout: float,
        window_size: int,
        num_classes: int,
    ) -> None:
        c1, c2, c3, c4 = encoder_channels
        super().__init__(
            encoder_channels,
            decode_channels,
            dropout,
            window_size,
            num_classes,
            feature_refinement=FeatureRefinementHead(
                c1, decode_channels, shuffle_groups=SHUFFLE_GROUPS
            ),
        )
        self.fam1 = PooledChannelGate(c2)
        self.fam2 = SqueezeExcitation(c3)
        self.down12 = DownConnection(c1, c2)
        self.down231 = DownConnection(c2, c3)
        self.down232 = DownConnection(c2, c3)
        self.down34 = DownConnection(c3, c4)

    def forward(self, res1: Tensor, res2: Tensor, res3: Tensor, res4: Tensor) -> list[Tensor]:
        """Fuse the encoder features, then decode (see :class:`UNetFormerDecoder`)."""
        fused2 = self.fam2(res3 + self.down231(res2))
        input3 = self.down232(self.fam1(res2 + self.down12(res1))) + fused2
        input4 = res4 + self.down34(fused2)
        return super().forward(res1, res2, input3, input4)


class SFANet(UNetFormer):
    """SFA-Net (Hwang et al. 2024) on a timm encoder: UNetFormer's body with the SFA decoder.

    Args:
        num_classes: output classes.
        backbone: timm encoder with features at strides 4, 8, 16, 32 (``efficientnet_b3``).
        decode_channels: decoder width (64, original default).
        dropout: Dropout2d probability before the classifier (0.1, original default).
        window_size: attention window side in pixels (8, original default).
        pretrained: load the encoder's timm weights (HF cache or download).
        backbone_weights: local file with the encoder's timm weights (implies pretrained).

    Raises:
        InvalidOptionError: an argument is out of range or the encoder has other strides.

    Shape:
        See :meth:`SegmentationModel.forward`; one auxiliary output in training mode.
    """

    decoder_class = SFANetDecoder

    def __init__(
        self,
        num_classes: int,
        backbone: str = DEFAULT_BACKBONE,
        decode_channels: int = 64,
        dropout: float = 0.1,
        window_size: int = 8,
        pretrained: bool = False,
        backbone_weights: str | Path | None = None,
    ) -> None:
        super().__init__(
            num_classes,
            backbone,
            decode_channels,
            dropout,
            window_size,
            pretrained,
            backbone_weights,
        )
