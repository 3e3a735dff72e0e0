"""Sliding windows, blending and TTA against naive references (lossd.engine.inference)."""

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from lossd.engine.inference import (
    InferenceOptions,
    WindowGrid,
    blend_weights,
    pad_top_left,
    predict_logits,
    sliding_window_logits,
    stream_logits,
    tta_logits,
    window_starts,
)
from lossd.errors import InvalidOptionError


class Pointwise(nn.Module):
    """A 1×1 'convolution' written elementwise: each output pixel depends on its pixel only.

    Elementwise multiply-adds (no GEMM) give bit-identical values whatever the image size, so
    sliding-window logits can be compared with whole-image logits exactly. It is also
    equivariant to flips.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 5) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.weight = nn.Parameter(torch.randn(num_classes, in_channels, generator=generator))
        self.bias = nn.Parameter(torch.randn(num_classes, generator=generator))

    def forward(self, x):
        out = self.bias[None, :, None, None].expand(x.shape[0], -1, *x.shape[-2:]).clone()
        for c in range(x.shape[1]):
            out = out + self.weight[None, :, c, None, None] * x[:, c : c + 1]
        return out


class WindowMean(nn.Module):
    """Logits constant over each window: the window's mean intensity times (1, 2, ..., K)."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.register_buffer("factors", torch.arange(1, num_classes + 1, dtype=torch.float32))

    def forward(self, x):
        means = x.mean(dim=(1, 2, 3))
        out = means[:, None, None, None] * self.factors[None, :, None, None]
        return out.expand(-1, -1, *x.shape[-2:]).clone()


def _naive_gaussian(size: int) -> np.ndarray:
    sigma = size / 8.0
    centre = size / 2.0
    return np.array([math.exp(-0.5 * ((i + 0.5 - centre) / sigma) ** 2) for i in range(size)])


@pytest.mark.parametrize(("length", "window", "stride"), [(70, 16, 8), (64, 16, 16), (10, 4, 3)])
def test_window_starts_cover_the_axis_and_end_at_the_border(length, window, stride) -> None:
    starts = window_starts(length, window, stride)
    covered = np.zeros(length, int)
    for s in starts:
        covered[s : s + window] += 1
    assert covered.min() >= 1
    assert starts[0] == 0 and starts[-1] == length - window
    assert all(0 < b - a <= stride for a, b in itertools.pairwise(starts))
    assert window_starts(5, 8, 4) == [0]


@pytest.mark.parametrize(
    ("patch", "overlap", "blend"),
    [
        (16, 0.0, "uniform"),
        ((24, 20), 0.0, "uniform"),
        (None, 0.0, "gaussian"),
        (200, 0.5, "gaussian"),
    ],
)
def test_sliding_window_equals_whole_image_exactly(patch, overlap, blend) -> None:
    model = Pointwise()
    image = torch.randn(2, 3, 70, 53)
    whole = model(image)
    out = sliding_window_logits(model, image, patch, overlap, batch_size=3, blend=blend)
    assert out.shape == whole.shape
    assert torch.equal(out, whole)


