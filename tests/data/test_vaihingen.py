"""ISPRS Vaihingen preparation: the split, GeoSeg's windows, flips and car crops, bad input.

The expected patches are built here by hand from the fake download, following GeoSeg's
tools/vaihingen_patch_split.py @9453fe4 (flip the whole area, pad it at the top/left to a
multiple of the patch, cut whole windows; for car-rich training windows the crop of
albumentations 1.3.1's RandomSizedCrop and its flipped/rotated copies), with the random draws
in the order the module docstring of lossd.data.prepare.vaihingen states.
"""

import hashlib
import json
import random

import albumentations as A
import cv2
import numpy as np
import pytest
import rasterio

from lossd.data import SegmentationFolder, vaihingen
from lossd.data.prepare import check_prepared
from lossd.data.prepare.vaihingen import prepare_vaihingen
from lossd.errors import (
    DataFormatError,
    DatasetNotFoundError,
    InvalidOptionError,
    OutputExistsError,
)
from lossd.io import read_mask
from scripts.prepare_data import main
from tests.data.potsdam import geoseg_cut, write_tif
from tests.data.vaihingen import (
    ERODED,
    IMAGES,
    LABELS,
    OFFICIAL_COLOURS,
    PARTICIPANTS,
    colour,
    stem,
    write_vaihingen,
)

# 45×38 areas, 16-px patches: padded to 48×48, 3 rows on top and 10 columns on the left, like
# a 2494×2064 area padded to 3072×2560 for 1024² patches (not square, not a multiple).
SIZE, PATCH, STRIDE = (45, 38), 16, 8  # training stride = half the patch, GeoSeg's 512 of 1024
PAD_ROWS, PAD_COLS = 3, 10
CAR = 4  # GeoSeg's cf[4] (tools/vaihingen_patch_split.py:33, 217)


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    root = tmp_path_factory.mktemp("vaihingen") / "raw"
    return write_vaihingen(root, [1, 30, 2, 4], size=SIZE, participants=True)


def nearest(array, size):
    """cv2.INTER_NEAREST by hand: output pixel i takes input pixel floor(i * in / out)."""
    index = np.floor(np.arange(size) * array.shape[0] / size).astype(int)
    return array[index][:, index]


def inside(patch):
    """(source rows, source cols, patch rows, patch cols) of a window's source pixels."""
    r, c, h, w = patch["row"], patch["col"], patch["height"], patch["width"]
    top, left = max(-r, 0), max(-c, 0)
    return (slice(max(r, 0), max(r, 0) + h), slice(max(c, 0), max(c, 0) + w),
            slice(top, top + h), slice(left, left + w))  # fmt: skip


def stitch(split_dir, source, folder):
    canvas = np.full((source["height"], source["width"]), 77, np.uint8)
    for patch in source["patches"]:
        mask = read_mask(split_dir / folder / f"{patch['name']}.png")
        rows, cols, prows, pcols = inside(patch)
        padding = np.ones(mask.shape, bool)
        padding[prows, pcols] = False
        assert (mask[padding] == 255).all()
        canvas[rows, cols] = mask[prows, pcols]
    return canvas


def read_tif(path):
    with rasterio.open(path) as tif:
        return np.moveaxis(tif.read(), 0, -1)


def test_split_constants():
    # the contest's areas (torchgeo @7ea0616 torchgeo/datasets/vaihingen.py:68-104) and the
    # UNetFormer family's split (test the 17, validation 30, training the other 15: 3P
    # ICIG/FGHFN README.md @7d0bedd, docs/datasets.md §4), written here literally
    test = (2, 4, 6, 8, 10, 12, 14, 16, 20, 22, 24, 27, 29, 31, 33, 35, 38)
    train = (1, 3, 5, 7, 11, 13, 15, 17, 21, 23, 26, 28, 32, 34, 37)
    split = vaihingen.split_areas()
    assert split == {"train": train, "val": (30,), "test": test}
    assert test == vaihingen.OFFICIAL_TEST_AREAS
    assert sorted(vaihingen.OFFICIAL_TRAIN_AREAS) == sorted((*train, 30))
    assert len(set(train) | {30} | set(test)) == 33
    names = [vaihingen.image_file(30), vaihingen.label_file(30), vaihingen.eroded_label_file(30)]
    assert names == [
        "top_mosaic_09cm_area30.tif", "top_mosaic_09cm_area30.tif",
        "top_mosaic_09cm_area30_noBoundary.tif",
    ]  # fmt: skip
    # the ISPRS colours (tests/data/vaihingen.py: torchgeo vaihingen.py:106-121, GeoSeg :29-35)
    classes = np.arange(6, dtype=np.uint8)[None].repeat(2, 0)
    classes[1, 0] = 255
    assert np.array_equal(vaihingen.decode(colour(classes)), classes)
    assert np.array_equal(vaihingen.encode(classes), colour(classes))
    assert vaihingen.PALETTE == OFFICIAL_COLOURS
    info = vaihingen.INFO
    assert (info.name, info.headline_metric, info.eval_classes) == (
        "vaihingen",
        "mF1",
        (0, 1, 2, 3, 4),
    )
    assert (info.original_padding_label, info.preparation_version) == (0, 1)


