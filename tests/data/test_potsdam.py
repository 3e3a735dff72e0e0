"""ISPRS Potsdam preparation: standard split, bands, windows, georeferencing, bad input."""

import json

import albumentations as A
import numpy as np
import pytest
import rasterio
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from lossd.data import SegmentationFolder, potsdam
from lossd.data.prepare import check_prepared
from lossd.data.prepare.potsdam import prepare_potsdam
from lossd.errors import (
    DataFormatError,
    DatasetNotFoundError,
    InvalidOptionError,
    OutputExistsError,
)
from lossd.io import read_mask
from scripts.prepare_data import main
from tests.data.potsdam import (
    BAND_INDEX,
    CRS_EPSG,
    colour,
    geoseg_cut,
    write_potsdam,
    write_tif,
)

PATCH = 16  # with 94-px tiles: padded to 96 (2 px top/left), six patches a side, like 6000/1024
PAD = 2


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    root = tmp_path_factory.mktemp("potsdam") / "raw"
    return write_potsdam(root, bands=("RGB", "IRRG", "RGBIR"))


def inside(patch):
    """(source rows, source cols, patch rows, patch cols) of a patch's source pixels."""
    r, c, h, w = patch["row"], patch["col"], patch["height"], patch["width"]
    top, left = max(-r, 0), max(-c, 0)
    return (
        slice(max(r, 0), max(r, 0) + h),
        slice(max(c, 0), max(c, 0) + w),
        slice(top, top + h),
        slice(left, left + w),
    )


def stitch_masks(split_dir, source, folder, size=PATCH):
    canvas = np.full((source["height"], source["width"]), 77, np.uint8)
    for patch in source["patches"]:
        mask = read_mask(split_dir / folder / f"{patch['name']}.png")
        rows, cols, prows, pcols = inside(patch)
        assert mask.shape == (size, size)
        padding = np.ones(mask.shape, bool)
        padding[prows, pcols] = False
        assert (mask[padding] == 255).all()
        canvas[rows, cols] = mask[prows, pcols]
    return canvas


def test_standard_split_constants():
    split = potsdam.split_tiles()
    assert (len(split["train"]), split["val"], len(split["test"])) == (22, ("2_10",), 14)
    assert "7_10" not in split["train"] and "2_10" not in split["train"]
    assert "7_10" in potsdam.split_tiles(exclude=())["train"]
    assert not set(split["test"]) & set(potsdam.OFFICIAL_TRAIN_TILES)
    with pytest.raises(InvalidOptionError, match="2_13"):
        potsdam.split_tiles(exclude=("2_13",))


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # rasterio's window_transform
def test_val_tile_patches_stitch_back_with_georeferencing(fake, tmp_path):
    dst = tmp_path / "out"
    summary = prepare_potsdam(fake.root, dst, splits=["val"], patch_size=PATCH, progress=False)
    assert (summary["val"].sources, summary["val"].patches) == (1, 36)
    meta = json.loads((dst / "val" / "meta.json").read_text())
    assert meta["preparation_version"] == 2
    tile = fake.tiles["2_10"]
    (source,) = meta["sources"]
    assert source["crs"] == CRS_EPSG and source["flip"] is None
    assert source["transform"] == list(tile.transform)[:6]
    assert meta["band_order"] == ["red", "green", "blue"] and meta["options"]["tiles"] == ["2_10"]
    # padded at the top/left: the first row of patches starts 2 px above the tile
    assert [p["row"] for p in source["patches"]][::6] == [-PAD + 16 * k for k in range(6)]
    assert [p["height"] for p in source["patches"]][::6] == [14] + [16] * 5
    assert np.array_equal(stitch_masks(dst / "val", source, "masks"), tile.classes)
    image = np.full((94, 94, 3), 77, np.uint8)
    for patch in source["patches"]:
        r, c = patch["row"], patch["col"]
        rows, cols, prows, pcols = inside(patch)
        with rasterio.open(dst / "val" / "images" / f"{patch['name']}.tif") as tif:
            assert tif.crs.to_string() == CRS_EPSG and (tif.count, tif.width) == (3, PATCH)
            expected = window_transform(Window(c, r, PATCH, PATCH), tile.transform)
            assert tif.transform.almost_equals(expected)
            data = np.moveaxis(tif.read(), 0, -1)
        padding = np.ones(data.shape[:2], bool)
        padding[prows, pcols] = False
        assert (data[padding] == 0).all()
        image[rows, cols] = data[prows, pcols]
    assert np.array_equal(image, tile.rgbir[:, :, :3])