@pytest.mark.parametrize(
    ("patch", "overlap", "blend", "batch_size"),
    [(16, 0.5, "uniform", 1), (16, 0.25, "gaussian", 4), ((32, 20), 0.3, "gaussian", 7)],
)
def test_overlapping_windows_blend_back_to_the_pointwise_logits(
    patch, overlap, blend, batch_size
) -> None:
    model = Pointwise()
    image = torch.randn(2, 3, 70, 53)
    out = sliding_window_logits(model, image, patch, overlap, batch_size, blend)
    torch.testing.assert_close(out, model(image), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("blend", ["gaussian", "uniform"])
def test_blended_window_constants_match_a_naive_weighted_mean(blend) -> None:
    height, width, patch, overlap = 45, 38, (20, 16), 0.4
    image = torch.rand(1, 1, height, width)
    out = sliding_window_logits(WindowMean(), image, patch, overlap, batch_size=2, blend=blend)
    # Independent reference: loop over the windows, weights from the formula, numpy sums.
    grid = WindowGrid.build(height, width, patch, overlap)
    wh, ww = grid.window
    if blend == "gaussian":
        weight = np.outer(_naive_gaussian(wh), _naive_gaussian(ww))
    else:
        weight = np.ones((wh, ww))
    total = np.zeros((3, height, width))
    norm = np.zeros((height, width))
    array = image[0, 0].double().numpy()
    for r in grid.rows:
        for c in grid.cols:
            mean = array[r : r + wh, c : c + ww].mean()
            for k in range(3):
                total[k, r : r + wh, c : c + ww] += weight * mean * (k + 1)
            norm[r : r + wh, c : c + ww] += weight
    np.testing.assert_allclose(out[0].numpy(), total / norm, rtol=1e-5, atol=1e-6)


def test_blending_weights_sum_to_one_at_every_pixel() -> None:
    class Ones(nn.Module):
        def forward(self, x):
            return torch.ones(x.shape[0], 2, *x.shape[-2:])

    image = torch.zeros(1, 3, 77, 61)
    for blend in ("gaussian", "uniform"):
        out = sliding_window_logits(Ones(), image, 24, 0.5, batch_size=5, blend=blend)
        torch.testing.assert_close(out, torch.ones_like(out), rtol=1e-6, atol=1e-6)


def test_gaussian_window_is_positive_peaks_in_the_centre_and_is_separable() -> None:
    weights = blend_weights(32, 24, "gaussian").double().numpy()
    assert weights.min() > 0
    assert np.unravel_index(weights.argmax(), weights.shape) in {
        (15, 11),
        (15, 12),
        (16, 11),
        (16, 12),
    }
    np.testing.assert_allclose(
        weights, np.outer(_naive_gaussian(32), _naive_gaussian(24)), rtol=1e-6
    )
    assert torch.equal(blend_weights(4, 5, "uniform"), torch.ones(4, 5))


def test_stream_hands_out_each_row_once_and_keeps_at_most_a_window_of_rows() -> None:
    image = torch.randn(1, 3, 100, 40)
    grid = WindowGrid.build(100, 40, 32, 0.25)
    reads = []

    def read_rows(a, b):
        reads.append((a, b))
        return image[..., a:b, :]

    bands = list(stream_logits(Pointwise(), read_rows, grid, batch_size=2, blend="gaussian"))
    starts = [top for top, _ in bands]
    heights = [logits.shape[2] for _, logits in bands]
    assert starts == [0, *np.cumsum(heights)[:-1].tolist()]
    assert sum(heights) == 100 and max(heights) <= 32
    assert reads == [(r, r + 32) for r in grid.rows]


def test_tta_flip_of_a_flip_equivariant_model_equals_no_tta() -> None:
    model = Pointwise()
    image = torch.randn(2, 3, 33, 40)
    plain = predict_logits(model, image)
    for tta in ("hflip", "flip"):
        torch.testing.assert_close(predict_logits(model, image, tta=tta), plain)


def test_tta_is_the_mean_of_deflipped_passes() -> None:
    torch.manual_seed(0)
    model = nn.Conv2d(3, 4, kernel_size=3, padding=1)  # not flip-equivariant
    image = torch.randn(1, 3, 20, 24)
    with torch.no_grad():
        passes = [
            model(image),
            model(image.flip(3)).flip(3),
            model(image.flip(2)).flip(2),
            model(image.flip(2).flip(3)).flip(2).flip(3),
        ]
        expected = torch.stack(passes).mean(0)
        assert not torch.allclose(passes[0], expected)
        torch.testing.assert_close(tta_logits(model, image, "flip"), expected)


def test_d4_runs_flips_times_scales_and_resizes_back() -> None:
    calls = []

    class Recorder(nn.Module):
        def forward(self, x):
            calls.append(tuple(x.shape[-2:]))
            return torch.full((x.shape[0], 2, *x.shape[-2:]), 3.0)

    image = torch.ones(1, 3, 40, 40)  # constant: every rescaled pass gives the same logits
    out = tta_logits(Recorder(), image, "d4")
    assert out.shape == (1, 2, 40, 40)
    torch.testing.assert_close(out, torch.full_like(out, 3.0))
    assert sorted(set(calls)) == [(30, 30), (40, 40), (50, 50), (60, 60)]
    assert len(calls) == 16 == InferenceOptions(tta="d4").passes
    assert InferenceOptions(tta="hflip", scales=(0.75, 1.0)).passes == 4


def test_sliding_window_with_tta_per_window_and_batches() -> None:
    model = Pointwise()
    image = torch.randn(3, 3, 50, 45)
    single = predict_logits(model, image, tta="flip", patch_size=20, overlap=0.2, batch_size=1)
    batched = predict_logits(model, image, tta="flip", patch_size=20, overlap=0.2, batch_size=9)
    torch.testing.assert_close(batched, single)
    torch.testing.assert_close(single, model(image), rtol=1e-6, atol=1e-5)


def test_rescaled_tta_of_a_smooth_image_stays_close() -> None:
    model = Pointwise()
    ramp = torch.linspace(0, 1, 64)
    image = (ramp[None, :] + ramp[:, None]).expand(1, 3, 64, 64).contiguous()
    d4 = tta_logits(model, image, "d4")
    interior = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    torch.testing.assert_close(d4[interior], model(image)[interior], rtol=0, atol=5e-3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"overlap": 1.0}, "overlap"),
        ({"overlap": -0.1}, "overlap"),
        ({"tta": "d8"}, "tta"),
        ({"blend": "cosine"}, "blend"),
        ({"patch_size": 0}, "patch_size"),
        ({"patch_size": (16, 16, 16)}, "patch_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"scales": ()}, "scales"),
        ({"scales": (1.0, -2.0)}, "scales"),
    ],
)
def test_invalid_options_name_the_option(kwargs, match) -> None:
    with pytest.raises(InvalidOptionError, match=match):
        InferenceOptions(**kwargs)


