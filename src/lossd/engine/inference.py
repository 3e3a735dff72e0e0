"""Sliding-window inference with blended logits and test-time augmentation (TTA), pure torch.

The test-time augmentation of the field is ttach's ``SegmentationTTAWrapper`` (qubvel/ttach
@94e579e), which GeoSeg's and SFA-Net's test scripts wrap around the network; lossd reproduces it:

- the passes are the product of the transforms' parameters in ttach's order
  (``itertools.product`` in ``Compose``, ttach/base.py:90-96): horizontal flip {no, yes},
  vertical flip {no, yes}, rotation {0, angles...} by ``torch.rot90`` (ttach Rotate90 adds the
  identity 0, transforms.py:70-74), scale {1, scales...} (ttach Scale adds the identity 1 when
  missing, transforms.py:103-110);
- each pass applies the transforms in that order and undoes them in reverse
  (base.py:92-93): the logits are resized back with the same interpolation as the image was
  resized (``Scale.apply_deaug_mask``, transforms.py:126-134), un-rotated and un-flipped;
- a rescaled image has ``int(side * scale)`` pixels (ttach/functional.py:45-52); the logits
  are resized back to the exact input size (ttach asks for ``int(new * (1 / scale))``, the
  same size for every size tested, e.g. 1024² at 0.75-1.75; one pixel short for some odd sizes,
  where ttach's merge would fail);
- the de-augmented logits are averaged (``merge_mode="mean"``, wrappers.py:20-44, base.py:
  Merger), before softmax.

Presets (``tta``): ``none``; ``hflip``; ``flip`` = GeoSeg's ``lr`` (h x v flips, 4 passes);
``d4`` = h x v flips x scales {0.75, 1, 1.25, 1.5} (GeoSeg potsdam_test.py ``d4``, 16 passes).
``scales``, ``rotations`` and ``interpolation`` complete them: LoveDA's ``d4`` of
loveda_test.py is ``tta=hflip`` with the four scales, Vaihingen's of vaihingen_test.py
``tta=d4, rotations=[90], scales=[0.5, 0.75, 1, 1.25, 1.5]`` (conf/inference/<dataset>.yaml).
Despite the name, no ``d4`` of the originals is the dihedral group.

Sliding windows (mmsegmentation ``slide`` mode, generalised): windows of ``patch_size`` start
at ``0, stride, 2*stride, ...`` with ``stride = patch - round(overlap * patch)``, and the last
window of each axis is moved back to end at the image border, so every window lies inside the
image (an image smaller than the patch is one window of its own size; the networks pad to a
multiple of 32 internally). Overlapping logits are blended with per-pixel weights:

- ``blend="gaussian"`` (default): a separable Gaussian of sigma = 1/8 of the window side,
  peaking at the window centre (nnU-Net; Isensee et al., Nature Methods 18:203-211, 2021,
  DOI 10.1038/s41592-020-01008-z), which down-weights the less reliable window borders;
- ``blend="uniform"``: every window counts equally (mmsegmentation's ``slide_inference``).

The output at a pixel is ``sum_w weight_w * logits_w / sum_w weight_w``. A single window (no
``patch_size``, or an image no larger than it) gives the network's logits unchanged; with
uniform weights and windows that do not overlap, every pixel gets its window's logits exactly.

``pad="top_left"`` is GeoSeg's tiling of whole UAVid frames (inference_uavid.py:97-109,
130-144, 217-222 @9453fe4): the image is padded at the top and left to a multiple of the window
(``PadIfNeeded(position='bottom_right')`` anchors the image bottom-right; fill: a black pixel,
normalised), cut into windows that do not overlap, and the logits are cropped back to the
bottom-right ``H × W``.

Windows are processed one window-row at a time, and finished rows are handed out as soon as no
later window touches them (:func:`stream_logits`), so a raster of any height is predicted with
at most one window-row of logits in memory; :func:`sliding_window_logits` is the same stream
collected into one tensor, so windowed and in-memory prediction are the same computation.
"""

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossd.errors import DataFormatError, InvalidOptionError

