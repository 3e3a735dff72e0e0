"""Building blocks shared by the networks of ``lossd.models``.

* :class:`SegmentationModel`: the common input/output contract (padding to the output stride,
  cropping back, ``(main, aux...)`` in training and the main logits in evaluation).
* Convolution shorthands and the global-local transformer decoder blocks of UNetFormer
  (Wang et al., "UNetFormer: A UNet-like transformer for efficient semantic segmentation of
  remote sensing urban scene imagery", ISPRS J. Photogramm. Remote Sens. 190:196-214, 2022,
  arXiv:2109.08937; official code WangLibo1995/GeoSeg: geoseg/models/UNetFormer.py, GPL-3.0),
  which SFA-Net reuses (j2jeong/priv: network/models/SFANet.py).

Module attribute names follow GeoSeg's, so a GeoSeg state dict maps key for key onto these
modules (the parameter counts of docs/reference.md, "Model fidelity targets", rely on the
same layers, biases and norms).
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossd.errors import DataFormatError

__all__ = [
    "AuxHead",
    "ConvBN",
    "ConvBNReLU6",
    "FeatureRefinementHead",
    "GlobalLocalAttention",
    "GlobalLocalTransformerBlock",
    "PlainConv",
    "SegmentationModel",
    "SeparableConvBN",
    "SingleValueSafeBatchNorm2d",
    "WeightedFusion",
    "channel_shuffle",
    "pad_bottom_right",
    "pad_to_multiple",
    "segmentation_head",
]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def pad_bottom_right(x: Tensor, bottom: int, right: int) -> Tensor:
    """Pad the last two dimensions at the bottom and right.

    Reflection is used, as in GeoSeg's window padding (``GlobalLocalAttention.pad``); when a
    map is too small to reflect (a pad not smaller than its size, e.g. a 1x1 map) edge
    replication is used instead, where the original would raise.

    Args:
        x: tensor [..., H, W].
        bottom: rows to add below.
        right: columns to add on the right.

    Returns:
        Tensor [..., H + bottom, W + right].
    """
    if bottom == 0 and right == 0:
        return x
    height, width = x.shape[-2:]
    mode = "reflect" if bottom < height and right < width else "replicate"
    return F.pad(x, (0, right, 0, bottom), mode=mode)


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Pad height and width at the bottom/right up to a multiple of ``multiple``.

    Args:
        x: tensor [..., H, W].
        multiple: the required divisor of both sizes.

    Returns:
        Tensor [..., ceil(H/m)*m, ceil(W/m)*m] (``x`` itself when nothing is needed).
    """
    height, width = x.shape[-2:]
    return pad_bottom_right(x, -height % multiple, -width % multiple)


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave the channels of ``groups`` groups (Zhang et al., ShuffleNet, CVPR 2018).

    Shape:
        x: [B, C, H, W] with C divisible by ``groups``; the output has the same shape.
    """
    batch, channels, height, width = x.shape
    x = x.reshape(batch, groups, channels // groups, height, width).transpose(1, 2)
    return x.reshape(batch, channels, height, width)


class SingleValueSafeBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that uses its running statistics when a batch holds one value per channel.

    In training mode ``nn.BatchNorm2d`` cannot normalise a [1, C, 1, 1] input (a globally
    pooled branch at batch size 1) and raises. This layer then normalises with the running
    mean/variance and leaves them unchanged; any other input is handled exactly as by
    ``nn.BatchNorm2d``. Same parameters and buffers, so parameter counts and state dicts are
    those of the original networks.
    """

    def forward(self, input: Tensor) -> Tensor:
        """Normalise ``input`` [B, C, H, W]."""
        single_value = input.shape[0] * input.shape[2] * input.shape[3] == 1
        if self.training and single_value and self.running_mean is not None:
            return F.batch_norm(
                input,
                self.running_mean,
                self.running_var,
                self.weight,
                self.bias,
                training=False,
                momentum=0.0,
                eps=self.eps,
            )
        return super().forward(input)


