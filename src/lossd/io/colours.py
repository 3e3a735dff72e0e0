"""Colour maps: colour masks and image/mask figures (plots, W&B images, overlays).

Masks hold class indices ``0..C-1`` and the ignore value 255 (docs/design.md, Conventions); a
palette is one RGB triple per class, taken from the dataset module (``lossd/data/<name>.py``).
Ignored pixels are drawn black in colour masks and left untouched in overlays.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from lossd.conventions import IGNORE_INDEX
from lossd.errors import DataFormatError, InvalidOptionError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Palette", "colorize", "overlay", "plot_segmentation"]

Palette = Sequence[tuple[int, int, int]]


def _palette_lut(palette: Palette) -> np.ndarray:
    """Return a 256×3 uint8 lookup table: palette colours, then black (ignore and unused)."""
    colours = np.asarray(palette, dtype=np.int64)
    if colours.ndim != 2 or colours.shape[1] != 3 or not 1 <= len(colours) <= IGNORE_INDEX:
        raise InvalidOptionError(
            f"palette has shape {colours.shape}; expected 1..{IGNORE_INDEX} RGB triples"
        )
    if colours.min() < 0 or colours.max() > 255:
        raise InvalidOptionError("palette colours must lie in 0..255")
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(colours)] = colours
    return lut


def _check_mask(mask: np.ndarray, num_classes: int, name: str = "mask") -> np.ndarray:
    """Return ``mask`` as an int64 array after checking it is 2-D with values in the palette."""
    array = np.asarray(mask)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
        raise DataFormatError(
            f"{name} has shape {array.shape} and dtype {array.dtype}; expected an H×W integer "
            "array of class indices"
        )
    array = array.astype(np.int64, copy=False)
    bad = np.unique(array[((array < 0) | (array >= num_classes)) & (array != IGNORE_INDEX)])
    if bad.size:
        raise DataFormatError(
            f"{name} holds values {bad[:10].tolist()} outside 0..{num_classes - 1} and "
            f"{IGNORE_INDEX} (ignore)"
        )
    return array


def colorize(mask: np.ndarray, palette: Palette) -> np.ndarray:
    """Map class indices to palette colours; the ignore value 255 becomes black.

    Args:
        mask: ``H×W`` integer array of class indices (255 = ignore).
        palette: One RGB triple (0..255) per class, in index order.

    Returns:
        ``H×W×3`` uint8 RGB image.

    Raises:
        DataFormatError: If ``mask`` is not 2-D integer or holds a value with no colour.
        InvalidOptionError: If ``palette`` is not a list of RGB triples.
    """
    lut = _palette_lut(palette)
    array = _check_mask(mask, len(palette))
    colours: np.ndarray = lut[array]
    return colours


def overlay(
    image: np.ndarray, mask: np.ndarray, palette: Palette, alpha: float = 0.5
) -> np.ndarray:
    """Blend the colour mask over an RGB image; ignored pixels keep the image colour.

    Args:
        image: ``H×W×3`` uint8 RGB image.
        mask: ``H×W`` integer array of class indices (255 = ignore).
        palette: One RGB triple per class.
        alpha: Weight of the colour mask, in ``[0, 1]`` (0 = image only, 1 = colours only).

    Returns:
        ``H×W×3`` uint8 RGB image.

    Raises:
        DataFormatError: If the image is not ``H×W×3`` uint8 of the mask's size.
        InvalidOptionError: If ``alpha`` is outside ``[0, 1]``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise InvalidOptionError(f"alpha={alpha!r}; expected a number in [0, 1]")
    image = np.asarray(image)
    colours = colorize(mask, palette)
    if image.dtype != np.uint8 or image.shape != colours.shape:
        raise DataFormatError(
            f"image has shape {image.shape} and dtype {image.dtype}; expected uint8 "
            f"{colours.shape} to match the mask"
        )
    blend = (1.0 - alpha) * image.astype(np.float32) + alpha * colours.astype(np.float32)
    out = np.clip(np.rint(blend), 0, 255).astype(np.uint8)
    ignored = np.asarray(mask) == IGNORE_INDEX
    out[ignored] = image[ignored]
    return out


def plot_segmentation(
    image: np.ndarray,
    mask: np.ndarray,
    classes: Sequence[str],
    palette: Palette,
    prediction: np.ndarray | None = None,
) -> "Figure":
    """Draw an image, its colour mask and optionally a prediction side by side, with a legend.

    The figure is built without pyplot (no display, no global figure list), so it can be
    saved with ``fig.savefig`` from any process or shown in a notebook.

    Args:
        image: ``H×W×3`` uint8 RGB image.
        mask: ``H×W`` class indices (255 = ignore, drawn black).
        classes: Class names in index order (legend).
        palette: One RGB triple per class.
        prediction: Optional ``H×W`` predicted class indices, drawn as a third panel.

    Returns:
        The matplotlib Figure with one axis per panel.

    Raises:
        DataFormatError: If an array has the wrong shape, dtype or values.
        InvalidOptionError: If ``classes`` and ``palette`` differ in length.
    """
    from matplotlib.figure import Figure  # imported here: matplotlib is slow to import
    from matplotlib.patches import Patch

    if len(classes) != len(palette):
        raise InvalidOptionError(
            f"{len(classes)} class names but {len(palette)} palette colours; expected equal"
        )
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise DataFormatError(
            f"image has shape {image.shape} and dtype {image.dtype}; expected H×W×3 uint8"
        )
    panels = [("image", image), ("mask", colorize(mask, palette))]
    if prediction is not None:
        panels.append(("prediction", colorize(prediction, palette)))
    fig = Figure(figsize=(3.2 * len(panels), 3.8), layout="constrained")
    for ax, (title, picture) in zip(
        fig.subplots(1, len(panels), squeeze=False)[0], panels, strict=True
    ):
        ax.imshow(picture, interpolation="nearest")
        ax.set_title(title)
        ax.set_axis_off()
    handles = [
        Patch(facecolor=(r / 255.0, g / 255.0, b / 255.0), edgecolor="0.3", label=name)
        for name, (r, g, b) in zip(classes, palette, strict=True)
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=8)
    return fig