def test_val_area_is_cut_in_val_mode_padded_at_the_top_left(fake, tmp_path):
    dst = tmp_path / "out"
    summary = prepare_vaihingen(fake.root, dst, splits=["val"], patch_size=PATCH, progress=False)
    assert (summary["val"].sources, summary["val"].patches) == (1, 9)  # 3×3, stride = patch
    meta = json.loads((dst / "val" / "meta.json").read_text())
    assert (meta["preparation_version"], meta["dataset"]) == (1, "vaihingen")
    assert meta["band_order"] == ["infrared", "red", "green"]
    assert meta["options"]["areas"] == [30] and meta["options"]["flips"] == ["none"]
    assert "car_crops" not in meta["options"]
    (source,) = meta["sources"]
    assert (source["stem"], source["tile"], source["flip"]) == (
        "top_mosaic_09cm_area30",
        "30",
        None,
    )
    assert (source["crs"], source["transform"]) == (None, None)  # not georeferenced
    assert source["files"]["image"].endswith(f"{IMAGES}/top_mosaic_09cm_area30.tif")
    assert source["files"]["masks"].endswith(f"{LABELS}/top_mosaic_09cm_area30.tif")
    offsets = sorted({(p["row"], p["col"]) for p in source["patches"]})
    assert offsets == [(r, c) for r in (-3, 13, 29) for c in (-10, 6, 22)]
    area = fake.areas[30]
    assert np.array_equal(stitch(dst / "val", source, "masks"), area.classes)
    for (row, col), expected in geoseg_cut(area.irrg, "", 0, PATCH, PATCH).items():
        image = read_tif(dst / "val" / "images" / f"top_mosaic_09cm_area30_{row}_{col}.tif")
        assert np.array_equal(image, expected)
    first = read_mask(dst / "val" / "masks" / "top_mosaic_09cm_area30_-3_-10.png")
    assert (first[:PAD_ROWS] == 255).all() and (first[:, :PAD_COLS] == 255).all()


def test_training_area_flipped_and_overlapping_as_geoseg_without_car_crops(fake, tmp_path):
    dst = tmp_path / "out"
    summary = prepare_vaihingen(fake.root, dst, splits=["train"], areas={"train": [1]},
                                patch_size=PATCH, car_crops=False, progress=False)  # fmt: skip
    meta = json.loads((dst / "train" / "meta.json").read_text())
    assert [s["stem"] for s in meta["sources"]] == [
        "top_mosaic_09cm_area1", "top_mosaic_09cm_area1_hflip", "top_mosaic_09cm_area1_vflip"
    ]  # fmt: skip
    assert meta["options"]["stride"] == [STRIDE, STRIDE]  # half the patch by default
    assert meta["options"]["car_crops"] is None
    area, written = fake.areas[1], 0
    for flip, suffix in (("", ""), ("hflip", "_hflip"), ("vflip", "_vflip")):
        images = geoseg_cut(area.irrg, flip, 0, PATCH, STRIDE)
        masks = geoseg_cut(area.classes, flip, 255, PATCH, STRIDE)
        assert len(images) == 5 * 5  # windows at 0, 8, ..., 32 of the padded 48×48 area
        for (row, col), expected in images.items():
            name = f"top_mosaic_09cm_area1{suffix}_{row}_{col}"
            assert np.array_equal(read_tif(dst / "train" / "images" / f"{name}.tif"), expected)
            mask = read_mask(dst / "train" / "masks" / f"{name}.png")
            assert np.array_equal(mask, masks[row, col]), name
            written += 1
    assert summary["train"].patches == written == 75
    assert len(list((dst / "train" / "images").iterdir())) == 75


