"""Bad data inputs that reliability.md listed as handled but untested: each error and message.

Prepared-folder reads by ``SegmentationFolder``, preparation of malformed raw downloads and
output folders, the ``scripts/prepare_data.py`` patch options, and ``--check``. Every test goes
through the public function or CLI a user would call, asserts the error type and that the
message names the offending file or value, and, where a preparation fails, that nothing it
wrote is left behind.
"""

import json
import re
import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning

from lossd.data import SegmentationFolder
from lossd.data.prepare import check_prepared
from lossd.data.prepare.loveda import prepare_loveda
from lossd.data.prepare.potsdam import prepare_potsdam
from lossd.data.prepare.uavid import prepare_uavid
from lossd.errors import (
    DataFormatError,
    DatasetNotFoundError,
    InvalidOptionError,
    OutputExistsError,
)
from scripts.prepare_data import build_parser, main, run
from tests.conftest import write_prepared_split
from tests.data.loveda import FakeLoveDA, write_loveda
from tests.data.potsdam import FakePotsdam, write_potsdam
from tests.data.uavid import RELEASE, write_uavid


def listing(root: Path) -> list[str]:
    """Every file and folder below ``root``, relative to it (empty if ``root`` is absent)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def quoted(path: Path) -> str:
    """A regex matching ``'<path>'`` literally, as the messages quote paths."""
    return re.escape(f"'{path}'")


def write_tif_of(path: Path, array: np.ndarray) -> None:
    """Write an ``H×W×C`` array of any dtype as a plain GeoTIFF (``write_tif`` is uint8 only)."""
    profile = {
        "driver": "GTiff",
        "height": array.shape[0],
        "width": array.shape[1],
        "count": array.shape[2],
        "dtype": array.dtype.name,
    }
    with warnings.catch_warnings():  # no georeferencing, like the fake labels
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.moveaxis(array, -1, 0))


# --- Prepared-folder reads by SegmentationFolder (data/_io.py) ---------------------------------


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    """A prepared split of three 32² image/mask pairs, ``img00{0,1,2}_0_0``."""
    write_prepared_split(tmp_path, "train", 3, size=32)
    return tmp_path


def test_folder_rejects_16_bit_image(prepared: Path) -> None:
    path = prepared / "train" / "images" / "img001_0_0.png"
    assert cv2.imwrite(str(path), np.full((32, 32, 3), 1000, np.uint16))
    data = SegmentationFolder(prepared, "train", "potsdam")
    with pytest.raises(
        DataFormatError, match=rf"image {quoted(path)} has dtype uint16; expected uint8"
    ):
        data[1]
    assert data[0]["name"] == "img000_0_0"  # the other samples still read


@pytest.mark.parametrize(
    ("mask", "described"),
    [
        (np.zeros((32, 32, 3), np.uint8), "shape (32, 32, 3) and dtype uint8"),  # colour mask
        (np.zeros((32, 32), np.uint16), "shape (32, 32) and dtype uint16"),  # 16-bit mask
    ],
    ids=["colour", "16-bit"],
)
def test_folder_rejects_mask_that_is_not_single_channel_uint8(
    prepared: Path, mask: np.ndarray, described: str
) -> None:
    path = prepared / "train" / "masks" / "img002_0_0.png"
    assert cv2.imwrite(str(path), mask)
    data = SegmentationFolder(prepared, "train", "potsdam")
    with pytest.raises(
        DataFormatError,
        match=rf"mask {quoted(path)} has {re.escape(described)}; expected a single-channel uint8 "
        r"image of class indices \(run scripts/prepare_data\.py\)",
    ):
        data[2]


@pytest.mark.parametrize("kind", ["image", "mask"])
def test_folder_rejects_truncated_file(prepared: Path, kind: str) -> None:
    path = prepared / "train" / f"{kind}s" / "img000_0_0.png"
    path.write_bytes(path.read_bytes()[:100])  # header intact, pixel data cut off
    data = SegmentationFolder(prepared, "train", "potsdam")
    with pytest.raises(
        DataFormatError,
        match=rf"cannot decode {kind} {quoted(path)} \(truncated or not an image\?\)",
    ):
        data[0]


# --- Preparation of malformed downloads (data/prepare/) ----------------------------------------


@pytest.fixture
def loveda_raw(tmp_path: Path) -> FakeLoveDA:
    return write_loveda(tmp_path / "raw", size=16)


def test_loveda_id_in_both_scenes(loveda_raw: FakeLoveDA, tmp_path: Path) -> None:
    train = loveda_raw.root / "Train"
    for folder in ("images_png", "masks_png"):  # a full pair, so images and masks still pair up
        shutil.copy(train / "Rural" / folder / "0.png", train / "Urban" / folder / "0.png")
    # Urban is scanned before Rural, so the Urban copy is named first.
    first, second = (train / scene / "images_png" / "0.png" for scene in ("Urban", "Rural"))
    with pytest.raises(
        DataFormatError,
        match=rf"image id 0 appears twice: {quoted(first)} and {quoted(second)}; LoveDA ids are "
        "unique across scenes",
    ):
        prepare_loveda(loveda_raw.root, tmp_path / "out", splits=["train"], progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("channels", "mode"), [(1, "L"), (4, "RGBA")], ids=["grey", "rgba"])
def test_loveda_image_that_is_not_rgb_leaves_nothing(
    loveda_raw: FakeLoveDA, tmp_path: Path, channels: int, mode: str
) -> None:
    # 1367 is the last train image: 0, 1 and 1366 are prepared first and must be removed again.
    path = loveda_raw.root / "Train" / "Urban" / "images_png" / "1367.png"
    shape = (16, 16) if channels == 1 else (16, 16, channels)
    Image.fromarray(np.zeros(shape, np.uint8), mode).save(path)
    with pytest.raises(
        DataFormatError,
        match=rf"image {quoted(path)} has {channels} channels; expected a 3-channel RGB image",
    ):
        prepare_loveda(loveda_raw.root, tmp_path / "out", splits=["train"], progress=False)
    assert not (tmp_path / "out").exists()


def test_uavid_frame_that_is_not_rgb_leaves_nothing(tmp_path: Path) -> None:
    fake = write_uavid(tmp_path / "raw", scale=32)
    # seq2/000000 is the last train frame: the frames of seq1 are prepared first.
    path = fake.root / RELEASE / "uavid_train" / "seq2" / "Images" / "000000.png"
    height, width = fake.images["seq2_000000"].shape[:2]
    Image.fromarray(np.zeros((height, width, 4), np.uint8), "RGBA").save(path)
    with pytest.raises(
        DataFormatError,
        match=rf"image {quoted(path)} has 4 channels; expected a 3-channel RGB image",
    ):
        prepare_uavid(fake.root, tmp_path / "out", splits=["train"], patch_size=64,
                      progress=False)  # fmt: skip
    assert not (tmp_path / "out").exists()


@pytest.fixture
def potsdam_raw(tmp_path: Path) -> FakePotsdam:
    """Three small tiles: 2_10 (the val tile) and the training tiles 2_11, 2_12."""
    return write_potsdam(tmp_path / "raw", tiles=["2_10", "2_11", "2_12"], size=16)


def test_potsdam_file_found_twice(potsdam_raw: FakePotsdam, tmp_path: Path) -> None:
    name = "top_potsdam_2_10_RGB.tif"
    original = potsdam_raw.root / "2_Ortho_RGB"
    copy = potsdam_raw.root / "copy"  # sorts after 2_Ortho_RGB
    copy.mkdir()
    shutil.copy(original / name, copy / name)
    with pytest.raises(
        DataFormatError,
        match=rf"'{re.escape(name)}' is found twice, in {quoted(original)} and {quoted(copy)}; "
        "keep one copy",
    ):
        prepare_potsdam(potsdam_raw.root, tmp_path / "out", splits=["val"], patch_size=8,
                        progress=False)  # fmt: skip
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("bands", "array", "found"),
    [
        ("RGB", np.zeros((16, 16, 4), np.uint8), "4 bands of {'uint8'}"),  # an RGBIR file
        ("RGB", np.zeros((16, 16, 3), np.uint16), "3 bands of {'uint16'}"),  # 16-bit
        ("RGBIR", np.zeros((16, 16, 3), np.uint8), "3 bands of {'uint8'}"),  # an RGB file
    ],
    ids=["RGB-4-bands", "RGB-uint16", "RGBIR-3-bands"],
)
def test_potsdam_image_with_wrong_bands_leaves_nothing(
    tmp_path: Path, bands: str, array: np.ndarray, found: str
) -> None:
    fake = write_potsdam(tmp_path / "raw", tiles=["2_11", "2_12"], size=16, bands=(bands,))
    folder = {"RGB": "2_Ortho_RGB", "RGBIR": "4_Ortho_RGBIR"}[bands]
    path = fake.root / folder / f"top_potsdam_2_12_{bands}.tif"
    write_tif_of(path, array)
    expected = {"RGB": "3 uint8 bands ('red', 'green', 'blue')",
                "RGBIR": "4 uint8 bands ('red', 'green', 'blue', 'infrared')"}[bands]  # fmt: skip
    with pytest.raises(
        DataFormatError,
        match=rf"{quoted(path)} has {re.escape(found)}; expected {re.escape(expected)} for "
        rf"--bands {bands}$",
    ):
        # 2_11 is cut into patches first; they must be removed again.
        prepare_potsdam(fake.root, tmp_path / "out", splits=["train"], bands=bands,
                        tiles={"train": ["2_11", "2_12"]}, patch_size=8,
                        progress=False)  # fmt: skip
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("array", "found"),
    [
        (np.zeros((16, 16, 1), np.uint8), "1 bands of {'uint8'}"),  # an index label
        (np.zeros((16, 16, 3), np.uint16), "3 bands of {'uint16'}"),
    ],
    ids=["1-band", "uint16"],
)
def test_potsdam_label_that_is_not_3_band_uint8_leaves_nothing(
    potsdam_raw: FakePotsdam, tmp_path: Path, array: np.ndarray, found: str
) -> None:
    path = potsdam_raw.root / "5_Labels_all" / "top_potsdam_2_12_label.tif"
    write_tif_of(path, array)
    with pytest.raises(
        DataFormatError,
        match=rf"label {quoted(path)} has {re.escape(found)}; "
        "expected a uint8 colour label with 3 bands",
    ):
        prepare_potsdam(potsdam_raw.root, tmp_path / "out", splits=["train"],
                        tiles={"train": ["2_11", "2_12"]}, patch_size=8,
                        progress=False)  # fmt: skip
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "tiles", [{"train": ["2_11"]}, {"train": ["2_11"], "val": []}], ids=["absent", "empty"]
)
def test_potsdam_tiles_without_list_for_a_split(
    potsdam_raw: FakePotsdam, tmp_path: Path, tiles: dict[str, list[str]]
) -> None:
    with pytest.raises(InvalidOptionError, match=r"^tiles has no tile list for split 'val'$"):
        prepare_potsdam(potsdam_raw.root, tmp_path / "out", splits=["train", "val"], tiles=tiles,
                        patch_size=8, progress=False)  # fmt: skip
    assert not (tmp_path / "out").exists()


# --- Output folders that this tool did not make, or whose meta.json is broken -----------------


def test_dst_split_with_files_but_no_meta(loveda_raw: FakeLoveDA, tmp_path: Path) -> None:
    split_dir = tmp_path / "out" / "val"
    split_dir.mkdir(parents=True)
    (split_dir / "notes.txt").write_text("someone else's file")
    with pytest.raises(
        OutputExistsError,
        match=rf"{quoted(split_dir)} holds files but no meta\.json, so it was not made by this "
        "tool; use an empty or new --dst",
    ):
        prepare_loveda(loveda_raw.root, tmp_path / "out", splits=["val"], progress=False)
    assert listing(tmp_path / "out") == ["val", "val/notes.txt"]  # left as it was


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"{not json", r"Expecting property name"),
        (b'{"a": "\xff"}', r"'utf-8' codec can't decode byte 0xff"),
    ],
    ids=["invalid-json", "invalid-utf8"],
)
def test_unreadable_meta_json(
    loveda_raw: FakeLoveDA, tmp_path: Path, content: bytes, error: str
) -> None:
    dst = tmp_path / "out"
    meta = dst / "val" / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_bytes(content)
    match = rf"^cannot read {quoted(meta)}: .*{error}"
    with pytest.raises(DataFormatError, match=match):
        prepare_loveda(loveda_raw.root, dst, splits=["val"], progress=False)
    with pytest.raises(DataFormatError, match=match):
        check_prepared(dst)
    assert listing(dst) == ["val", "val/meta.json"] and meta.read_bytes() == content


@pytest.mark.parametrize(
    ("content", "type_name"), [("[1, 2]", "list"), ('"val"', "str"), ("null", "null")]
)
def test_meta_json_that_is_not_an_object(
    loveda_raw: FakeLoveDA, tmp_path: Path, content: str, type_name: str
) -> None:
    dst = tmp_path / "out"
    meta = dst / "val" / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(content)
    match = rf"^{quoted(meta)} holds {type_name}; expected a JSON object$"
    with pytest.raises(DataFormatError, match=match):
        prepare_loveda(loveda_raw.root, dst, splits=["val"], progress=False)
    with pytest.raises(DataFormatError, match=match):
        check_prepared(dst, ["val"])
    assert listing(dst) == ["val", "val/meta.json"] and meta.read_text() == content


# --- scripts/prepare_data.py options and --check -----------------------------------------------


@pytest.mark.parametrize("option", ["--patch-size", "--stride"])
def test_cli_patch_option_with_three_numbers(
    loveda_raw: FakeLoveDA, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    dst = tmp_path / "out"
    argv = ["loveda", "--src", str(loveda_raw.root), "--dst", str(dst), "--no-progress"]
    argv += ["--patch-size", "8"] if option == "--stride" else []
    argv += [option, "8", "8", "8"]
    message = rf"^{option} 8 8 8: expected 1 or 2 numbers \(HEIGHT \[WIDTH\]\)$"
    with pytest.raises(InvalidOptionError, match=message):
        run(build_parser().parse_args(argv))
    # main() reports it as one line on stderr, without a traceback, and exits with 1.
    assert main(argv) == 1
    assert (
        capsys.readouterr().err
        == f"error: {option} 8 8 8: expected 1 or 2 numbers (HEIGHT [WIDTH])\n"
    )
    assert not dst.exists()


def test_check_on_folder_without_any_meta(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Patches in the prepared layout, but not made by prepare_data.py (no meta.json).
    write_prepared_split(tmp_path / "data", "train", 1, size=8)
    root = tmp_path / "data"
    message = (
        rf"^no <split>/meta\.json under {quoted(root)}; is it a folder made by "
        r"scripts/prepare_data\.py\?$"
    )
    with pytest.raises(DatasetNotFoundError, match=message):
        check_prepared(root)
    assert main(["potsdam", "--dst", str(root), "--check"]) == 1
    assert re.match(f"error: {message[1:-1]}\n$", capsys.readouterr().err)


def test_check_reports_num_patches_mismatch(
    loveda_raw: FakeLoveDA, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dst = tmp_path / "out"
    prepare_loveda(loveda_raw.root, dst, splits=["val", "test"], progress=False)
    assert check_prepared(dst) == {"test": 2, "val": 2}
    meta_path = dst / "val" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps(meta | {"num_patches": 3}))
    message = (
        rf"^{quoted(dst)} does not match its meta\.json: val/meta\.json lists 2 patches but "
        r"num_patches=3\. "
    )
    with pytest.raises(DataFormatError, match=message):
        check_prepared(dst)
    assert check_prepared(dst, ["test"]) == {"test": 2}  # the other split is still fine
    assert main(["loveda", "--dst", str(dst), "--check"]) == 1
    assert "val/meta.json lists 2 patches but num_patches=3" in capsys.readouterr().err
