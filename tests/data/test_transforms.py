"""Training transforms: GeoSeg's SmartCropV1 and RandomScale interpolation, the default pipeline.

The references below are written out from GeoSeg's geoseg/datasets/transform.py (@9453fe4)
with plain NumPy/Pillow calls: SmartCropV1 L201-223 with RandomCrop L21-90 (``nopad=False``),
RandomScale L162-176.
"""

import random

import albumentations as A
import cv2
import numpy as np
import pytest
from PIL import Image

from lossd.data.transforms import (
    SMART_CROP_DRAWS,
    PillowScale,
    SmartCrop,
    train_transform,
)
from lossd.errors import InvalidOptionError

PAD = -1  # marks padding in the reference, so it can be told apart from an ignored pixel


def geoseg_smart_crop(
    image: np.ndarray,
    mask: np.ndarray,
    size: int,
    seed: int,
    max_ratio: float = 0.75,
    ignore: int = 255,
    count_ignore: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """SmartCropV1 by hand, replaying ``random.Random(seed)``; also returns every draw."""
    rng = random.Random(seed)
    height, width = mask.shape
    if (height, width) == (size, size):
        return image, mask, []
    pad_h = (size - height) // 2 + 1 if size > height else 0
    pad_w = (size - width) // 2 + 1 if size > width else 0
    img = np.pad(image, ((pad_h, pad_h), (pad_w, pad_w), (0, 0)), constant_values=0)
    msk = np.pad(mask.astype(np.int16), ((pad_h, pad_h), (pad_w, pad_w)), constant_values=PAD)
    draws = []
    while True:
        x1 = 0 if msk.shape[1] == size else rng.randint(0, msk.shape[1] - size)
        y1 = 0 if msk.shape[0] == size else rng.randint(0, msk.shape[0] - size)
        draws.append((y1 - pad_h, x1 - pad_w))
        crop = msk[y1 : y1 + size, x1 : x1 + size]
        labels, counts = np.unique(crop, return_counts=True)
        keep = labels != PAD
        if not count_ignore:
            keep &= labels != ignore
        counts = counts[keep]
        if len(counts) > 1 and counts.max() / counts.sum() < max_ratio:
            break
        if len(draws) > 10:
            break
    out_mask = np.where(crop == PAD, ignore, crop).astype(np.uint8)
    return img[y1 : y1 + size, x1 : x1 + size], out_mask, draws


def position_image(height: int, width: int) -> np.ndarray:
    """An image whose pixels encode their position (1-based, so padding 0 is distinct)."""
    rows, cols = np.mgrid[1 : height + 1, 1 : width + 1]
    return np.stack([rows, cols, np.full_like(rows, 9)], -1).astype(np.uint8)


def dominated_mask() -> np.ndarray:
    """64×64, 89.8 % class 0, a 20×20 block of class 1 in the centre and 4×4 of class 2."""
    mask = np.zeros((64, 64), np.uint8)
    mask[22:42, 22:42] = 1
    mask[50:54, 4:8] = 2
    return mask


def largest_share(mask: np.ndarray, ignore: int = 255) -> float:
    counts = np.bincount(mask[mask != ignore].ravel())
    return float(counts.max() / counts.sum())


def smart_crop(transform: SmartCrop, image: np.ndarray, mask: np.ndarray, seed: int) -> dict:
    transform.set_random_seed(seed)
    return transform(image=image, mask=mask)


def banded_mask(height: int, width: int, classes: int) -> np.ndarray:
    """Class 0 with an ignored band (left third) and, if ``classes`` > 1, 4 rows of class 1."""
    rng = np.random.default_rng(1)
    mask = np.zeros((height, width), np.uint8)
    mask[:, : width // 3] = 255
    if classes > 1:
        mask[rng.integers(0, height, 4)] = 1
    return mask


CASES = {
    # name: (image, mask, crop size, count_ignore, numbers of draws that must occur)
    "dominated": (position_image(64, 64), dominated_mask(), 32, False, None),
    "ignore_counted": (position_image(40, 48), banded_mask(40, 48, 2), 24, True, None),
    "ignore_dropped": (position_image(40, 48), banded_mask(40, 48, 2), 24, False, None),
    # crops larger than the image see the same pixels every draw: all pass at once or all fail
    "padded_passing": (position_image(20, 30), banded_mask(20, 30, 2), 32, False, {1}),
    "padded_failing": (position_image(20, 30), banded_mask(20, 30, 1), 32, False, {11}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_smart_crop_equals_the_geoseg_reference_draw_for_draw(case):
    image, mask, size, count_ignore, expected_draws = CASES[case]
    transform = SmartCrop(size, 0.75, count_ignore=count_ignore)
    draws_seen = set()
    for seed in range(40):
        out = smart_crop(transform, image, mask, seed)
        ref_image, ref_mask, draws = geoseg_smart_crop(
            image, mask, size, seed, count_ignore=count_ignore
        )
        assert np.array_equal(out["image"], ref_image), seed
        assert np.array_equal(out["mask"], ref_mask), seed
        assert 1 <= len(draws) <= SMART_CROP_DRAWS == 11
        draws_seen.add(len(draws))
    if expected_draws is None:
        assert len(draws_seen) > 1  # some seeds needed re-draws: the loop is exercised
    else:
        assert draws_seen == expected_draws


def test_smart_crop_rejects_crops_dominated_by_one_class():
    image, mask = position_image(64, 64), dominated_mask()
    # Of the 33×33 crop positions, 57 % pass; a plain random crop fails 43 % of the time,
    # and all 11 draws fail with probability 0.43**11 = 9e-5.
    passing = [
        largest_share(mask[t : t + 32, c : c + 32]) < 0.75
        and len(np.unique(mask[t : t + 32, c : c + 32])) > 1
        for t in range(33)
        for c in range(33)
    ]
    assert 0.5 < np.mean(passing) < 0.6
    smart = SmartCrop(32, 0.75)
    plain = A.RandomCrop(32, 32)
    plain_fails = 0
    for seed in range(200):
        out = smart_crop(smart, image, mask, seed)
        assert largest_share(out["mask"]) < 0.75, seed
        # the image moved with the mask: its pixels name the crop's position
        top, left = int(out["image"][0, 0, 0]) - 1, int(out["image"][0, 0, 1]) - 1
        assert np.array_equal(out["mask"], mask[top : top + 32, left : left + 32])
        plain.set_random_seed(seed)
        plain_fails += largest_share(plain(image=image, mask=mask)["mask"]) >= 0.75
    assert plain_fails > 50  # without the re-draws many crops are dominated


def test_smart_crop_keeps_the_11th_draw_when_none_passes():
    image = position_image(64, 64)
    mask = np.zeros((64, 64), np.uint8)
    mask[30:32, 30:32] = 1  # at most 4 of 1024 pixels: no crop can pass
    transform = SmartCrop(32, 0.75)
    differs_from_first = 0
    for seed in range(20):
        out = smart_crop(transform, image, mask, seed)
        _, _, draws = geoseg_smart_crop(image, mask, 32, seed)
        assert len(draws) == 11
        top, left = draws[-1]
        assert np.array_equal(out["image"], image[top : top + 32, left : left + 32])
        assert np.array_equal(out["mask"], mask[top : top + 32, left : left + 32])
        differs_from_first += draws[-1] != draws[0]
    assert differs_from_first > 15


@pytest.mark.parametrize(
    ("counts", "dropped", "counted"),
    [
        ({0: 10, 255: 6}, False, True),  # one label without ignore; 10/16 < 0.75 with it
        ({0: 9, 1: 3, 255: 4}, False, True),  # 9/12 = 0.75 is not *below* 0.75; 9/16 is
        ({0: 8, 1: 4, 255: 4}, True, True),  # 8/12 < 0.75
        ({255: 16}, False, False),  # nothing but ignore
        ({0: 16}, False, False),  # one class only
    ],
)
def test_smart_crop_counting_rule(counts, dropped, counted):
    mask = np.concatenate([np.full(n, v, np.uint8) for v, n in counts.items()]).reshape(4, 4)
    assert SmartCrop(4, 0.75, count_ignore=False).passes(mask, 0, 0) is dropped
    assert SmartCrop(4, 0.75, count_ignore=True).passes(mask, 0, 0) is counted


def test_smart_crop_does_not_count_padding():
    mask = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 1, 1]], np.uint8)
    crop = SmartCrop(4, 0.75)
    assert crop.passes(mask, 0, 0)  # 6 of class 0, 10 of class 1: 0.625 < 0.75
    assert not SmartCrop(4, 0.6).passes(mask, 0, 0)
    # a crop at (-2, -2) holds the image's top-left 2×2 (class 0 only) and 12 padding
    # pixels, which GeoSeg fills with its ignore label and leaves out: one label, no pass
    assert not crop.passes(mask, -2, -2)
    assert not SmartCrop(4, 0.75, count_ignore=True).passes(mask, -2, -2)


def test_smart_crop_pads_both_sides_by_half_the_gap_plus_one():
    image = position_image(20, 30)
    mask = np.zeros((20, 30), np.uint8)
    mask[:, 15:] = 1
    transform = SmartCrop(32, 0.75)
    tops, lefts = set(), set()
    for seed in range(60):
        out = smart_crop(transform, image, mask, seed)
        inside = out["image"][:, :, 2] == 9  # the image's own pixels
        tops.add(-int(np.flatnonzero(inside.any(axis=1))[0]))
        lefts.add(-int(np.flatnonzero(inside.any(axis=0))[0]))
        assert (out["mask"][~inside] == 255).all() and (out["image"][~inside] == 0).all()
        assert int(inside.sum()) == 20 * 30
    # rows: (32 - 20) // 2 + 1 = 7 on each side -> 34 rows -> offsets -7, -6, -5
    # cols: (32 - 30) // 2 + 1 = 2 on each side -> 34 cols -> offsets -2, -1, 0
    assert tops == {-7, -6, -5} and lefts == {-2, -1, 0}


def test_smart_crop_returns_an_image_of_the_crop_size_unchanged():
    image, mask = position_image(32, 32), np.zeros((32, 32), np.uint8)
    out = smart_crop(SmartCrop(32, 0.75), image, mask, 0)
    assert np.array_equal(out["image"], image) and np.array_equal(out["mask"], mask)


def test_train_transform_options_choose_the_crop():
    default = train_transform(crop_size=32)
    steps = [type(t) for t in default.transforms]
    assert steps[:2] == [A.PadIfNeeded, A.RandomCrop] and SmartCrop not in steps
    smart = train_transform(crop_size=32, smart_crop_max_ratio=0.75, smart_crop_count_ignore=True)
    crop = smart.transforms[0]
    assert isinstance(crop, SmartCrop) and crop.size == 32 and crop.max_ratio == 0.75
    assert crop.count_ignore and crop.ignore_index == 255
    image, mask = position_image(64, 64), dominated_mask()
    smart.set_random_seed(5)
    first = smart(image=image, mask=mask)["mask"]
    smart.set_random_seed(5)
    assert np.array_equal(smart(image=image, mask=mask)["mask"], first)
    for ratio in (0.0, 1.5):
        with pytest.raises(InvalidOptionError, match=rf"max_ratio={ratio}.*\(0, 1\]"):
            train_transform(crop_size=32, smart_crop_max_ratio=ratio)
    with pytest.raises(InvalidOptionError, match=r"scale_interpolation='area'.*pil_bicubic"):
        train_transform(crop_size=32, scales=[0.5], scale_interpolation="area")  # type: ignore[arg-type]


def scaled(interpolation, scale, image, mask):
    """Run train_transform with one scale and a crop of the scaled size (no crop, no flip)."""
    side = int(image.shape[0] * scale)
    transform = train_transform(
        crop_size=side,
        scales=[scale],
        hflip=False,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        scale_interpolation=interpolation,
    )
    transform.set_random_seed(0)
    out = transform(image=image, mask=mask)
    return np.rint(out["image"] * 255.0).astype(np.uint8), out["mask"]


@pytest.fixture
def noisy():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 40, 3), np.uint8), rng.integers(0, 6, (40, 40), np.uint8)