def geoseg_train_patches(area, flip, seed, fill):
    """GeoSeg's train mode by hand, with lossd's random stream of the version: for every
    window a crop of side 3n/8..n/2 (6..8 px of 16), resized to n; a crop with more than 10 %
    cars replaces the window by itself, its top-bottom flip, its left-right flip and a turn by
    k quarter turns (tools/vaihingen_patch_split.py:156-177, 213-232). ``fill`` is the
    label of the mask padding. Returns ``{name: (image or None, mask)}``."""
    suffix = f"_{flip}" if flip else ""
    rng = random.Random(f"{seed}:{stem(1)}{suffix}")
    images = geoseg_cut(area.irrg, flip, 0, PATCH, STRIDE)
    masks = geoseg_cut(area.classes, flip, fill, PATCH, STRIDE)
    out = {}
    for (row, col), window in images.items():  # row-major, like GeoSeg's y/x loops
        rng.random()  # RandomSizedCrop's p check
        side = rng.randint(3 * PATCH // 8, PATCH // 2)
        top = int((PATCH - side + 1) * rng.random())
        left = int((PATCH - side + 1) * rng.random())
        mask = nearest(masks[row, col][top : top + side, left : left + side], PATCH)
        if (mask == CAR).sum() / mask.size <= 0.1:
            out[f"{stem(1)}{suffix}_{row}_{col}"] = (window, masks[row, col])
            continue
        for _ in range(3):
            rng.random()  # the p checks of VerticalFlip, HorizontalFlip, RandomRotate90
        k = rng.randint(0, 3)
        # the image resize is OpenCV's bilinear one, which albumentations 1.3.1 calls
        crop = window[top : top + side, left : left + side]
        image = cv2.resize(crop, (PATCH, PATCH), interpolation=cv2.INTER_LINEAR)
        copies = [(image, mask), (image[::-1], mask[::-1]), (image[:, ::-1], mask[:, ::-1]),
                  (np.rot90(image, k), np.rot90(mask, k))]  # fmt: skip
        for i, (pixels, labels) in enumerate(copies):
            out[f"{stem(1)}{suffix}_car{i}_{row}_{col}"] = (pixels, labels)
    return out


def test_car_rich_windows_are_replaced_by_geoseg_crops_drawn_reproducibly(fake, tmp_path):
    dst = tmp_path / "out"
    summary = prepare_vaihingen(fake.root, dst, splits=["train"], areas={"train": [1]},
                                patch_size=PATCH, progress=False)  # fmt: skip
    meta = json.loads((dst / "train" / "meta.json").read_text())
    assert meta["options"]["car_crops"] == {"share": 0.1, "seed": 42}
    expected = {}
    for flip in ("", "hflip", "vflip"):
        expected |= geoseg_train_patches(fake.areas[1], flip, 42, 255)
    names = sorted(p.stem for p in (dst / "train" / "images").iterdir())
    assert names == sorted(expected) and summary["train"].patches == len(expected)
    crops = [n for n in names if "_car" in n]
    assert crops and len(crops) < len(names)  # both branches happen on this area
    assert len(crops) % 4 == 0
    for name, (image, mask) in expected.items():
        assert np.array_equal(read_tif(dst / "train" / "images" / f"{name}.tif"), image), name
        assert np.array_equal(read_mask(dst / "train" / "masks" / f"{name}.png"), mask), name
    # the record says where the crop came from
    records = {p["name"]: p for s in meta["sources"] for p in s["patches"]}
    detail = records[crops[0]]["car_crop"]
    assert detail["copy"] == "crop" and 6 <= detail["crop"][2] <= 8
    assert set(detail) == {"window", "crop", "copy", "k"}
    # its pixels lie where the zoomed crop lies in the area's pixel grid (no georeferencing)
    first = next(n for n in crops if n.startswith(f"{stem(1)}_car0_"))
    row, col, side = records[first]["car_crop"]["crop"]
    with rasterio.open(dst / "train" / "images" / f"{first}.tif") as tif:
        assert tif.transform @ (0, 0) == pytest.approx((col, row))
        assert tif.transform @ (PATCH, PATCH) == pytest.approx((col + side, row + side))
    # the same seed gives the same files, another seed other crops
    again = prepare_vaihingen(fake.root, tmp_path / "again", splits=["train"],
                              areas={"train": [1]}, patch_size=PATCH, progress=False)  # fmt: skip
    assert again["train"].patches == summary["train"].patches
    other = json.loads((tmp_path / "again" / "train" / "meta.json").read_text())
    assert other["sources"] == meta["sources"]
    prepare_vaihingen(fake.root, tmp_path / "seed7", splits=["train"], areas={"train": [1]},
                      patch_size=PATCH, seed=7, progress=False)  # fmt: skip
    seven = sorted(p.stem for p in (tmp_path / "seed7" / "train" / "images").iterdir())
    assert seven == sorted(geoseg_train_patches(fake.areas[1], "", 7, 255)
                           | geoseg_train_patches(fake.areas[1], "hflip", 7, 255)
                           | geoseg_train_patches(fake.areas[1], "vflip", 7, 255))  # fmt: skip
    assert seven != names


def test_car_crop_padding_is_impervious_surfaces_under_the_original_protocol(fake, tmp_path):
    """GeoSeg's mask padding is class 0 under albumentations 1.x (value=6 -> (6, 0, 0), no
    class colour: tools/vaihingen_patch_split.py:64, 67, 91-101), zoomed with the crop."""
    dst = tmp_path / "out"
    prepare_vaihingen(fake.root, dst, splits=["train"], areas={"train": [1]}, patch_size=PATCH,
                      progress=False)  # fmt: skip
    kwargs = {"transform": A.Compose([])}
    original = SegmentationFolder(dst, "train", "vaihingen", padding_label=0, **kwargs)
    heldout = SegmentationFolder(dst, "train", "vaihingen", **kwargs)
    expected = {}
    for flip in ("", "hflip", "vflip"):
        expected |= geoseg_train_patches(fake.areas[1], flip, 42, 0)
    padded_crops = 0
    for index in range(len(original)):
        name = original.name(index)
        mask = original[index]["mask"].numpy()
        assert np.array_equal(mask, expected[name][1]), name
        plain = heldout[index]["mask"].numpy()
        padded_crops += "_car" in name and (plain == 255).any()
        assert np.array_equal(plain[plain != 255], mask[plain != 255])
    assert padded_crops > 0  # some crops reach into the padding, and are relabelled right


def test_test_split_uses_eroded_labels_and_keeps_full_ones(fake, tmp_path):
    dst = tmp_path / "out"
    summary = prepare_vaihingen(fake.root, dst, splits=["test"], areas={"test": [2, 4]},
                                patch_size=PATCH, progress=False)  # fmt: skip
    assert (summary["test"].sources, summary["test"].patches) == (2, 18)
    meta = json.loads((dst / "test" / "meta.json").read_text())
    assert meta["folders"] == {"images": ".tif", "masks": ".png", "masks_full": ".png"}
    for source in meta["sources"]:
        area = fake.areas[int(source["tile"])]
        assert source["files"]["masks"].endswith("_noBoundary.tif")
        assert source["files"]["masks"].startswith(ERODED)
        eroded = stitch(dst / "test", source, "masks")
        assert np.array_equal(eroded, area.eroded) and (eroded == 255).any()
        assert np.array_equal(stitch(dst / "test", source, "masks_full"), area.classes)
    test = SegmentationFolder(dst, "test", "vaihingen", padding_label=0,
                              transform=A.Compose([]))  # fmt: skip
    first = test[0]["mask"].numpy()
    assert test.name(0) == "top_mosaic_09cm_area2_-3_-10"
    by_hand = geoseg_cut(fake.areas[2].eroded, "", 0, PATCH, PATCH)[-3, -10]
    assert np.array_equal(first, by_hand)  # padding class 0, eroded boundary still 255


def test_check_and_rerun_against_meta(fake, tmp_path):
    dst = tmp_path / "out"
    argv = ["vaihingen", "--src", str(fake.root), "--dst", str(dst), "--no-progress",
            "--splits", "val", "--patch-size", "16"]  # fmt: skip
    assert main(argv) == 0
    assert check_prepared(dst) == {"val": 9}
    assert main(["vaihingen", "--dst", str(dst), "--check"]) == 0
    # a rerun keeps every finished file and rewrites a missing one
    patch = dst / "val" / "images" / "top_mosaic_09cm_area30_13_6.tif"
    digest = hashlib.md5(patch.read_bytes()).hexdigest()
    patch.unlink()
    again = prepare_vaihingen(fake.root, dst, splits=["val"], patch_size=PATCH, progress=False)
    assert (again["val"].files_written, again["val"].files_skipped) == (1, 17)
    assert hashlib.md5(patch.read_bytes()).hexdigest() == digest
    (dst / "val" / "masks" / "top_mosaic_09cm_area30_13_6.png").write_bytes(b"changed")
    assert main(["vaihingen", "--dst", str(dst), "--check"]) == 1
    with pytest.raises(OutputExistsError, match="other settings"):
        prepare_vaihingen(fake.root, dst, splits=["val"], patch_size=8, progress=False)


def test_cli_prepares_the_standard_split_with_its_options(tmp_path):
    raw, dst = tmp_path / "raw", tmp_path / "out"
    write_vaihingen(raw, range(1, 39), size=(20, 18))  # every area (and the five unused ids)
    argv = ["vaihingen", "--src", str(raw), "--dst", str(dst), "--no-progress", "--splits",
            "train", "val", "--patch-size", "16", "--train-stride", "8", "--stride", "12",
            "--seed", "3", "--no-car-crops"]  # fmt: skip
    assert main(argv) == 0
    train = json.loads((dst / "train" / "meta.json").read_text())
    val = json.loads((dst / "val" / "meta.json").read_text())
    assert train["options"]["areas"] == [1, 3, 5, 7, 11, 13, 15, 17, 21, 23, 26, 28, 32, 34, 37]
    assert val["options"]["areas"] == [30]
    assert (train["options"]["stride"], train["options"]["car_crops"]) == ([8, 8], None)
    assert val["options"]["stride"] == [12, 12]
    # 20×18 padded to 32×32: 3×3 training windows a version, 45 sources; val: 2×2 windows
    assert (len(train["sources"]), train["num_patches"], val["num_patches"]) == (45, 405, 4)
    bad = ["--splits", "train", "--patch-size", "16", "--train-stride", "32"]  # > the patch
    assert main(["vaihingen", "--src", str(raw), "--dst", str(tmp_path / "x"), *bad]) == 1
    assert not (tmp_path / "x").exists()


def test_participants_copies_and_other_layouts(fake, tmp_path):
    # the gts_for_participants copies equal the COMPLETE labels: accepted
    assert (fake.root / PARTICIPANTS / "top_mosaic_09cm_area1.tif").is_file()
    prepare_vaihingen(fake.root, tmp_path / "a", splits=["train"], areas={"train": [1]},
                      patch_size=32, car_crops=False, progress=False)  # fmt: skip
    # different labels of one name are refused, naming both folders
    raw = tmp_path / "raw"
    area = write_vaihingen(raw, [1], size=SIZE, participants=True).areas[1]
    write_tif(raw / PARTICIPANTS / "top_mosaic_09cm_area1.tif", colour(area.classes[::-1]))
    with pytest.raises(DataFormatError, match=r"area1\.tif' is found twice with different"):
        prepare_vaihingen(raw, tmp_path / "b", splits=["train"], areas={"train": [1]},
                          progress=False)  # fmt: skip
    # two image tiles of one name
    (raw / PARTICIPANTS / "top_mosaic_09cm_area1.tif").unlink()
    (raw / "copy" / "top").mkdir(parents=True)
    (raw / "copy" / "top" / "top_mosaic_09cm_area1.tif").write_bytes(
        (raw / IMAGES / "top_mosaic_09cm_area1.tif").read_bytes()
    )
    with pytest.raises(DataFormatError, match=r"area1\.tif' is found twice.*keep one copy"):
        prepare_vaihingen(raw, tmp_path / "c", splits=["train"], areas={"train": [1]},
                          progress=False)  # fmt: skip
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_missing_files_are_named_and_nothing_is_written(fake, tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"does not look like the ISPRS Vaihingen.*"
                       r"top/top_mosaic_09cm_area<N>\.tif.*isprs\.org"):  # fmt: skip
        prepare_vaihingen(tmp_path, tmp_path / "out", progress=False)
    raw = tmp_path / "raw"
    write_vaihingen(raw, [2, 4], size=(8, 8))
    (raw / ERODED / "top_mosaic_09cm_area4_noBoundary.tif").unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        prepare_vaihingen(raw, tmp_path / "out", splits=["test"], progress=False)
    message = str(info.value)
    assert (
        "test tile 6 (top/top_mosaic_09cm_area6.tif, top_mosaic_09cm_area6_noBoundary.tif"
        in message
    )
    assert "test tile 4 (top_mosaic_09cm_area4_noBoundary.tif)" in message
    assert "test tile 2 " not in message and vaihingen.ARCHIVES["label_noBoundary"] in message
    assert not (tmp_path / "out").exists()


def test_bad_files_leave_nothing(tmp_path):
    raw = tmp_path / "raw"
    fake = write_vaihingen(raw, [1, 3], size=(40, 40))
    write_tif(raw / LABELS / "top_mosaic_09cm_area3.tif", colour(fake.areas[3].classes)[:, :39])
    with pytest.raises(DataFormatError, match=r"is 40×40 px but its label .*area3\.tif' is 40×39"):
        prepare_vaihingen(raw, tmp_path / "out", splits=["train"], areas={"train": [1, 3]},
                          patch_size=16, progress=False)  # fmt: skip
    assert not (tmp_path / "out").exists()  # area 1, finished first, was removed too
    label = colour(fake.areas[3].classes)
    label[1:3, 1:4] = (7, 7, 7)
    write_tif(raw / LABELS / "top_mosaic_09cm_area3.tif", label)
    with pytest.raises(DataFormatError, match=r"area3\.tif.*\(7, 7, 7\) \(6 px\)"):
        prepare_vaihingen(raw, tmp_path / "out", splits=["train"], areas={"train": [3]},
                          patch_size=16, progress=False)  # fmt: skip
    write_tif(raw / IMAGES / "top_mosaic_09cm_area1.tif", np.zeros((40, 40, 4), np.uint8))
    with pytest.raises(DataFormatError, match=r"has 4 bands.*expected 3 uint8 bands "
                       r"\('infrared', 'red', 'green'\)"):  # fmt: skip
        prepare_vaihingen(raw, tmp_path / "out", splits=["train"], areas={"train": [1]},
                          patch_size=16, progress=False)  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_invalid_options(fake, tmp_path):
    with pytest.raises(InvalidOptionError, match="car crops are square"):
        prepare_vaihingen(fake.root, tmp_path, patch_size=(16, 8))
    prepare_vaihingen(fake.root, tmp_path / "ok", splits=["val"], patch_size=(16, 8),
                      car_crops=False, progress=False)  # fmt: skip
    with pytest.raises(InvalidOptionError, match="area ids"):
        prepare_vaihingen(fake.root, tmp_path, splits=["val"], areas={"val": ["30"]})
    with pytest.raises(InvalidOptionError, match="no area list for split 'test'"):
        prepare_vaihingen(fake.root, tmp_path, splits=["test"], areas={"val": [30]})
    with pytest.raises(InvalidOptionError, match="stride"):
        prepare_vaihingen(fake.root, tmp_path, patch_size=16, train_stride=32)
    with pytest.raises(InvalidOptionError, match="splits"):
        prepare_vaihingen(fake.root, tmp_path, splits=["trainval"])


def test_decode_and_encode_use_the_official_colours():
    """The codec against the contest's colours written literally (tests/data/vaihingen.py
    OFFICIAL_COLOURS): class k <-> colour k, black boundary <-> 255."""
    from tests.data.vaihingen import colour

    indices = np.array([[0, 1, 2, 3], [4, 5, 255, 1]], np.uint8)
    colours = colour(indices)
    assert colours[0, 1].tolist() == [0, 0, 255] and colours[0, 2].tolist() == [0, 255, 255]
    assert np.array_equal(vaihingen.decode(colours), indices)
    assert np.array_equal(vaihingen.encode(indices), colours)
    colours[1, 3] = (10, 20, 30)
    with pytest.raises(
        DataFormatError, match=r"^label 'label' has colours .*\(10, 20, 30\) \(1 px\)"
    ):
        vaihingen.decode(colours)
    with pytest.raises(DataFormatError, match=r"^label 'area1\.tif' has colours"):
        vaihingen.decode(colours, source="area1.tif")
    assert vaihingen.decode(colours, unknown="ignore")[1].tolist() == [4, 5, 255, 255]