def test_options_record_the_resolved_scales() -> None:
    assert InferenceOptions(tta="d4").to_dict()["scales"] == [0.75, 1.0, 1.25, 1.5]
    record = InferenceOptions(patch_size=512, overlap=0.25, tta="flip").to_dict()
    assert record["patch_size"] == [512, 512] and record["scales"] == [1.0]
    assert record["passes"] == 4


def test_padded_tiling_needs_whole_windows_and_pads_the_top_left() -> None:
    with pytest.raises(InvalidOptionError, match="needs patch_size"):
        InferenceOptions(pad="top_left")
    with pytest.raises(InvalidOptionError, match="overlap 0"):
        InferenceOptions(pad="top_left", patch_size=8, overlap=0.25)
    with pytest.raises(InvalidOptionError, match="pad='bottom'"):
        InferenceOptions(pad="bottom", patch_size=8)  # type: ignore[arg-type]
    image = torch.arange(2 * 5 * 7, dtype=torch.float32).view(1, 2, 5, 7)
    padded = pad_top_left(image, (4, 3), (-1.0, -2.0))
    # by hand: 5 -> 8 rows (3 on top), 7 -> 9 columns (2 on the left), per-band fill
    assert padded.shape == (1, 2, 8, 9)
    assert torch.equal(padded[..., 3:, 2:], image)
    assert (padded[0, 0, :3] == -1).all() and (padded[0, 1, :, :2] == -2).all()

    # each pixel of the padded tiling gets its own window's logits, cropped back bottom-right
    def model(x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] + x.shape[-1] * 100  # depends on the window it sees

    out = predict_logits(model, image, patch_size=(4, 3), pad="top_left", pad_value=(-1.0, -2.0))
    assert torch.equal(out, image[:, :1] + 300)


def test_rotation_passes_are_undone_and_counted_as_ttach_does() -> None:
    """ttach Rotate90(angles=[90]) adds the identity 0 and undoes each pass: a pointwise
    network gives its own logits back through h x v x {0, 90} (8 passes, non-square image)."""
    torch.manual_seed(0)
    pointwise = nn.Conv2d(3, 4, 1)
    image = torch.randn(2, 3, 12, 20)
    with torch.no_grad():
        out = tta_logits(pointwise, image, "flip", rotations=[90])
        torch.testing.assert_close(out, pointwise(image), rtol=0, atol=1e-6)
    options = InferenceOptions(tta="d4", rotations=(90,), scales=(0.5, 0.75, 1.0, 1.25, 1.5))
    assert options.passes == 2 * 2 * 2 * 5  # GeoSeg vaihingen_test.py 'd4': 40 passes
    first = options.tta_passes[:3]
    assert [(p.hflip, p.vflip, p.angle, p.scale) for p in first] == [
        (False, False, 0, 0.5), (False, False, 0, 0.75), (False, False, 0, 1.0)
    ]  # fmt: skip  # ttach's itertools.product order: the last transform varies fastest
    with pytest.raises(InvalidOptionError, match="multiples of 90"):
        InferenceOptions(rotations=(45,))
