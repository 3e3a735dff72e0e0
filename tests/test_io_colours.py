import numpy as np
import pytest
from matplotlib.figure import Figure

from lossd.data import potsdam
from lossd.errors import DataFormatError, InvalidOptionError
from lossd.io.colours import colorize, overlay, plot_segmentation

PALETTE = potsdam.PALETTE


@pytest.fixture
def mask() -> np.ndarray:
    rng = np.random.default_rng(0)
    out = rng.integers(0, len(PALETTE), (12, 10)).astype(np.uint8)
    out[0, :3] = 255
    return out


def test_colorize_maps_each_index_to_its_palette_colour(mask):
    colours = colorize(mask, PALETTE)
    assert colours.shape == (*mask.shape, 3)
    assert colours.dtype == np.uint8
    for index, colour in enumerate(PALETTE):
        assert (colours[mask == index] == colour).all()
    assert (colours[0, :3] == 0).all()  # ignore -> black


def test_colorize_round_trip_recovers_the_mask(mask):
    colours = colorize(mask, PALETTE)
    recovered = np.full(mask.shape, 255, np.uint8)
    for index, colour in enumerate(PALETTE):
        recovered[(colours == colour).all(axis=-1)] = index
    assert np.array_equal(recovered, mask)


def test_colorize_accepts_wider_integer_types(mask):
    assert np.array_equal(colorize(mask.astype(np.int64), PALETTE), colorize(mask, PALETTE))


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.array([[0, 6]], np.uint8), r"values \[6\] outside 0\.\.5"),
        (np.array([[0, -1]], np.int16), r"values \[-1\]"),
        (np.zeros((2, 2, 3), np.uint8), "expected an H×W integer"),
        (np.zeros((2, 2), np.float32), "expected an H×W integer"),
    ],
)
def test_colorize_rejects_bad_masks(bad, match):
    with pytest.raises(DataFormatError, match=match):
        colorize(bad, PALETTE)


def test_colorize_rejects_a_bad_palette(mask):
    with pytest.raises(InvalidOptionError, match="RGB triples"):
        colorize(mask, [(0, 0)])
    with pytest.raises(InvalidOptionError, match=r"0\.\.255"):
        colorize(mask, [(0, 0, 300)])


def test_overlay_blends_and_keeps_ignored_pixels(mask):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (*mask.shape, 3)).astype(np.uint8)
    colours = colorize(mask, PALETTE)
    valid = mask != 255
    assert np.array_equal(overlay(image, mask, PALETTE, alpha=0.0), image)
    full = overlay(image, mask, PALETTE, alpha=1.0)
    assert np.array_equal(full[valid], colours[valid])
    assert np.array_equal(full[~valid], image[~valid])
    half = overlay(image, mask, PALETTE, alpha=0.5).astype(int)
    expected = (image.astype(int) + colours.astype(int)) / 2
    assert np.abs(half[valid] - expected[valid]).max() <= 0.5
    assert np.array_equal(half[~valid], image[~valid])


def test_overlay_validates_arguments(mask):
    image = np.zeros((*mask.shape, 3), np.uint8)
    with pytest.raises(InvalidOptionError, match=r"alpha=1\.5"):
        overlay(image, mask, PALETTE, alpha=1.5)
    with pytest.raises(DataFormatError, match="to match the mask"):
        overlay(image[:-1], mask, PALETTE)
    with pytest.raises(DataFormatError, match="to match the mask"):
        overlay(image.astype(np.float32), mask, PALETTE)


def test_plot_segmentation_has_one_axis_per_panel(mask):
    image = np.zeros((*mask.shape, 3), np.uint8)
    fig = plot_segmentation(image, mask, potsdam.CLASSES, PALETTE)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    fig = plot_segmentation(image, mask, potsdam.CLASSES, PALETTE, prediction=mask)
    assert [ax.get_title() for ax in fig.axes] == ["image", "mask", "prediction"]
    with pytest.raises(InvalidOptionError, match="6 class names but 2 palette colours"):
        plot_segmentation(image, mask, potsdam.CLASSES, PALETTE[:2])
