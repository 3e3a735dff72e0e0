"""Sliding-window inference with blended logits and test-time augmentation (TTA), pure torch.

The recipes of the field (docs/reference.md, "Training recipes"; GeoSeg
github.com/WangLibo1995/GeoSeg ``loveda_test.py``, ``potsdam_test.py``, ``inference_uavid.py``,
which wrap the network in ``ttach.SegmentationTTAWrapper``):

- ``tta="flip"`` is GeoSeg's ``lr``: ``ttach.Compose([HorizontalFlip(), VerticalFlip()])``, the
  product of both flips, i.e. 4 passes (none, h, v, h+v); the de-flipped logits are averaged.
- ``tta="d4"`` is GeoSeg's ``d4`` of ``potsdam_test.py`` (and of the Lossd test scripts for
  Potsdam): the 4 flips times the scales {0.75, 1, 1.25, 1.5}, 16 passes; images are resized
  bicubically (``align_corners=False``, as GeoSeg's ``tta.Scale``). GeoSeg's
  ``loveda_test.py`` uses the horizontal flip only: ``tta="hflip"`` with
  ``scales=(0.75, 1, 1.25, 1.5)``. Despite the name, neither is the dihedral group (no
  rotation).
- Departure from ttach: logits of a rescaled pass are resized back to the input size
  bilinearly to the exact input size (ttach rescales by ``1/scale``, which can miss the size
  by a pixel); the mean is taken over logits, before softmax, as ttach's default ``mean``
  merge does.

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

Windows are processed one window-row at a time, and finished rows are handed out as soon as no
later window touches them (:func:`stream_logits`), so a raster of any height is predicted with
at most one window-row of logits in memory; :func:`sliding_window_logits` is the same stream
collected into one tensor, so windowed and in-memory prediction are the same computation.
"""

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossd.errors import DataFormatError, InvalidOptionError

__all__ = [
    "BLEND_MODES",
    "D4_SCALES",
    "TTA_MODES",
    "Blend",
    "InferenceOptions",
    "Tta",
    "WindowGrid",
    "blend_weights",
    "predict_logits",
    "sliding_window_logits",
    "stream_logits",
    "tta_logits",
    "window_starts",
]

Tta = Literal["none", "hflip", "flip", "d4"]
Blend = Literal["gaussian", "uniform"]

TTA_MODES: tuple[str, ...] = ("none", "hflip", "flip", "d4")
BLEND_MODES: tuple[str, ...] = ("gaussian", "uniform")

D4_SCALES: tuple[float, ...] = (0.75, 1.0, 1.25, 1.5)
"""Scales of GeoSeg's ``d4`` TTA (``potsdam_test.py``, ``loveda_test.py``: ``tta.Scale``)."""

_FLIPS: dict[str, tuple[tuple[int, ...], ...]] = {
    "none": ((),),
    "hflip": ((), (3,)),
    "flip": ((), (3,), (2,), (2, 3)),
    "d4": ((), (3,), (2,), (2, 3)),
}
"""Flipped dimensions of each pass ([B, C, H, W]: 3 = horizontal, 2 = vertical)."""

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
class InferenceOptions:
    """How a network is applied to an image: tiling, blending and test-time augmentation.

    Args:
        patch_size: Window size ``n`` or ``(height, width)``; None = the whole image at once.
        overlap: Overlap of neighbouring windows as a fraction of the window, in ``[0, 1)``.
        batch_size: Windows per forward pass (times the images of a batch).
        blend: ``gaussian`` or ``uniform`` blending of overlapping windows.
        tta: ``none``, ``hflip``, ``flip`` (GeoSeg ``lr``) or ``d4`` (flips x scales).
        scales: TTA scales; None = the mode's default (:data:`D4_SCALES` for ``d4``, else 1).

    Raises:
        InvalidOptionError: If a value is out of range or not one of the choices.
    """

    patch_size: int | tuple[int, int] | None = None
    overlap: float = 0.0
    batch_size: int = 1
    blend: Blend = "gaussian"
    tta: Tta = "none"
    scales: tuple[float, ...] | None = field(default=None)

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
        if self.scales is not None:
            scales = tuple(float(s) for s in self.scales)
            if not scales or any(not math.isfinite(s) or s <= 0 for s in scales):
                raise InvalidOptionError(
                    f"scales={list(self.scales)}; expected one or more positive factors"
                )
            object.__setattr__(self, "scales", scales)

    @property
    def tta_scales(self) -> tuple[float, ...]:
        """The scales actually used: :attr:`scales`, or the TTA mode's default."""
        if self.scales is not None:
            return self.scales
        return D4_SCALES if self.tta == "d4" else (1.0,)

    @property
    def passes(self) -> int:
        """Network passes per window (flips x scales)."""
        return len(_FLIPS[self.tta]) * len(self.tta_scales)

    def to_dict(self) -> dict[str, object]:
        """Plain values for run records (scales resolved)."""
        values = asdict(self)
        values["patch_size"] = (
            None if self.patch_size is None else list(_pair(self.patch_size, "patch_size"))
        )
        values["scales"] = list(self.tta_scales)
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


def tta_logits(
    model: nn.Module | Forward,
    images: Tensor,
    tta: Tta = "none",
    scales: Sequence[float] | None = None,
) -> Tensor:
    """Mean logits over the test-time augmentations of ``images`` (see the module docstring).

    Args:
        model: The network (in eval mode) or any callable images -> logits.
        images: Normalised images.
        tta: ``none``, ``hflip``, ``flip`` or ``d4``.
        scales: Scale factors; None = the mode's default (:data:`D4_SCALES` for ``d4``).

    Returns:
        float32 logits averaged over ``flips x scales`` passes (the network's own output,
        unchanged, for a single pass).

    Shape:
        images: [N, C, H, W]; output: [N, K, H, W].
    """
    options = InferenceOptions(tta=tta, scales=None if scales is None else tuple(scales))
    height, width = images.shape[-2:]
    total: Tensor | None = None
    for scale in options.tta_scales:
        scaled = images
        if scale != 1.0:
            size = (max(1, round(height * scale)), max(1, round(width * scale)))
            scaled = F.interpolate(images, size=size, mode="bicubic", align_corners=False)
        for dims in _FLIPS[options.tta]:
            flipped = scaled.flip(dims) if dims else scaled
            logits = _main_logits(model(flipped)).float()
            if dims:
                logits = logits.flip(dims)
            if scale != 1.0:
                logits = F.interpolate(
                    logits, size=(height, width), mode="bilinear", align_corners=False
                )
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

    Returns:
        float32 logits.

    Shape:
        image: [B, C, H, W]; output: [B, K, H, W].
    """
    # Check the TTA choice before the first window (sliding_window_logits checks the rest).
    scales = InferenceOptions(tta=tta, scales=None if scales is None else tuple(scales)).tta_scales
    return sliding_window_logits(
        model,
        image,
        patch_size,
        overlap,
        batch_size,
        blend,
        forward=lambda x: tta_logits(model, x, tta, scales),
    )