__all__ = [
    "BLEND_MODES",
    "D4_SCALES",
    "INTERPOLATIONS",
    "PADDINGS",
    "TTA_MODES",
    "Blend",
    "InferenceOptions",
    "Interpolation",
    "Padding",
    "Tta",
    "TtaPass",
    "WindowGrid",
    "blend_weights",
    "pad_top_left",
    "predict_logits",
    "sliding_window_logits",
    "stream_logits",
    "tta_logits",
    "window_starts",
]

Tta = Literal["none", "hflip", "flip", "d4"]
Blend = Literal["gaussian", "uniform"]
Interpolation = Literal["bicubic", "bilinear", "nearest"]
Padding = Literal["none", "top_left"]

TTA_MODES: tuple[str, ...] = ("none", "hflip", "flip", "d4")
BLEND_MODES: tuple[str, ...] = ("gaussian", "uniform")
INTERPOLATIONS: tuple[str, ...] = ("bicubic", "bilinear", "nearest")
PADDINGS: tuple[str, ...] = ("none", "top_left")

D4_SCALES: tuple[float, ...] = (0.75, 1.0, 1.25, 1.5)
"""Scales of GeoSeg's ``d4`` TTA (``potsdam_test.py``, ``loveda_test.py``: ``tta.Scale``)."""

_FLIPS: dict[str, tuple[bool, bool]] = {
    "none": (False, False),
    "hflip": (True, False),
    "flip": (True, True),
    "d4": (True, True),
}
"""(horizontal, vertical) flips of each preset."""

_GAUSSIAN_SIGMA = 1.0 / 8.0
"""Sigma of the Gaussian blending window as a fraction of its side (nnU-Net)."""

Forward = Callable[[Tensor], Tensor]
"""A network call: normalised images [N, C, h, w] -> logits [N, K, h, w]."""


def _check_choice(value: str, choices: Sequence[str], name: str) -> None:
    if value not in choices:
        raise InvalidOptionError(f"{name}={value!r}; expected one of {list(choices)}")


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    values = (value, value) if isinstance(value, int) else tuple(value)
    if len(values) != 2 or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values
    ):
        raise InvalidOptionError(
            f"{name}={value!r}; expected a positive number of pixels or [height, width]"
        )
    return int(values[0]), int(values[1])


@dataclass(frozen=True)
class TtaPass:
    """One test-time augmentation pass, in ttach's order: flip h, flip v, rotate, rescale.

    Attributes:
        hflip: Flip left-right.
        vflip: Flip top-bottom.
        angle: Counter-clockwise rotation in degrees (a multiple of 90; ``torch.rot90``).
        scale: Resize factor (1 = none).
    """

    hflip: bool
    vflip: bool
    angle: int
    scale: float


