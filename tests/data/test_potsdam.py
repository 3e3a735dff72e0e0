"""ISPRS Potsdam preparation: standard split, bands, windows, georeferencing, bad input."""

import json

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from lossd.data import potsdam
from lossd.data.prepare import prepare_potsdam
from lossd.errors import DataFormatError, DatasetNotFoundError, InvalidOptionError
from lossd.io import read_mask
from scripts.prepare_data import main
from tests.data.potsdam import BAND_INDEX, CRS_EPSG, colour, write_potsdam, write_tif

PATCH = 16  # with 94-px tiles: six patches a side, the last one partly padded, like 6000/1024


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    root = tmp_path_factory.mktemp("potsdam") / "raw"
    return write_potsdam(root, bands=("RGB", "IRRG", "RGBIR"))


def stitch_masks(split_dir, source, folder):
    canvas = np.full((source["height"], source["width"]), 77, np.uint8)
    for patch in source["patches"]:
        mask = read_mask(split_dir / folder / f"{patch['name']}.png")
        r, c, h, w = patch["row"], patch["col"], patch["height"], patch["width"]
        assert mask.shape == (PATCH, PATCH)
        assert (mask[h:] == 255).all() and (mask[:, w:] == 255).all()
        canvas[r : r + h, c : c + w] = mask[:h, :w]
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
    tile = fake.tiles["2_10"]
    (source,) = meta["sources"]
    assert source["crs"] == CRS_EPSG
    assert source["transform"] == list(tile.transform)[:6]
    assert meta["band_order"] == ["red", "green", "blue"] and meta["options"]["tiles"] == ["2_10"]
    assert [p["height"] for p in source["patches"]][::6] == [16] * 5 + [14]
    assert np.array_equal(stitch_masks(dst / "val", source, "masks"), tile.classes)
    image = np.full((94, 94, 3), 77, np.uint8)
    for patch in source["patches"]:
        r, c, h, w = patch["row"], patch["col"], patch["height"], patch["width"]
        with rasterio.open(dst / "val" / "images" / f"{patch['name']}.tif") as tif:
            assert tif.crs.to_string() == CRS_EPSG and (tif.count, tif.width) == (3, PATCH)
            expected = window_transform(Window(c, r, PATCH, PATCH), tile.transform)
            assert tif.transform.almost_equals(expected)
            data = np.moveaxis(tif.read(), 0, -1)
        assert (data[h:] == 0).all() and (data[:, w:] == 0).all()
        image[r : r + h, c : c + w] = data[:h, :w]
    assert np.array_equal(image, tile.rgbir[:, :, :3])


def test_test_split_uses_eroded_labels_and_keeps_full_ones(fake, tmp_path):
    dst = tmp_path / "out"
    prepare_potsdam(fake.root, dst, splits=["test"], patch_size=32, progress=False)
    meta = json.loads((dst / "test" / "meta.json").read_text())
    assert [s["tile"] for s in meta["sources"]] == sorted(potsdam.OFFICIAL_TEST_TILES)
    assert meta["folders"] == {"images": ".tif", "masks": ".png", "masks_full": ".png"}
    for source in meta["sources"][:3]:
        tile = fake.tiles[source["tile"]]
        assert source["files"]["masks"].endswith("_label_noBoundary.tif")
        eroded = np.full((94, 94), 77, np.uint8)
        full = np.full((94, 94), 77, np.uint8)
        for patch in source["patches"]:
            r, c, h, w = patch["row"], patch["col"], patch["height"], patch["width"]
            name = patch["name"]
            eroded[r : r + h, c : c + w] = read_mask(dst / "test" / "masks" / f"{name}.png")[:h, :w]
            full[r : r + h, c : c + w] = read_mask(dst / "test" / "masks_full" / f"{name}.png")[
                :h, :w
            ]
        assert np.array_equal(eroded, tile.eroded) and (eroded == 255).any()
        assert np.array_equal(full, tile.classes)


@pytest.mark.parametrize("bands", ["IRRG", "RGBIR"])
def test_band_compositions_keep_their_order(fake, tmp_path, bands):
    dst = tmp_path / "out"
    prepare_potsdam(fake.root, dst, splits=["val"], bands=bands, patch_size=64, progress=False)
    meta = json.loads((dst / "val" / "meta.json").read_text())
    assert meta["band_order"] == list(potsdam.BANDS[bands])
    with rasterio.open(dst / "val" / "images" / "top_potsdam_2_10_0_0.tif") as tif:
        data = np.moveaxis(tif.read(), 0, -1)
    order = [BAND_INDEX[b] for b in potsdam.BANDS[bands]]
    assert np.array_equal(data, fake.tiles["2_10"].rgbir[:64, :64, order])


def test_seven_ten_excluded_by_default_and_switchable(fake, tmp_path):
    tiles = {"train": ["2_11", "7_10"]}
    run = prepare_potsdam(fake.root, tmp_path / "a", splits=["train"], tiles=tiles, patch_size=64,
                          progress=False)  # fmt: skip
    assert run["train"].sources == 1
    run = prepare_potsdam(fake.root, tmp_path / "b", splits=["train"], tiles=tiles, patch_size=64,
                          exclude=(), progress=False)  # fmt: skip
    assert (
        run["train"].sources == 2 and (tmp_path / "b/train/masks/top_potsdam_7_10_0_0.png").exists()
    )


def test_rerun_skips_finished_patches(fake, tmp_path):
    dst = tmp_path / "out"
    first = prepare_potsdam(fake.root, dst, splits=["val"], patch_size=32, progress=False)["val"]
    meta = (dst / "val" / "meta.json").read_text()
    (dst / "val" / "images" / "top_potsdam_2_10_32_64.tif").unlink()
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
    assert (
        read_mask(tmp_path / "out" / "val" / "masks" / "top_potsdam_2_10_0_0.png")[1:3, 1:4] == 255
    ).all()


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