@pytest.mark.parametrize("scale", [0.75, 1.25, 1.5])
def test_bicubic_rescale_is_opencv_cubic_with_centred_nearest_masks(noisy, scale):
    image, mask = noisy
    side = int(40 * scale)
    out_image, out_mask = scaled("bicubic", scale, image, mask)
    assert np.array_equal(out_image, cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC))
    expected = cv2.resize(mask, (side, side), interpolation=cv2.INTER_NEAREST_EXACT)
    assert np.array_equal(out_mask, expected)
    # INTER_NEAREST_EXACT is what GeoSeg's Pillow NEAREST computes; INTER_NEAREST is not
    pil = np.asarray(Image.fromarray(mask).resize((side, side), Image.Resampling.NEAREST))
    assert np.array_equal(out_mask, pil)
    assert not np.array_equal(pil, cv2.resize(mask, (side, side), interpolation=cv2.INTER_NEAREST))


@pytest.mark.parametrize("scale", [0.75, 1.25, 1.5])
def test_pil_bicubic_rescale_is_geoseg_random_scale(noisy, scale):
    image, mask = noisy
    side = int(40 * scale)  # GeoSeg: int(scale_amt * oh), transform.py L174
    out_image, out_mask = scaled("pil_bicubic", scale, image, mask)
    pil_image = Image.fromarray(image).resize((side, side), Image.Resampling.BICUBIC)
    pil_mask = Image.fromarray(mask).resize((side, side), Image.Resampling.NEAREST)
    assert np.array_equal(out_image, np.asarray(pil_image))
    assert np.array_equal(out_mask, np.asarray(pil_mask))
    opencv = cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC)
    assert not np.array_equal(out_image, opencv)  # the two libraries do differ