@dataclass(frozen=True)
class InferenceOptions:
    """How a network is applied to an image: tiling, blending and test-time augmentation.

    Declared once: the fields are also the typed ``inference`` config node
    (:func:`lossd.engine.schema.register_schemas` derives Hydra's schema from them) and the
    flags of ``scripts/predict.py`` (:mod:`lossd.engine.cli`), with each field's ``help``.

    Args:
        patch_size: Window size ``n`` or ``(height, width)``; None = the whole image at once.
        overlap: Overlap of neighbouring windows as a fraction of the window, in ``[0, 1)``.
        batch_size: Windows per forward pass (times the images of a batch).
        blend: ``gaussian`` or ``uniform`` blending of overlapping windows.
        tta: ``none``, ``hflip``, ``flip`` (GeoSeg ``lr``) or ``d4`` (flips x scales).
        scales: TTA scales; None = the mode's default (:data:`D4_SCALES` for ``d4``, else 1);
            1 is added when missing, as ttach's ``Scale`` does.
        rotations: TTA rotations in degrees (multiples of 90); 0 is added when missing, as
            ttach's ``Rotate90`` does. None = no rotation.
        interpolation: How a TTA rescale resizes the image and undoes it on the logits
            (``bicubic``, as every GeoSeg/SFA-Net ``tta.Scale``; ``bilinear``; ``nearest``).
        pad: ``none`` (windows inside the image, the last one moved back) or ``top_left``
            (GeoSeg's UAVid tiling: pad the top/left to a multiple of ``patch_size``, windows
            without overlap; needs ``patch_size`` and ``overlap`` 0).

    Raises:
        InvalidOptionError: If a value is out of range or not one of the choices.
    """

    patch_size: int | tuple[int, int] | None = field(
        default=None, metadata={"help": "sliding-window size n or [h, w] (None: whole images)"}
    )
    overlap: float = field(
        default=0.0, metadata={"help": "window overlap, fraction of the window in [0, 1)"}
    )
    batch_size: int = field(default=4, metadata={"help": "windows per forward pass"})
    blend: Blend = field(
        default="gaussian", metadata={"help": "gaussian (nnU-Net) | uniform (mmseg slide)"}
    )
    tta: Tta = field(
        default="none", metadata={"help": "none | hflip | flip (GeoSeg 'lr') | d4 (flips x scales)"}
    )
    scales: tuple[float, ...] | None = field(
        default=None, metadata={"help": "TTA scales (None: the mode's default)"}
    )
    rotations: tuple[int, ...] | None = field(
        default=None, metadata={"help": "TTA rotations in degrees, multiples of 90 (None: none)"}
    )
    interpolation: Interpolation = field(
        default="bicubic",
        metadata={"help": "bicubic | bilinear | nearest: TTA rescale of the image and back"},
    )
    pad: Padding = field(
        default="none",
        metadata={"help": "none | top_left: pad to a multiple of the window (GeoSeg UAVid)"},
    )

    def __post_init__(self) -> None:
        if self.patch_size is not None:
            object.__setattr__(self, "patch_size", _pair(self.patch_size, "patch_size"))
        if not isinstance(self.overlap, int | float) or not 0.0 <= self.overlap < 1.0:
            raise InvalidOptionError(
                f"overlap={self.overlap!r}; expected a fraction of the window in [0, 1)"
            )
        if (
            isinstance(self.batch_size, bool)
            or not isinstance(self.batch_size, int)
            or (self.batch_size < 1)
        ):
            raise InvalidOptionError(f"batch_size={self.batch_size!r}; expected an integer >= 1")
        _check_choice(self.blend, BLEND_MODES, "blend")
        _check_choice(self.tta, TTA_MODES, "tta")
        _check_choice(self.interpolation, INTERPOLATIONS, "interpolation")
        _check_choice(self.pad, PADDINGS, "pad")
        if self.scales is not None:
            scales = tuple(float(s) for s in self.scales)
            if not scales or any(not math.isfinite(s) or s <= 0 for s in scales):
                raise InvalidOptionError(
                    f"scales={list(self.scales)}; expected one or more positive factors"
                )
            object.__setattr__(self, "scales", scales)
        if self.rotations is not None:
            if any(isinstance(a, bool) or not isinstance(a, int) or a % 90 for a in self.rotations):
                raise InvalidOptionError(
                    f"rotations={list(self.rotations)}; expected multiples of 90 degrees"
                )
            object.__setattr__(self, "rotations", tuple(int(a) for a in self.rotations))
        if self.pad != "none" and (self.patch_size is None or self.overlap != 0.0):
            raise InvalidOptionError(
                f"pad={self.pad!r} tiles the padded image with windows that do not overlap: "
                f"it needs patch_size (got {self.patch_size}) and overlap 0 (got {self.overlap})"
            )

    @property
    def tta_scales(self) -> tuple[float, ...]:
        """The scales actually used: :attr:`scales` (or the mode's default), 1 first if added."""
        scales = self.scales if self.scales is not None else (D4_SCALES if self.tta == "d4" else ())
        return scales if 1.0 in scales else (1.0, *scales)

    @property
    def tta_rotations(self) -> tuple[int, ...]:
        """The rotations actually used: 0 first if added (ttach ``Rotate90``)."""
        angles = self.rotations or ()
        return angles if 0 in angles else (0, *angles)

    @property
    def tta_passes(self) -> tuple[TtaPass, ...]:
        """Every pass in ttach's order (``itertools.product`` of flips, angles, scales)."""
        hflip, vflip = _FLIPS[self.tta]
        return tuple(
            TtaPass(h, v, angle, scale)
            for h, v, angle, scale in itertools.product(
                (False, True) if hflip else (False,),
                (False, True) if vflip else (False,),
                self.tta_rotations,
                self.tta_scales,
            )
        )

    @property
    def passes(self) -> int:
        """Network passes per window."""
        return len(self.tta_passes)

    def to_dict(self) -> dict[str, object]:
        """Plain values for run records (scales and rotations resolved)."""
        values = asdict(self)
        values["patch_size"] = (
            None if self.patch_size is None else list(_pair(self.patch_size, "patch_size"))
        )
        values["scales"] = list(self.tta_scales)
        values["rotations"] = list(self.tta_rotations)
        values["passes"] = self.passes
        return values


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start offsets of windows along one axis; the last window ends at the border.

    Args:
        length: Image size along the axis.
        window: Window size (at most ``length``).
        stride: Step between window starts (at most ``window``, at least 1).

    Returns:
        ``0, stride, 2*stride, ...`` below ``length - window``, then ``length - window``.
    """
    if window >= length:
        return [0]
    return [*range(0, length - window, stride), length - window]


@dataclass(frozen=True)
class WindowGrid:
    """The windows of a sliding-window pass over a ``height x width`` image.

    Attributes:
        height: Image height.
        width: Image width.
        window: Window ``(height, width)``, clipped to the image.
        rows: Start rows of the window-rows, increasing.
        cols: Start columns of the windows of every row, increasing.
    """

    height: int
    width: int
    window: tuple[int, int]
    rows: tuple[int, ...]
    cols: tuple[int, ...]

    @classmethod
    def build(
        cls, height: int, width: int, patch_size: int | Sequence[int] | None, overlap: float
    ) -> "WindowGrid":
        """Lay out the windows (see the module docstring); None = one whole-image window."""
        if height < 1 or width < 1:
            raise DataFormatError(f"image of {height}×{width} px; expected at least 1×1")
        if patch_size is None:
            return cls(height, width, (height, width), (0,), (0,))
        ph, pw = _pair(patch_size, "patch_size")
        strides = (max(1, ph - round(overlap * ph)), max(1, pw - round(overlap * pw)))
        window = (min(ph, height), min(pw, width))
        rows = tuple(window_starts(height, window[0], strides[0]))
        cols = tuple(window_starts(width, window[1], strides[1]))
        return cls(height, width, window, rows, cols)

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)


def blend_weights(
    height: int,
    width: int,
    blend: Blend = "gaussian",
    device: torch.device | str | None = None,
) -> Tensor:
    """Per-pixel weights of one window.

    Args:
        height: Window height.
        width: Window width.
        blend: ``uniform`` (all ones) or ``gaussian`` (separable, sigma = side / 8, 1 at the
            centre; nnU-Net, Isensee et al. 2021).
        device: Device of the result.

    Returns:
        float32 weights [height, width], all positive.
    """
    _check_choice(blend, BLEND_MODES, "blend")
    if blend == "uniform":
        return torch.ones(height, width, device=device)

    def axis(size: int) -> Tensor:
        position = torch.arange(size, dtype=torch.float64, device=device) + 0.5
        sigma = _GAUSSIAN_SIGMA * size
        return torch.exp(-0.5 * ((position - size / 2.0) / sigma) ** 2)

    return (axis(height)[:, None] * axis(width)[None, :]).to(torch.float32)


def _main_logits(output: Tensor | tuple[Tensor, ...] | list[Tensor]) -> Tensor:
    """The main logits of a network output (training-mode tuples put them first)."""
    if isinstance(output, tuple | list):
        output = output[0]
    if not isinstance(output, Tensor) or output.ndim != 4:
        raise DataFormatError(
            "the network returned "
            f"{type(output).__name__ if not isinstance(output, Tensor) else tuple(output.shape)}"
            "; expected logits [B, num_classes, H, W]"
        )
    return output


def _resize(images: Tensor, size: tuple[int, int], mode: Interpolation) -> Tensor:
    align = None if mode == "nearest" else False  # ttach: align_corners=False in GeoSeg's d4
    return F.interpolate(images, size=size, mode=mode, align_corners=align)


def tta_logits(
    model: nn.Module | Forward,
    images: Tensor,
    tta: Tta = "none",
    scales: Sequence[float] | None = None,
    *,
    rotations: Sequence[int] | None = None,
    interpolation: Interpolation = "bicubic",
) -> Tensor:
    """Mean logits over the test-time augmentations of ``images`` (see the module docstring).

    Args:
        model: The network (in eval mode) or any callable images -> logits.
        images: Normalised images.
        tta: ``none``, ``hflip``, ``flip`` or ``d4``.
        scales: Scale factors; None = the mode's default (:data:`D4_SCALES` for ``d4``).
        rotations: Rotations in degrees (multiples of 90); None = none.
        interpolation: Resize mode of the rescaled passes, there and back.

    Returns:
        float32 logits averaged over the passes (the network's own output, unchanged, for a
        single pass).

    Shape:
        images: [N, C, H, W]; output: [N, K, H, W].
    """
    options = InferenceOptions(
        tta=tta,
        scales=None if scales is None else tuple(scales),
        rotations=None if rotations is None else tuple(rotations),
        interpolation=interpolation,
    )
    height, width = images.shape[-2:]
    total: Tensor | None = None
    for step in options.tta_passes:
        augmented = images.flip(3) if step.hflip else images
        augmented = augmented.flip(2) if step.vflip else augmented
        turns = (step.angle // 90) % 4
        augmented = torch.rot90(augmented, turns, (2, 3)) if turns else augmented
        if step.scale != 1.0:
            size = (int(augmented.shape[-2] * step.scale), int(augmented.shape[-1] * step.scale))
            augmented = _resize(augmented, size, options.interpolation)
        logits = _main_logits(model(augmented)).float()
        if step.scale != 1.0:
            back = (width, height) if turns % 2 else (height, width)
            logits = _resize(logits, back, options.interpolation)
        logits = torch.rot90(logits, -turns, (2, 3)) if turns else logits
        logits = logits.flip(2) if step.vflip else logits
        logits = logits.flip(3) if step.hflip else logits
        total = logits if total is None else total + logits
    assert total is not None  # at least one pass
    passes = options.passes
    return total if passes == 1 else total / passes


def stream_logits(
    forward: Forward,
    read_rows: Callable[[int, int], Tensor],
    grid: WindowGrid,
    *,
    batch_size: int = 1,
    blend: Blend = "gaussian",
    device: torch.device | str | None = None,
    on_window_row: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, Tensor]]:
    """Blended sliding-window logits, handed out band by band from the top.

    After window-row ``i`` is added, the rows above the start of window-row ``i + 1`` are
    final; they are normalised by the summed weights and yielded, and only the rows that later
    windows still touch are kept (at most one window height).

    Args:
        forward: images [N, C, h, w] -> float logits [N, K, h, w] (e.g. TTA around a model).
        read_rows: ``(start, stop) -> images [B, C, stop - start, width]``: the normalised rows
            of the image, on the model's device.
        grid: The windows (:meth:`WindowGrid.build`).
        batch_size: Windows per forward pass (each holding all ``B`` images).
        blend: ``gaussian`` or ``uniform``.
        device: Device of the accumulators (default: that of the first logits).
        on_window_row: Called with the number of windows after each window-row (progress).

    Yields:
        ``(start_row, logits)`` with logits [B, K, rows, width] (float32), covering the image
        top to bottom without gaps or overlaps.
    """
    _check_choice(blend, BLEND_MODES, "blend")
    wh, ww = grid.window
    if len(grid) == 1:  # one window: the network's logits as they are, no blending
        logits = forward(read_rows(0, grid.height)).float()
        if on_window_row is not None:
            on_window_row(1)
        yield 0, logits if device is None else logits.to(device)
        return
    acc: Tensor | None = None  # [B, K, wh, width]: image rows [row, row + wh)
    weight_acc = torch.zeros(0)  # [wh, width]
    weights = torch.zeros(0)  # [wh, ww]
    for index, row in enumerate(grid.rows):
        strip = read_rows(row, row + wh)
        if strip.ndim != 4 or tuple(strip.shape[-2:]) != (wh, grid.width):
            raise DataFormatError(
                f"read_rows({row}, {row + wh}) returned {tuple(strip.shape)}; expected "
                f"[B, C, {wh}, {grid.width}]"
            )
        batch = strip.shape[0]
        per_forward = max(1, batch_size // batch)
        for first in range(0, len(grid.cols), per_forward):
            cols = grid.cols[first : first + per_forward]
            crops = torch.cat([strip[..., c : c + ww] for c in cols], dim=0)
            logits = forward(crops).float()
            if acc is None:
                target = torch.device(device) if device is not None else logits.device
                acc = torch.zeros(batch, logits.shape[1], wh, grid.width, device=target)
                weight_acc = torch.zeros(wh, grid.width, device=target)
                weights = blend_weights(wh, ww, blend, device=target)
            logits = logits.to(acc.device)
            for k, c in enumerate(cols):
                part = logits[k * batch : (k + 1) * batch]
                # uniform weights are ones: adding the logits as they are keeps them exact
                acc[..., c : c + ww] += part if blend == "uniform" else part * weights
                weight_acc[:, c : c + ww] += weights
        if on_window_row is not None:
            on_window_row(len(grid.cols))
        assert acc is not None
        last = index + 1 == len(grid.rows)
        done = (grid.height if last else grid.rows[index + 1]) - row
        yield row, acc[:, :, :done] / weight_acc[:done]
        if not last:  # move the rows that later windows still touch to the top, in place
            keep = wh - done
            acc[:, :, :keep] = acc[:, :, done:].clone()
            acc[:, :, keep:] = 0
            weight_acc[:keep] = weight_acc[done:].clone()
            weight_acc[keep:] = 0


def sliding_window_logits(
    model: nn.Module | Forward,
    image: Tensor,
    patch_size: int | Sequence[int] | None,
    overlap: float = 0.0,
    batch_size: int = 1,
    blend: Blend = "gaussian",
    *,
    forward: Forward | None = None,
) -> Tensor:
    """Logits of a whole image from overlapping windows (see the module docstring).

    Args:
        model: The network (in eval mode) or any callable images -> logits.
        image: Normalised images.
        patch_size: Window ``n`` or ``(height, width)``; None = one pass on the whole image.
        overlap: Overlap as a fraction of the window, in ``[0, 1)``.
        batch_size: Windows per forward pass.
        blend: ``gaussian`` or ``uniform`` weights for overlapping windows.
        forward: Replaces ``model`` as the window call (e.g. TTA around it).

    Returns:
        float32 logits.

    Shape:
        image: [B, C, H, W]; output: [B, K, H, W].
    """
    options = InferenceOptions(
        patch_size=None if patch_size is None else _pair(patch_size, "patch_size"),
        overlap=overlap,
        batch_size=batch_size,
        blend=blend,
    )
    if image.ndim != 4:
        raise DataFormatError(f"image has shape {tuple(image.shape)}; expected [B, C, H, W]")
    call: Forward = forward if forward is not None else (lambda x: _main_logits(model(x)).float())
    grid = WindowGrid.build(image.shape[-2], image.shape[-1], options.patch_size, overlap)
    bands = stream_logits(
        call,
        lambda start, stop: image[..., start:stop, :],
        grid,
        batch_size=options.batch_size,
        blend=options.blend,
    )
    parts = [logits for _, logits in bands]
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)


def pad_top_left(image: Tensor, window: tuple[int, int], value: Sequence[float]) -> Tensor:
    """Pad ``image`` at the top/left to a multiple of ``window`` with a per-band ``value``.

    GeoSeg's ``PadIfNeeded(min_height, min_width, position='bottom_right')`` of a frame before
    tiling (inference_uavid.py:97-109 @9453fe4): the image keeps its bottom-right corner.

    Shape:
        image: [B, C, H, W]; output: [B, C, ceil(H / h) h, ceil(W / w) w].
    """
    height, width = image.shape[-2:]
    padded_h = -(-height // window[0]) * window[0]
    padded_w = -(-width // window[1]) * window[1]
    if (padded_h, padded_w) == (height, width):
        return image
    fill = torch.as_tensor(value, dtype=image.dtype, device=image.device)
    if fill.numel() not in (1, image.shape[1]):
        raise InvalidOptionError(
            f"pad value has {fill.numel()} bands for an image of {image.shape[1]}"
        )
    out = fill.reshape(1, -1, 1, 1).expand(image.shape[0], image.shape[1], padded_h, padded_w)
    out = out.clone()
    out[..., padded_h - height :, padded_w - width :] = image
    return out


@torch.inference_mode()
def predict_logits(
    model: nn.Module | Forward,
    image: Tensor,
    tta: Tta = "none",
    scales: Sequence[float] | None = None,
    patch_size: int | Sequence[int] | None = None,
    overlap: float = 0.0,
    batch_size: int = 1,
    blend: Blend = "gaussian",
    *,
    rotations: Sequence[int] | None = None,
    interpolation: Interpolation = "bicubic",
    pad: Padding = "none",
    pad_value: Sequence[float] | float = 0.0,
) -> Tensor:
    """Logits of images with sliding windows and test-time augmentation of every window.

    Each window goes through the TTA passes (as GeoSeg's TTA wrapper around the network sees
    each tile), and the averaged window logits are blended.

    Args:
        model: The network in eval mode (or a callable images -> logits).
        image: Normalised images on the model's device.
        tta: ``none``, ``hflip``, ``flip`` (GeoSeg ``lr``) or ``d4`` (flips x scales).
        scales: TTA scales; None = the mode's default.
        patch_size: Window size; None = whole images.
        overlap: Window overlap as a fraction of the window, in ``[0, 1)``.
        batch_size: Windows per forward pass.
        blend: ``gaussian`` or ``uniform``.
        rotations: TTA rotations in degrees; None = none.
        interpolation: Resize mode of TTA rescales.
        pad: ``none`` or ``top_left`` (GeoSeg's UAVid tiling, see the module docstring).
        pad_value: The padding, per band, in normalised units (a black pixel).

    Returns:
        float32 logits.

    Shape:
        image: [B, C, H, W]; output: [B, K, H, W].
    """
    # Check the TTA and padding choices before the first window.
    options = InferenceOptions(
        patch_size=None if patch_size is None else _pair(patch_size, "patch_size"),
        overlap=overlap,
        tta=tta,
        scales=None if scales is None else tuple(scales),
        rotations=None if rotations is None else tuple(rotations),
        interpolation=interpolation,
        pad=pad,
    )

    def forward(x: Tensor) -> Tensor:
        return tta_logits(
            model,
            x,
            tta,
            options.tta_scales,
            rotations=options.tta_rotations,
            interpolation=interpolation,
        )

    if options.pad == "none":
        return sliding_window_logits(
            model, image, patch_size, overlap, batch_size, blend, forward=forward
        )
    window = _pair(cast(int | tuple[int, int], options.patch_size), "patch_size")
    values = (pad_value,) if isinstance(pad_value, int | float) else tuple(pad_value)
    padded = pad_top_left(image, window, values)
    logits = sliding_window_logits(
        model, padded, window, 0.0, batch_size, "uniform", forward=forward
    )
    return logits[..., -image.shape[-2] :, -image.shape[-1] :]
