"""UNetFormer: a UNet-like transformer decoder on a ResNet-18 encoder.

Paper: Libo Wang, Rui Li, Ce Zhang, Shenghui Fang, Chenxi Duan, Xiaoliang Meng, Peter M.
Atkinson, "UNetFormer: A UNet-like transformer for efficient semantic segmentation of remote
sensing urban scene imagery", ISPRS J. Photogramm. Remote Sens. 190:196-214, 2022,
DOI 10.1016/j.isprsjprs.2022.06.008, arXiv:2109.08937.
Official code: https://github.com/WangLibo1995/GeoSeg (geoseg/models/UNetFormer.py, commit
9453fe4, GPL-3.0). Re-implemented here, not copied; module names follow GeoSeg's so its
state dicts load.

Same layers, channels, biases and norms as the original: 11,724,894 parameters for
6 classes (docs/reference.md, "Model fidelity targets"). Departures, none of which changes a
parameter:

* the auxiliary head exists in every mode but only runs in training mode (GeoSeg creates it
  only when the decoder is constructed in training mode, which is always the case);
* inputs of any size: see :class:`~lossd.models._blocks.SegmentationModel`; maps too small
  to reflect inside the attention are edge-replicated where GeoSeg raises;
* GeoSeg's decoder ``init_weight`` touches no layer (it only visits direct children, none of
  which is a convolution), so PyTorch's default initialisation is kept here too.
"""

from collections.abc import Sequence
from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn

from lossd.errors import InvalidOptionError
from lossd.models._backbone import (
    check_encoder_strides,
    create_backbone,
    feature_channels_and_strides,
)
from lossd.models._blocks import (
    AuxHead,
    ConvBN,
    FeatureRefinementHead,
    GlobalLocalTransformerBlock,
    SegmentationModel,
    WeightedFusion,
    segmentation_head,
)

__all__ = ["UNetFormer", "UNetFormerDecoder", "check_decoder_args"]

#: GeoSeg's ``swsl_resnet18`` under its current timm name (SWSL weights, Yalniz et al. 2019).
DEFAULT_BACKBONE = "resnet18.fb_swsl_ig1b_ft_in1k"
#: Attention heads of every GLTB (hard-coded to 8 in GeoSeg's ``Decoder``).
NUM_HEADS = 8
#: Strides of the four encoder features the decoder expects.
ENCODER_STRIDES = (4, 8, 16, 32)