# --------------------------------------------------------------------------------------------
# the common model contract
# --------------------------------------------------------------------------------------------
class SegmentationModel(nn.Module):
    """Base class: pads the input to the output stride, crops every output back.

    Subclasses set ``backbone`` (the timm feature extractor), ``num_classes`` and
    ``num_aux_outputs`` and implement :meth:`forward_logits` on padded images.

    Inputs whose height or width is not a multiple of :attr:`size_divisor` (32, the encoder's
    output stride) are padded at the bottom and right by reflection (edge replication for
    images smaller than the pad) and every output is cropped back to the input size.
    """

    size_divisor: int = 32
    backbone: nn.Module
    num_classes: int
    num_aux_outputs: int

    def forward_logits(self, images: Tensor) -> list[Tensor]:
        """Logits for images whose sizes are multiples of :attr:`size_divisor`.

        Args:
            images: [B, 3, H, W] with H, W multiples of ``size_divisor``.

        Returns:
            ``[main]`` in evaluation mode, ``[main, aux_1, ...]`` in training mode, each
            [B, num_classes, H, W].
        """
        raise NotImplementedError

    def forward(self, images: Tensor) -> Tensor | tuple[Tensor, ...]:
        """Segment normalised images of any size.

        Args:
            images: normalised images.

        Returns:
            Evaluation mode: the main logits. Training mode: the tuple
            ``(main_logits, aux_1, ..., aux_n)`` with ``n = num_aux_outputs``, every output
            at input resolution.

        Raises:
            DataFormatError: ``images`` is not a [B, 3, H, W] tensor.

        Shape:
            images: [B, 3, H, W]; each output: [B, num_classes, H, W].
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise DataFormatError(
                f"{type(self).__name__} expects images of shape [B, 3, H, W], "
                f"got {tuple(images.shape)}"
            )
        height, width = images.shape[-2:]
        outputs = self.forward_logits(pad_to_multiple(images, self.size_divisor))
        cropped = tuple(out[..., :height, :width] for out in outputs)
        return cropped if self.training else cropped[0]

    @classmethod
    def remap_state_dict(cls, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Map the keys of an original (GeoSeg-style) checkpoint onto this module's keys.

        The default is the identity; a subclass whose layout differs overrides it.
        """
        return state_dict


# --------------------------------------------------------------------------------------------
# convolution shorthands (GeoSeg: Conv, ConvBN, ConvBNReLU, SeparableConvBN)
# --------------------------------------------------------------------------------------------
class PlainConv(nn.Sequential):
    """A single 'same'-padded convolution (kept in a Sequential for GeoSeg's key names)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = False
    ) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2, bias=bias
            )
        )


class ConvBN(nn.Sequential):
    """'Same'-padded convolution without bias, then BatchNorm."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2, bias=False
            ),
            nn.BatchNorm2d(out_channels),
        )


class ConvBNReLU6(nn.Sequential):
    """'Same'-padded convolution without bias, BatchNorm, ReLU6 (GeoSeg's ``ConvBNReLU``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2, bias=False
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU6(),
        )


class SeparableConvBN(nn.Sequential):
    """Depthwise convolution, BatchNorm, pointwise convolution (no biases)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels,
                in_channels,
                kernel_size,
                padding=(kernel_size - 1) // 2,
                groups=in_channels,
                bias=False,
            ),
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
        )


def segmentation_head(decode_channels: int, num_classes: int, dropout: float) -> nn.Sequential:
    """ConvBNReLU6 3x3, Dropout2d, 1x1 classifier without bias (GeoSeg's segmentation head)."""
    return nn.Sequential(
        ConvBNReLU6(decode_channels, decode_channels),
        nn.Dropout2d(p=dropout),
        PlainConv(decode_channels, num_classes, kernel_size=1),
    )


# --------------------------------------------------------------------------------------------
# UNetFormer decoder blocks (Sec. 3 of Wang et al. 2022)
# --------------------------------------------------------------------------------------------
def _relative_position_index(window_size: int) -> Tensor:
    """Index of each token pair of a window into the (2w-1)^2 relative-position table.

    Swin Transformer's scheme (Liu et al., ICCV 2021, Sec. 3.2), used by GeoSeg.
    """
    coords = torch.stack(
        torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
    ).flatten(1)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window_size - 1)
    return relative[..., 0] * (2 * window_size - 1) + relative[..., 1]


