"""ABCNet: attentive bilateral contextual network (spatial path + context path).

Paper: Rui Li, Shunyi Zheng, Ce Zhang, Chenxi Duan, Libo Wang, Peter M. Atkinson, "ABCNet:
Attentive bilateral contextual network for efficient semantic segmentation of
Fine-Resolution remotely sensed imagery", ISPRS J. Photogramm. Remote Sens. 181:84-98, 2021,
DOI 10.1016/j.isprsjprs.2021.09.005, arXiv:2102.02531.
Official code: https://github.com/lironui/ABCNet (ABCNet.py, GPL-3.0) and its timm port in
https://github.com/WangLibo1995/GeoSeg (geoseg/models/ABCNet.py, commit 9453fe4, GPL-3.0),
which this re-implements (not copied).

Same layers, channels, biases and norms as GeoSeg's port: 13,666,563 parameters for 6
classes, two auxiliary heads included (docs/reference.md, "Model fidelity targets").
Departures, none of which changes a parameter:

* the timm encoder is the attribute ``backbone`` (GeoSeg: ``cp.resnet``);
  :meth:`ABCNet.remap_state_dict` maps GeoSeg keys, so its checkpoints load;
* the global-context branch (1x1 ConvBNReLU on the globally pooled stride-32 feature) uses
  :class:`~lossd.models._blocks.SingleValueSafeBatchNorm2d`, so training at batch size 1
  works (``nn.BatchNorm2d`` raises on one value per channel); identical for batches > 1;
* the auxiliary heads exist in every mode but only run in training mode;
* inputs of any size: see :class:`~lossd.models._blocks.SegmentationModel`.
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
from lossd.models._blocks import SegmentationModel, SingleValueSafeBatchNorm2d

__all__ = ["ABCNet"]

#: GeoSeg's ``swsl_resnet18`` under its current timm name.
DEFAULT_BACKBONE = "resnet18.fb_swsl_ig1b_ft_in1k"
#: Strides of the two encoder features the context path uses.
ENCODER_STRIDES = (16, 32)
#: Width of the context and spatial paths (128 in the original).
PATH_CHANNELS = 128


def _kaiming_init(conv: nn.Conv2d) -> None:
    """The original's initialisation: ``kaiming_normal_(a=1)``, zero bias."""
    nn.init.kaiming_normal_(conv.weight, a=1)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