@pytest.mark.parametrize("scale", [0.75, 1.5])
def test_default_rescale_is_unchanged_bilinear_and_nearest(noisy, scale):
    image, mask = noisy
    side = int(40 * scale)
    out_image, out_mask = scaled("bilinear", scale, image, mask)
    assert np.array_equal(
        out_image, cv2.resize(image, (side, side), interpolation=cv2.INTER_LINEAR)
    )
    assert np.array_equal(out_mask, cv2.resize(mask, (side, side), interpolation=cv2.INTER_NEAREST))


def test_pillow_scale_keeps_the_aspect_ratio_and_every_band():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (30, 44, 4), np.uint8)  # e.g. RGB + infrared
    mask = rng.integers(0, 6, (30, 44), np.uint8)
    out = PillowScale(1.25)(image=image, mask=mask)
    assert out["image"].shape == (37, 55, 4) and out["mask"].shape == (37, 55)
    for band in range(4):
        single = Image.fromarray(np.ascontiguousarray(image[..., band]))
        expected = np.asarray(single.resize((55, 37), Image.Resampling.BICUBIC))
        assert np.array_equal(out["image"][..., band], expected)


def _steps(transform: A.Compose) -> list[type]:
    return [type(t) for t in transform.transforms]


def test_rotation_colour_and_sharpen_options_default_to_the_previous_pipeline():
    old = train_transform(crop_size=32, rotate90=True, color_jitter=True)
    rotate, colour = old.transforms[-3], old.transforms[-2]
    assert isinstance(rotate, A.RandomRotate90) and rotate.p == 1.0
    assert isinstance(colour, A.RandomBrightnessContrast) and colour.p == 0.5
    assert A.Sharpen not in _steps(old)