def check_decoder_args(
    num_classes: int, decode_channels: int, window_size: int, dropout: float
) -> None:
    """Validate the arguments shared by UNetFormer and SFA-Net.

    Raises:
        InvalidOptionError: naming the offending value and the accepted range.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise InvalidOptionError(f"num_classes={num_classes!r}; expected an integer >= 1")
    if decode_channels < 16 or decode_channels % NUM_HEADS:
        raise InvalidOptionError(
            f"decode_channels={decode_channels!r}; expected a multiple of {NUM_HEADS} "
            "(attention heads) that is at least 16 (channel-attention reduction)"
        )
    if window_size < 2 or window_size % 2:
        raise InvalidOptionError(f"window_size={window_size!r}; expected an even integer >= 2")
    if not 0.0 <= dropout < 1.0:
        raise InvalidOptionError(f"dropout={dropout!r}; expected a probability in [0, 1)")


class UNetFormerDecoder(nn.Module):
    """UNetFormer decoder: three GLTBs with weighted fusions, then the FRH (Fig. 2 of the paper).

    Args:
        encoder_channels: channels of the encoder features at strides 4, 8, 16, 32.
        decode_channels: decoder width (64 in GeoSeg).
        dropout: Dropout2d probability before the classifier (0.1 in GeoSeg).
        window_size: attention window side (8 in GeoSeg).
        num_classes: output classes.
        feature_refinement: the stride-4 head (UNetFormer's FRH by default).
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        decode_channels: int,
        dropout: float,
        window_size: int,
        num_classes: int,
        feature_refinement: FeatureRefinementHead | None = None,
    ) -> None:
        super().__init__()
        c1, c2, c3, c4 = encoder_channels
        self.pre_conv = ConvBN(c4, decode_channels, kernel_size=1)
        self.b4 = GlobalLocalTransformerBlock(decode_channels, NUM_HEADS, window_size)
        self.b3 = GlobalLocalTransformerBlock(decode_channels, NUM_HEADS, window_size)
        self.p3 = WeightedFusion(c3, decode_channels)
        self.b2 = GlobalLocalTransformerBlock(decode_channels, NUM_HEADS, window_size)
        self.p2 = WeightedFusion(c2, decode_channels)
        self.aux_head = AuxHead(decode_channels, num_classes)
        self.p1 = feature_refinement or FeatureRefinementHead(c1, decode_channels)
        self.segmentation_head = segmentation_head(decode_channels, num_classes, dropout)

    def forward(self, res1: Tensor, res2: Tensor, res3: Tensor, res4: Tensor) -> list[Tensor]:
        """Decode four encoder features into logits at the input resolution (4 x res1).

        Args:
            res1: stride-4 feature.
            res2: stride-8 feature.
            res3: stride-16 feature.
            res4: stride-32 feature.

        Returns:
            ``[main]``, plus the auxiliary logits in training mode.
        """
        size = (4 * res1.shape[-2], 4 * res1.shape[-1])
        x4 = self.b4(self.pre_conv(res4))
        x3 = self.b3(self.p3(x4, res3))
        x2 = self.b2(self.p2(x3, res2))
        main = self.segmentation_head(self.p1(x2, res1))
        outputs = [F.interpolate(main, size=size, mode="bilinear", align_corners=False)]
        if self.training:
            # GeoSeg's nn.UpsamplingBilinear2d(scale_factor=4 / 2): align_corners=True
            aux_in = (
                F.interpolate(x4, scale_factor=4, mode="bilinear", align_corners=True)
                + F.interpolate(x3, scale_factor=2, mode="bilinear", align_corners=True)
                + x2
            )
            outputs.append(self.aux_head(aux_in, size))
        return outputs


class UNetFormer(SegmentationModel):
    """UNetFormer (Wang et al. 2022) on a timm encoder.

    Args:
        num_classes: output classes.
        backbone: timm encoder with features at strides 4, 8, 16, 32 (GeoSeg:
            ``swsl_resnet18``, timm ``resnet18.fb_swsl_ig1b_ft_in1k``).
        decode_channels: decoder width (64, GeoSeg default).
        dropout: Dropout2d probability before the classifier (0.1, GeoSeg default).
        window_size: attention window side in pixels (8, GeoSeg default).
        pretrained: load the encoder's timm weights (HF cache or download).
        backbone_weights: local file with the encoder's timm weights (implies pretrained).

    Raises:
        InvalidOptionError: an argument is out of range or the encoder has other strides.

    Shape:
        See :meth:`SegmentationModel.forward`; one auxiliary output in training mode.
    """

    num_aux_outputs = 1
    decoder_class: type[UNetFormerDecoder] = UNetFormerDecoder

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
        super().__init__()
        check_decoder_args(num_classes, decode_channels, window_size, dropout)
        self.num_classes = num_classes
        self.backbone = create_backbone(
            backbone, (1, 2, 3, 4), pretrained=pretrained, weights_file=backbone_weights
        )
        channels, strides = feature_channels_and_strides(self.backbone)
        check_encoder_strides(backbone, strides, ENCODER_STRIDES)
        self.decoder = self.decoder_class(
            channels, decode_channels, dropout, window_size, num_classes
        )

    def forward_logits(self, images: Tensor) -> list[Tensor]:
        """See :meth:`SegmentationModel.forward_logits`."""
        res1, res2, res3, res4 = self.backbone(images)
        outputs: list[Tensor] = self.decoder(res1, res2, res3, res4)
        return outputs