@pytest.mark.parametrize(("patch", "stride"), [(PATCH, PATCH), (32, 16)])
def test_training_tiles_are_cut_as_geoseg_with_their_flipped_copies(fake, tmp_path, patch, stride):
    dst = tmp_path / "out"
    tiles = {"train": ["2_11"]}
    summary = prepare_potsdam(fake.root, dst, splits=["train"], tiles=tiles, patch_size=patch,
                              stride=stride, progress=False)  # fmt: skip
    tile = fake.tiles["2_11"]
    meta = json.loads((dst / "train" / "meta.json").read_text())
    assert [s["stem"] for s in meta["sources"]] == [
        "top_potsdam_2_11", "top_potsdam_2_11_hflip", "top_potsdam_2_11_vflip"
    ]  # fmt: skip
    written = 0
    for flip, suffix in (("", ""), ("hflip", "_hflip"), ("vflip", "_vflip")):
        images = geoseg_cut(tile.rgbir[:, :, :3], flip, 0, patch, stride)
        masks = geoseg_cut(tile.classes, flip, 255, patch, stride)
        for (row, col), expected in images.items():
            name = f"top_potsdam_2_11{suffix}_{row}_{col}"
            with rasterio.open(dst / "train" / "images" / f"{name}.tif") as tif:
                assert np.array_equal(np.moveaxis(tif.read(), 0, -1), expected), name
            mask = read_mask(dst / "train" / "masks" / f"{name}.png")
            assert np.array_equal(mask, masks[row, col]), name
            written += 1
    assert summary["train"].patches == written == len(list((dst / "train/images").iterdir()))
    first = min(images)
    assert first[0] < 0 and first[1] < 0  # the padding is on the top and left


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_a_flipped_copy_is_georeferenced_where_its_pixels_lie(fake, tmp_path):
    dst = tmp_path / "out"
    prepare_potsdam(fake.root, dst, splits=["train"], tiles={"train": ["2_11"]},
                    patch_size=PATCH, progress=False)  # fmt: skip
    tile = fake.tiles["2_11"]
    with rasterio.open(dst / "train" / "images" / "top_potsdam_2_11_hflip_14_30.tif") as tif:
        # pixel (row 3, col 5) of the patch is column 30 + 5 of the mirrored tile, i.e. column
        # 94 - 1 - 35 = 58 of the tile, row 14 + 3 = 17: its centre maps to the same point
        x, y = tif.transform * (5.5, 3.5)
        assert (x, y) == pytest.approx(tile.transform * (58.5, 17.5))
        assert np.array_equal(np.moveaxis(tif.read(), 0, -1)[3, 5], tile.rgbir[17, 58, :3])


def test_padding_is_impervious_surfaces_under_the_original_protocol_only(fake, tmp_path):
    """GeoSeg pads the colour label with value=6: (6, 0, 0) under albumentations 1.x, no
    class colour, so class 0 (tools/potsdam_patch_split.py:67-68, 96-106)."""
    dst = tmp_path / "out"
    prepare_potsdam(fake.root, dst, splits=["train", "test"], tiles={"train": ["2_11"],
                    "test": ["2_13"]}, patch_size=PATCH, progress=False)  # fmt: skip
    name = "top_potsdam_2_11_vflip_-2_30"
    index = SegmentationFolder(dst, "train", "potsdam").samples
    position = [p.stem for p, _ in index].index(name)
    kwargs = {"transform": A.Compose([])}
    heldout = SegmentationFolder(dst, "train", "potsdam", **kwargs)[position]["mask"].numpy()
    original = SegmentationFolder(dst, "train", "potsdam", padding_label=0, **kwargs)
    mask = original[position]["mask"].numpy()
    by_hand = geoseg_cut(fake.tiles["2_11"].classes, "vflip", 0, PATCH, PATCH)[-2, 30]
    assert np.array_equal(mask, by_hand) and (mask[:PAD] == 0).all()
    assert (heldout[:PAD] == 255).all() and np.array_equal(heldout[PAD:], mask[PAD:])
    # test: eroded boundary stays ignored, the padding becomes class 0
    test = SegmentationFolder(dst, "test", "potsdam", padding_label=0, **kwargs)
    first = test[0]["mask"].numpy()
    eroded = geoseg_cut(fake.tiles["2_13"].eroded, "", 0, PATCH, PATCH)[-2, -2]
    assert test.name(0) == "top_potsdam_2_13_-2_-2"
    assert np.array_equal(first, eroded) and (first == 255).any()


def test_a_folder_of_the_first_preparation_is_refused_with_the_command(fake, tmp_path):
    dst = tmp_path / "out"
    prepare_potsdam(fake.root, dst, splits=["val"], patch_size=64, progress=False)
    meta = json.loads((dst / "val" / "meta.json").read_text())
    del meta["preparation_version"]  # version 1 wrote none
    (dst / "val" / "meta.json").write_text(json.dumps(meta))
    command = f"prepare_data.py potsdam --src {fake.root.resolve()} --dst {dst} --splits val"
    with pytest.raises(DataFormatError, match="preparation version 1") as info:
        SegmentationFolder(dst, "val", "potsdam")
    assert command in str(info.value)
    with pytest.raises(DataFormatError, match="preparation version 1"):
        check_prepared(dst)
    with pytest.raises(OutputExistsError, match="preparation version 1"):
        prepare_potsdam(fake.root, dst, splits=["val"], patch_size=64, progress=False)