def test_sfanet_augmentation_options():
    # SFA-Net: RandomRotate90(p=0.25) (Potsdam), RandomBrightnessContrast(0.25, 0.25, p=0.25)
    # and Sharpen() with its defaults (UAVid), j2jeong/priv network/datasets/*_dataset.py.
    pipeline = train_transform(
        crop_size=32,
        rotate90=True,
        rotate90_p=0.25,
        color_jitter=True,
        color_jitter_p=0.25,
        sharpen=True,
    )
    steps = _steps(pipeline)
    assert steps[-4:] == [A.RandomRotate90, A.RandomBrightnessContrast, A.Sharpen, A.Normalize]
    rotate, colour, sharpen = pipeline.transforms[-4:-1]
    assert rotate.p == 0.25 and colour.p == 0.25
    assert colour.brightness_limit == (-0.25, 0.25) and colour.contrast_limit == (-0.25, 0.25)
    assert tuple(sharpen.alpha) == (0.2, 0.5) and tuple(sharpen.lightness) == (0.5, 1.0)
    assert sharpen.p == 0.5 and sharpen.method == "kernel"
    # the sharpen step changes images only: masks pass through untouched
    image, mask = position_image(32, 32), dominated_mask()[:32, :32]
    changed = False
    for seed in range(8):
        pipeline.set_random_seed(seed)
        out = pipeline(image=image, mask=mask)
        rotated = [np.rot90(mask, k) for k in range(4)]
        flips = [m for r in rotated for m in (r, r[::-1], r[:, ::-1], r[::-1, ::-1])]
        assert any(np.array_equal(out["mask"], m) for m in flips)
        changed |= not np.array_equal(out["mask"], mask)
    assert changed


def test_rotation_probability_zero_never_rotates():
    pipeline = train_transform(crop_size=32, hflip=False, rotate90=True, rotate90_p=0.0)
    image, mask = position_image(32, 32), dominated_mask()[:32, :32]
    for seed in range(6):
        pipeline.set_random_seed(seed)
        assert np.array_equal(pipeline(image=image, mask=mask)["mask"], mask)


@pytest.mark.parametrize("name", ["rotate90_p", "color_jitter_p"])
@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_augmentation_probabilities_are_checked(name, value):
    with pytest.raises(InvalidOptionError, match=rf"{name}={value}; expected a probability"):
        train_transform(crop_size=32, **{name: value})