class GlobalLocalAttention(nn.Module):
    """Global-local attention (Sec. 3.3 of Wang et al. 2022).

    Local branch: 3x3 ConvBN + 1x1 ConvBN. Global branch: multi-head self-attention inside
    non-overlapping ``window_size`` windows with a learned relative-position bias, then the
    cross-shaped window context interaction (average pooling along rows and columns). The
    sum goes through a depthwise-separable ``window_size`` x ``window_size`` projection.

    Args:
        dim: channels (divisible by ``num_heads``).
        num_heads: attention heads.
        window_size: window side in pixels (even).
        qkv_bias: bias in the 1x1 query/key/value convolution.
    """

    relative_position_index: Tensor

    def __init__(
        self, dim: int, num_heads: int = 8, window_size: int = 8, qkv_bias: bool = False
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.window_size = window_size
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = PlainConv(dim, 3 * dim, kernel_size=1, bias=qkv_bias)
        self.local1 = ConvBN(dim, dim, kernel_size=3)
        self.local2 = ConvBN(dim, dim, kernel_size=1)
        self.proj = SeparableConvBN(dim, dim, kernel_size=window_size)
        half = window_size // 2 - 1
        self.attn_x = nn.AvgPool2d(kernel_size=(window_size, 1), stride=1, padding=(half, 0))
        self.attn_y = nn.AvgPool2d(kernel_size=(1, window_size), stride=1, padding=(0, half))
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads)
        )
        self.register_buffer("relative_position_index", _relative_position_index(window_size))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)  # as GeoSeg

    def _relative_position_bias(self) -> Tensor:
        tokens = self.window_size**2
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        return bias.view(tokens, tokens, self.num_heads).permute(2, 0, 1)

    def _window_attention(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        ws, heads = self.window_size, self.num_heads
        rows, cols, head_dim = height // ws, width // ws, channels // heads
        # qkv channels are ordered (q/k/v, head, head_dim); split into windows of ws x ws
        qkv: Tensor = self.qkv(x)
        qkv = qkv.reshape(batch, 3, heads, head_dim, rows, ws, cols, ws)
        qkv = qkv.permute(1, 0, 4, 6, 2, 5, 7, 3).reshape(3, -1, heads, ws * ws, head_dim)
        query, key, value = qkv[0], qkv[1], qkv[2]
        dots = (query @ key.transpose(-2, -1)) * self.scale + self._relative_position_bias()
        attn: Tensor = dots.softmax(dim=-1) @ value  # [B*rows*cols, heads, ws*ws, head_dim]
        attn = attn.reshape(batch, rows, cols, heads, ws, ws, head_dim)
        return attn.permute(0, 3, 6, 1, 4, 2, 5).reshape(batch, channels, height, width)

    def forward(self, x: Tensor) -> Tensor:
        """Apply global-local attention.

        Shape:
            x: [B, dim, H, W]; output: [B, dim, H, W].
        """
        height, width = x.shape[-2:]
        local = self.local2(x) + self.local1(x)
        attn = self._window_attention(pad_to_multiple(x, self.window_size))[..., :height, :width]
        out = self.attn_x(pad_bottom_right(attn, 1, 0)) + self.attn_y(pad_bottom_right(attn, 0, 1))
        projected: Tensor = self.proj(pad_bottom_right(out + local, 1, 1))
        return projected[..., :height, :width]


class ConvMlp(nn.Module):
    """Two 1x1 convolutions with biases and ReLU6 between (GeoSeg's ``Mlp``, dropout 0)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.ReLU6()
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Shape: x [B, dim, H, W] -> [B, dim, H, W]."""
        out: Tensor = self.fc2(self.act(self.fc1(x)))
        return out


class GlobalLocalTransformerBlock(nn.Module):
    """Global-local transformer block, GLTB (Fig. 3 of Wang et al. 2022).

    ``x + attn(BN(x))`` then ``x + mlp(BN(x))`` with an MLP ratio of 4 (GeoSeg ``Block``).
    """

    def __init__(
        self, dim: int, num_heads: int = 8, window_size: int = 8, mlp_ratio: float = 4.0
    ) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim)
        self.attn = GlobalLocalAttention(dim, num_heads=num_heads, window_size=window_size)
        self.mlp = ConvMlp(dim, int(dim * mlp_ratio))
        self.norm2 = nn.BatchNorm2d(dim)

    def forward(self, x: Tensor) -> Tensor:
        """Shape: x [B, dim, H, W] -> [B, dim, H, W]."""
        x = x + self.attn(self.norm1(x))
        out: Tensor = x + self.mlp(self.norm2(x))
        return out