def test_test_split_uses_eroded_labels_and_keeps_full_ones(fake, tmp_path):
    dst = tmp_path / "out"
    prepare_potsdam(fake.root, dst, splits=["test"], patch_size=32, progress=False)
    meta = json.loads((dst / "test" / "meta.json").read_text())
    assert [s["tile"] for s in meta["sources"]] == sorted(potsdam.OFFICIAL_TEST_TILES)
    assert meta["folders"] == {"images": ".tif", "masks": ".png", "masks_full": ".png"}
    for source in meta["sources"][:3]:
        tile = fake.tiles[source["tile"]]
        assert source["files"]["masks"].endswith("_label_noBoundary.tif")
        eroded = stitch_masks(dst / "test", source, "masks", 32)
        full = stitch_masks(dst / "test", source, "masks_full", 32)
        assert np.array_equal(eroded, tile.eroded) and (eroded == 255).any()
        assert np.array_equal(full, tile.classes)


@pytest.mark.parametrize("bands", ["IRRG", "RGBIR"])
def test_band_compositions_keep_their_order(fake, tmp_path, bands):
    dst = tmp_path / "out"
    prepare_potsdam(fake.root, dst, splits=["val"], bands=bands, patch_size=64, progress=False)
    meta = json.loads((dst / "val" / "meta.json").read_text())
    assert meta["band_order"] == list(potsdam.BANDS[bands])
    with rasterio.open(dst / "val" / "images" / "top_potsdam_2_10_-34_-34.tif") as tif:
        data = np.moveaxis(tif.read(), 0, -1)  # 94 px padded to 128: 34 px top/left
    order = [BAND_INDEX[b] for b in potsdam.BANDS[bands]]
    assert np.array_equal(data[34:, 34:], fake.tiles["2_10"].rgbir[:30, :30, order])


def test_seven_ten_excluded_by_default_and_switchable(fake, tmp_path):
    tiles = {"train": ["2_11", "7_10"]}
    run = prepare_potsdam(fake.root, tmp_path / "a", splits=["train"], tiles=tiles, patch_size=64,
                          progress=False)  # fmt: skip
    assert run["train"].sources == 3  # 2_11 as is, flipped left-right, flipped top-bottom
    run = prepare_potsdam(fake.root, tmp_path / "b", splits=["train"], tiles=tiles, patch_size=64,
                          exclude=(), progress=False)  # fmt: skip
    assert (
        run["train"].sources == 6
        and (tmp_path / "b/train/masks/top_potsdam_7_10_vflip_-34_-34.png").exists()
    )


def test_rerun_skips_finished_patches(fake, tmp_path):
    dst = tmp_path / "out"
    first = prepare_potsdam(fake.root, dst, splits=["val"], patch_size=32, progress=False)["val"]
    meta = (dst / "val" / "meta.json").read_text()
    (dst / "val" / "images" / "top_potsdam_2_10_30_62.tif").unlink()
    again = prepare_potsdam(fake.root, dst, splits=["val"], patch_size=32, progress=False)["val"]
    assert (first.files_written, again.files_written, again.files_skipped) == (18, 1, 17)
    assert (dst / "val" / "meta.json").read_text() == meta


def test_missing_tiles_and_foreign_folders_are_named(fake, tmp_path):
    with pytest.raises(
        DatasetNotFoundError, match=r"does not look like the ISPRS Potsdam.*isprs\.org"
    ):
        prepare_potsdam(tmp_path, tmp_path / "out", progress=False)
    partial = tmp_path / "partial"
    write_potsdam(partial, tiles=[t for t in potsdam.OFFICIAL_TEST_TILES if t != "5_14"], size=8)
    (partial / "5_Labels_all_noBoundary" / "top_potsdam_6_15_label_noBoundary.tif").unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        prepare_potsdam(partial, tmp_path / "out", splits=["test"], progress=False)
    message = str(info.value)
    assert "test tile 5_14 (top_potsdam_5_14_RGB.tif" in message
    assert "test tile 6_15 (top_potsdam_6_15_label_noBoundary.tif)" in message
    assert not (tmp_path / "out").exists()