class ConvBNReLU(nn.Module):
    """Convolution without bias, BatchNorm, ReLU (ABCNet's ``ConvBNReLU``).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel side.
        stride: stride.
        padding: zero padding.
        norm_layer: the BatchNorm class.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        norm_layer: type[nn.BatchNorm2d] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False
        )
        self.bn = norm_layer(out_channels)
        self.relu = nn.ReLU(inplace=True)
        _kaiming_init(self.conv)

    def forward(self, x: Tensor) -> Tensor:
        """Shape: [B, in, H, W] -> [B, out, H / stride, W / stride]."""
        out: Tensor = self.relu(self.bn(self.conv(x)))
        return out


class LinearAttention(nn.Module):
    """Kernel attention with linear complexity (Sec. 3.2 of the ABCNet paper).

    Queries and keys are L2-normalised over channels, so ``softmax(QK^T)`` is replaced by the
    first-order expansion ``1 + q.k`` and the attention needs O(N) memory::

        out_n = (sum_m v_m + sum_m (q_n . k_m) v_m) / (N + q_n . sum_m k_m)

    scaled by a learned ``gamma`` initialised to zero (GeoSeg ``Attention``). The sums run over
    all N pixels (16,384 at stride 8 of a 1024^2 tile), which can exceed float16's range, so
    this part is computed in float32 even under autocast (the original is not; same result
    in float32).

    Args:
        channels: input and value channels.
        reduction: query/key channel reduction (8 in the original).
        eps: stabiliser added to the key sum (1e-6 in the original).
    """

    def __init__(self, channels: int, reduction: int = 8, eps: float = 1e-6) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))
        self.eps = eps
        self.query_conv = nn.Conv2d(channels, channels // reduction, 1)
        self.key_conv = nn.Conv2d(channels, channels // reduction, 1)
        self.value_conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Shape: x [B, C, H, W] -> [B, C, H, W]."""
        batch, channels, height, width = x.shape
        query: Tensor = self.query_conv(x)
        key: Tensor = self.key_conv(x)
        value: Tensor = self.value_conv(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            query = F.normalize(query.flatten(2).float(), dim=1, eps=0.0)  # [B, c, N]
            key = F.normalize(key.flatten(2).float(), dim=1, eps=0.0)  # [B, c, N]
            value = value.flatten(2).float()  # [B, C, N]
            query = query.transpose(1, 2)  # [B, N, c]
            denominator = height * width + query @ (key.sum(dim=-1, keepdim=True) + self.eps)
            key_value = key @ value.transpose(1, 2)  # [B, c, C]
            numerator = value.sum(dim=-1, keepdim=True) + (query @ key_value).transpose(1, 2)
            out = numerator / denominator.transpose(1, 2)  # [B, C, N]
            return out.reshape(batch, channels, height, width) * self.gamma


class AttentionEnhancementModule(nn.Module):
    """AEM: 3x3 ConvBNReLU, linear attention, BatchNorm (Sec. 3.3 of the paper)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_channels, out_channels)
        self.conv_atten = LinearAttention(out_channels)
        self.bn_atten = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """Shape: [B, in, H, W] -> [B, out, H, W]."""
        out: Tensor = self.bn_atten(self.conv_atten(self.conv(x)))
        return out


class ContextPath(nn.Module):
    """Context path head on the stride-16/32 encoder features (Sec. 3.3 of the paper).

    Global context (pooled stride-32 feature) plus an AEM per stage, upsampled (nearest, 2x)
    and refined top-down.

    Args:
        channels16: channels of the stride-16 feature.
        channels32: channels of the stride-32 feature.
    """

    def __init__(self, channels16: int, channels32: int) -> None:
        super().__init__()
        self.arm16 = AttentionEnhancementModule(channels16, PATH_CHANNELS)
        self.arm32 = AttentionEnhancementModule(channels32, PATH_CHANNELS)
        self.conv_head32 = ConvBNReLU(PATH_CHANNELS, PATH_CHANNELS)
        self.conv_head16 = ConvBNReLU(PATH_CHANNELS, PATH_CHANNELS)
        self.conv_avg = ConvBNReLU(
            channels32,
            PATH_CHANNELS,
            kernel_size=1,
            padding=0,
            norm_layer=SingleValueSafeBatchNorm2d,
        )

    def forward(self, feat16: Tensor, feat32: Tensor) -> tuple[Tensor, Tensor]:
        """Return the context features at strides 8 and 16, both [B, 128, ., .]."""
        context = self.conv_avg(feat32.mean(dim=(2, 3), keepdim=True))
        up32 = F.interpolate(self.arm32(feat32) + context, scale_factor=2.0, mode="nearest")
        up32 = self.conv_head32(up32)
        up16 = F.interpolate(self.arm16(feat16) + up32, scale_factor=2.0, mode="nearest")
        return self.conv_head16(up16), up32


class SpatialPath(nn.Module):
    """Spatial path: three stride-2 ConvBNReLU (7x7, 3x3, 3x3) and a 1x1 to 128 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ConvBNReLU(3, 64, kernel_size=7, stride=2, padding=3)
        self.conv2 = ConvBNReLU(64, 64, kernel_size=3, stride=2, padding=1)
        self.conv3 = ConvBNReLU(64, 64, kernel_size=3, stride=2, padding=1)
        self.conv_out = ConvBNReLU(64, PATH_CHANNELS, kernel_size=1, padding=0)

    def forward(self, images: Tensor) -> Tensor:
        """Shape: [B, 3, H, W] -> [B, 128, H/8, W/8]."""
        out: Tensor = self.conv_out(self.conv3(self.conv2(self.conv1(images))))
        return out


class FeatureAggregationModule(nn.Module):
    """FAM: concatenation, 1x1 ConvBNReLU, ``x + x * attention(x)`` (Sec. 3.4 of the paper)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.convblk = ConvBNReLU(in_channels, out_channels, kernel_size=1, padding=0)
        self.conv_atten = LinearAttention(out_channels)

    def forward(self, spatial: Tensor, context: Tensor) -> Tensor:
        """Shape: two [B, 128, H, W] maps -> [B, out, H, W]."""
        feat: Tensor = self.convblk(torch.cat([spatial, context], dim=1))
        attention: Tensor = self.conv_atten(feat)
        return feat * attention + feat


class PixelShuffleHead(nn.Module):
    """3x3 ConvBNReLU, 1x1 conv to ``num_classes * factor^2``, pixel shuffle (``Output``)."""

    def __init__(self, in_channels: int, mid_channels: int, num_classes: int, factor: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_channels, mid_channels)
        self.conv_out = nn.Conv2d(mid_channels, num_classes * factor * factor, 1)
        self.up = nn.PixelShuffle(factor)
        _kaiming_init(self.conv_out)

    def forward(self, x: Tensor) -> Tensor:
        """Shape: [B, in, h, w] -> [B, num_classes, h * factor, w * factor]."""
        out: Tensor = self.up(self.conv_out(self.conv(x)))
        return out


class ABCNet(SegmentationModel):
    """ABCNet (Li et al. 2021) on a timm encoder.

    Args:
        num_classes: output classes.
        backbone: timm encoder with features at strides 16 and 32 (``out_indices`` 3, 4;
            GeoSeg: ``swsl_resnet18``, timm ``resnet18.fb_swsl_ig1b_ft_in1k``).
        pretrained: load the encoder's timm weights (HF cache or download).
        backbone_weights: local file with the encoder's timm weights (implies pretrained).

    Raises:
        InvalidOptionError: ``num_classes`` < 1 or the encoder has other strides.

    Shape:
        See :meth:`SegmentationModel.forward`; in training mode the outputs are
        ``(main, aux_stride8, aux_stride16)``, the auxiliary heads reading the context path
        at strides 8 and 16 (GeoSeg's ``feat_out16``, ``feat_out32``).
    """

    num_aux_outputs = 2

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
            backbone, (3, 4), pretrained=pretrained, weights_file=backbone_weights
        )
        channels, strides = feature_channels_and_strides(self.backbone)
        check_encoder_strides(backbone, strides, ENCODER_STRIDES)
        channels16, channels32 = channels
        self.cp = ContextPath(channels16, channels32)
        self.sp = SpatialPath()
        self.fam = FeatureAggregationModule(2 * PATH_CHANNELS, 2 * PATH_CHANNELS)
        self.conv_out = PixelShuffleHead(2 * PATH_CHANNELS, 256, num_classes, factor=8)
        self.conv_out16 = PixelShuffleHead(PATH_CHANNELS, 64, num_classes, factor=8)
        self.conv_out32 = PixelShuffleHead(PATH_CHANNELS, 64, num_classes, factor=16)

    def forward_logits(self, images: Tensor) -> list[Tensor]:
        """See :meth:`SegmentationModel.forward_logits`."""
        feat16, feat32 = self.backbone(images)
        context8, context16 = self.cp(feat16, feat32)
        outputs = [self.conv_out(self.fam(self.sp(images), context8))]
        if self.training:
            outputs += [self.conv_out16(context8), self.conv_out32(context16)]
        return outputs

    @classmethod
    def remap_state_dict(cls, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Rename GeoSeg's ``cp.resnet.*`` encoder keys to ``backbone.*``."""
        old = "cp.resnet."
        return {
            ("backbone." + k[len(old) :] if k.startswith(old) else k): v
            for k, v in state_dict.items()
        }