def _fuse(weights: Tensor, eps: float, skip: Tensor, upsampled: Tensor) -> Tensor:
    """Weighted sum with ReLU-normalised learned weights (Eq. (9) of Wang et al. 2022)."""
    positive = F.relu(weights)
    fuse = positive / (positive.sum() + eps)
    return fuse[0] * skip + fuse[1] * upsampled


class WeightedFusion(nn.Module):
    """Weighted sum of the 2x upsampled decoder map and a 1x1-projected skip (GeoSeg ``WF``).

    Args:
        in_channels: channels of the encoder skip feature.
        decode_channels: decoder channels.
        eps: stabiliser of the weight normalisation (1e-8 in GeoSeg).
    """

    def __init__(self, in_channels: int, decode_channels: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.pre_conv = PlainConv(in_channels, decode_channels, kernel_size=1)
        self.weights = nn.Parameter(torch.ones(2))
        self.eps = eps
        self.post_conv = ConvBNReLU6(decode_channels, decode_channels)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        """Shape: x [B, D, H, W], skip [B, in_channels, 2H, 2W] -> [B, D, 2H, 2W]."""
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        out: Tensor = self.post_conv(_fuse(self.weights, self.eps, self.pre_conv(skip), x))
        return out


class FeatureRefinementHead(nn.Module):
    """Feature refinement head, FRH (Sec. 3.4 of Wang et al. 2022).

    Weighted fusion with the stride-4 skip, then a spatial (depthwise 3x3 + sigmoid) and a
    channel (squeeze-excitation, reduction 16) attention path, a depthwise-separable
    projection and a 1x1 ConvBN shortcut.

    Args:
        in_channels: channels of the stride-4 encoder feature.
        decode_channels: decoder channels (at least 16).
        shuffle_groups: if set, the upsampled decoder map is channel-shuffled in that many
            groups before the fusion (SFA-Net's variant; UNetFormer uses none).
    """

    def __init__(
        self, in_channels: int, decode_channels: int, shuffle_groups: int | None = None
    ) -> None:
        super().__init__()
        self.shuffle_groups = shuffle_groups
        self.pre_conv = PlainConv(in_channels, decode_channels, kernel_size=1)
        self.weights = nn.Parameter(torch.ones(2))
        self.eps = 1e-8
        self.post_conv = ConvBNReLU6(decode_channels, decode_channels)
        self.pa = nn.Sequential(
            nn.Conv2d(decode_channels, decode_channels, 3, padding=1, groups=decode_channels),
            nn.Sigmoid(),
        )
        reduced = decode_channels // 16
        self.ca = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            PlainConv(decode_channels, reduced, kernel_size=1),
            nn.ReLU6(),
            PlainConv(reduced, decode_channels, kernel_size=1),
            nn.Sigmoid(),
        )
        self.shortcut = ConvBN(decode_channels, decode_channels, kernel_size=1)
        self.proj = SeparableConvBN(decode_channels, decode_channels, kernel_size=3)
        self.act = nn.ReLU6()

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        """Shape: x [B, D, H, W], skip [B, in_channels, 2H, 2W] -> [B, D, 2H, 2W]."""
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        if self.shuffle_groups is not None:
            x = channel_shuffle(x, self.shuffle_groups)
        x = self.post_conv(_fuse(self.weights, self.eps, self.pre_conv(skip), x))
        shortcut = self.shortcut(x)
        x = self.pa(x) * x + self.ca(x) * x
        out: Tensor = self.act(self.proj(x) + shortcut)
        return out


class AuxHead(nn.Module):
    """Auxiliary head: ConvBNReLU6 3x3, Dropout(0.1), 1x1 classifier, bilinear resize."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU6(in_channels, in_channels)
        self.drop = nn.Dropout(0.1)
        self.conv_out = PlainConv(in_channels, num_classes, kernel_size=1)

    def forward(self, x: Tensor, size: Sequence[int]) -> Tensor:
        """Shape: x [B, C, h, w] -> [B, num_classes, *size]."""
        logits = self.conv_out(self.drop(self.conv(x)))
        return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