def test_unknown_colour_counted_over_the_whole_file(tmp_path):
    fake = write_potsdam(tmp_path / "raw", tiles=["2_10"], size=40)
    label = colour(fake.tiles["2_10"].classes)
    label[1:3, 1:4] = (7, 7, 7)  # first patch
    label[30:32, 35:40] = (7, 7, 7)  # last patch
    write_tif(tmp_path / "raw" / "5_Labels_all" / "top_potsdam_2_10_label.tif", label)
    with pytest.raises(DataFormatError, match=r"_label\.tif.*\(7, 7, 7\) \(16 px\)"):
        prepare_potsdam(tmp_path / "raw", tmp_path / "out", splits=["val"], patch_size=16,
                        progress=False)  # fmt: skip
    assert not (tmp_path / "out").exists()
    prepare_potsdam(tmp_path / "raw", tmp_path / "out", splits=["val"], patch_size=16,
                    unknown_colour="ignore", progress=False)  # fmt: skip
    # 40 px padded to 48: the first patch starts 8 px above/left of the tile
    mask = read_mask(tmp_path / "out" / "val" / "masks" / "top_potsdam_2_10_-8_-8.png")
    assert (mask[9:11, 9:12] == 255).all()


def test_size_mismatch_and_truncated_tile_leave_nothing(tmp_path):
    fake = write_potsdam(tmp_path / "raw", tiles=["2_10", "2_11", "2_12"], size=40)
    dst = tmp_path / "out"
    tiles = {"train": ["2_11", "2_12"]}
    label = colour(fake.tiles["2_12"].classes)[:, :39]
    write_tif(tmp_path / "raw" / "5_Labels_all" / "top_potsdam_2_12_label.tif", label)
    with pytest.raises(
        DataFormatError, match=r"is 40×40 px but its label .*2_12_label\.tif' is 40×39"
    ):
        prepare_potsdam(tmp_path / "raw", dst, splits=["train"], tiles=tiles, patch_size=16,
                        progress=False)  # fmt: skip
    assert not dst.exists()  # the finished tile 2_11 was removed too
    image_path = tmp_path / "raw" / "2_Ortho_RGB" / "top_potsdam_2_10_RGB.tif"
    image_path.write_bytes(image_path.read_bytes()[:3000])
    with pytest.raises(DataFormatError, match=r"top_potsdam_2_10_RGB\.tif"):
        prepare_potsdam(tmp_path / "raw", dst, splits=["val"], patch_size=16, progress=False)
    assert not dst.exists()


def test_cli_options_reach_the_preparation(fake, tmp_path):
    argv = ["potsdam", "--src", str(fake.root), "--dst", str(tmp_path / "out"), "--no-progress"]
    assert main([*argv, "--splits", "val", "--bands", "IRRG", "--patch-size", "64", "48",
                 "--stride", "32", "40", "--exclude"]) == 0  # fmt: skip
    meta = json.loads((tmp_path / "out" / "val" / "meta.json").read_text())
    assert meta["options"]["bands"] == "IRRG" and meta["band_order"][0] == "infrared"
    assert (meta["options"]["patch_size"], meta["options"]["stride"]) == ([64, 48], [32, 40])
    assert main(["potsdam", "--dst", str(tmp_path / "out"), "--check"]) == 0


def test_invalid_options(fake, tmp_path):
    with pytest.raises(InvalidOptionError, match="bands"):
        prepare_potsdam(fake.root, tmp_path, bands="RGBN")
    with pytest.raises(InvalidOptionError, match="no train tiles left"):
        prepare_potsdam(fake.root, tmp_path, splits=["train"], tiles={"train": ["7_10"]})
    with pytest.raises(InvalidOptionError, match="tile ids"):
        prepare_potsdam(fake.root, tmp_path, splits=["val"], tiles={"val": ["2-10"]})


def test_decode_and_encode_use_the_official_colours():
    """The codec against the contest's colours written literally (tests/data/potsdam.py
    OFFICIAL_COLOURS, not the module's PALETTE): class k <-> colour k, black boundary <-> 255."""
    from tests.data.potsdam import OFFICIAL_COLOURS

    indices = np.array([[0, 1, 2, 3], [4, 5, 255, 1]], np.uint8)
    colours = colour(indices)
    assert colours[0, 1].tolist() == [0, 0, 255] and colours[0, 2].tolist() == [0, 255, 255]
    assert np.array_equal(potsdam.decode(colours), indices)
    assert np.array_equal(potsdam.encode(indices), colours)
    assert potsdam.PALETTE == OFFICIAL_COLOURS
    colours[1, 3] = (10, 20, 30)  # not a Potsdam colour: an error by default, naming the label
    with pytest.raises(
        DataFormatError, match=r"^label 'label' has colours .*\(10, 20, 30\) \(1 px\)"
    ):
        potsdam.decode(colours)
    with pytest.raises(DataFormatError, match=r"^label 'tile\.tif' has colours"):
        potsdam.decode(colours, source="tile.tif")
    assert potsdam.decode(colours, unknown="ignore")[1].tolist() == [4, 5, 255, 255]
