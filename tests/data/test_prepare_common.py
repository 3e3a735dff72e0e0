"""Shared preparation pieces: patch grid, names, label codecs, outputs, meta.json, CLI."""

import json

import numpy as np
import pytest

from lossd.data import loveda, potsdam, uavid
from lossd.data._labels import decode_colours, encode_colours
from lossd.data.prepare import check_prepared, parse_patch_name, patch_grid, patch_name
from lossd.data.prepare._grid import (
    padded_region,
    patch_options,
    region_grid,
)
from lossd.data.prepare._outputs import PatchOutputs
from lossd.data.windows import cut_window
from lossd.errors import DataFormatError, DatasetNotFoundError, InvalidOptionError
from scripts.prepare_data import main
from tests.data.loveda import write_loveda


@pytest.mark.parametrize(
    ("length", "patch", "stride", "starts", "last"),
    [
        (6000, 1024, 1024, [0, 1024, 2048, 3072, 4096, 5120], 880),  # Potsdam tile
        (2160, 1024, 1024, [0, 1024, 2048], 112),  # UAVid frame height
        (3840, 1024, 1024, [0, 1024, 2048, 3072], 768),  # UAVid narrow frame
        (4096, 1024, 1024, [0, 1024, 2048, 3072], 1024),  # UAVid wide frame: no padding
        (2160, 1024, 512, [0, 512, 1024, 1536], 624),  # overlapping stride
        (1024, 1024, 1024, [0], 1024),  # LoveDA image kept whole
        (700, 1024, 1024, [0], 700),  # smaller than a patch: one padded patch
    ],
)
def test_grid_geometry_of_real_sizes(length, patch, stride, starts, last):
    windows = patch_grid(length, 5, (patch, 5), (stride, 5))
    assert [w.row for w in windows] == starts
    assert windows[-1].height == last
    assert all(w.height == min(patch, length - w.row) for w in windows)


@pytest.mark.parametrize("seed", range(5))
def test_grid_covers_every_pixel(seed):
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(1, 90, 2))
    patch = (int(rng.integers(1, 40)), int(rng.integers(1, 40)))
    stride = (int(rng.integers(1, patch[0] + 1)), int(rng.integers(1, patch[1] + 1)))
    covered = np.zeros((height, width), dtype=int)
    for w in patch_grid(height, width, patch, stride):
        assert 0 < w.height <= patch[0] and 0 < w.width <= patch[1]
        covered[w.row : w.row + w.height, w.col : w.col + w.width] += 1
    assert covered.min() >= 1
    if stride == patch:
        assert covered.max() == 1


def test_patch_options_reject_bad_values():
    assert patch_options(1024, None) == ((1024, 1024), (1024, 1024))
    assert patch_options((64, 32), 16) == ((64, 32), (16, 16))
    with pytest.raises(InvalidOptionError, match="stride"):
        patch_options(64, 65)
    with pytest.raises(InvalidOptionError, match="patch_size"):
        patch_options(0, None)
    with pytest.raises(InvalidOptionError, match="patch_size"):
        patch_options((1, 2, 3), None)


@pytest.mark.parametrize(
    ("width", "cols", "first_width"),
    [
        (3840, [-256, 768, 1792, 2816], 768),  # 256 padding columns on the left
        (4096, [0, 1024, 2048, 3072], 1024),
    ],
)
def test_region_grid_is_geoseg_uavid_geometry(width, cols, first_width):
    # GeoSeg tools/uavid_patch_split.py: pad to 4096 at the bottom-right, keep [-2048:, -4096:]
    windows = region_grid(2160, width, (2048, 4096), (1024, 1024), (1024, 1024))
    assert [(w.row, w.col) for w in windows] == [(r, c) for r in (112, 1136) for c in cols]
    assert [w.width for w in windows[:4]] == [first_width, 1024, 1024, 1024]
    assert all(w.height == 1024 for w in windows)


def test_region_grid_skips_pure_padding_and_pads_a_short_source_on_top():
    # 10×12 source, region 8×16: the patch column at -4 is pure padding and is skipped
    windows = region_grid(10, 12, (8, 16), (4, 4), (4, 4))
    assert [(w.row, w.col) for w in windows] == [(r, c) for r in (2, 6) for c in (0, 4, 8)]
    # a region taller than the source: the first patch has 3 padding rows on top; a patch
    # that would pass the region's bottom edge is not cut (GeoSeg keeps full tiles only)
    windows = region_grid(3, 4, (6, 4), (4, 4), (4, 4))
    assert [(w.row, w.col, w.height, w.width) for w in windows] == [(-3, 0, 1, 4)]
    windows = region_grid(3, 4, (8, 4), (4, 4), (4, 4))
    assert [(w.row, w.col, w.height, w.width) for w in windows] == [(-1, 0, 3, 4)]


@pytest.mark.parametrize(
    ("length", "patch", "stride", "starts"),
    [
        # GeoSeg: pad to the next multiple of the patch at the top, then range(0, padded,
        # stride) keeping full tiles (tools/potsdam_patch_split.py:58-63, 204-211)
        (6000, 1024, 1024, [-144 + 1024 * k for k in range(6)]),
        (94, 16, 16, [-2 + 16 * k for k in range(6)]),
        (2494, 1024, 512, [-578, -66, 446, 958, 1470]),  # Vaihingen-like, stride 512
        (2048, 1024, 1024, [0, 1024]),  # a multiple: no padding
    ],
)
def test_padded_region_grid_is_geoseg_isprs_geometry(length, patch, stride, starts):
    region = padded_region(length, length, (patch, patch))
    assert region[0] == -(-length // patch) * patch
    windows = region_grid(length, length, region, (patch, patch), (stride, stride))
    assert sorted({w.row for w in windows}) == starts
    first = windows[0]
    assert first.height == min(patch + starts[0], length) and first.col == starts[0]


@pytest.mark.parametrize("seed", range(5))
def test_cut_window_pads_bottom_right_and_top_left(seed):
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 200, (9, 13, 3), dtype=np.uint8)
    row, col = int(rng.integers(0, 9)), int(rng.integers(0, 13))
    cut = cut_window(array, row, col, (5, 6), 255)
    part = array[row : row + 5, col : col + 6]
    widths = ((0, 5 - part.shape[0]), (0, 6 - part.shape[1]), (0, 0))
    assert np.array_equal(cut, np.pad(part, widths, constant_values=255))
    shifted = cut_window(array, -2, -3, (5, 6), 7)  # 2 padding rows on top, 3 columns left
    assert (shifted[:2] == 7).all() and (shifted[:, :3] == 7).all()
    assert np.array_equal(shifted[2:, 3:], array[:3, :3])


def test_patch_names_round_trip_with_underscored_stems():
    assert patch_name("top_potsdam_2_10", 1024, 0) == "top_potsdam_2_10_1024_0"
    assert parse_patch_name("top_potsdam_2_10_1024_0.tif") == ("top_potsdam_2_10", 1024, 0)
    assert parse_patch_name("seq1_000100_2048_3072") == ("seq1_000100", 2048, 3072)
    assert patch_name("seq1_000000", 112, -256) == "seq1_000000_112_-256"
    assert parse_patch_name("seq1_000000_112_-256.png") == ("seq1_000000", 112, -256)
    with pytest.raises(InvalidOptionError, match="not a patch name"):
        parse_patch_name("image.png")


def test_loveda_decode_maps_nodata_to_ignore_and_shifts_classes():
    raw = np.arange(8, dtype=np.uint8).reshape(2, 4)
    assert loveda.decode(raw).tolist() == [[255, 0, 1, 2], [3, 4, 5, 6]]
    with pytest.raises(DataFormatError, match=r"m\.png.*9 \(2 px\)"):
        loveda.decode(np.full((1, 2), 9, np.uint8), source="m.png")
    assert loveda.decode(np.full((1, 2), 9, np.uint8), unknown="ignore").tolist() == [[255, 255]]
    assert loveda.encode(np.array([[0, 255]])).tolist() == [[[255, 255, 255], [0, 0, 0]]]


@pytest.mark.parametrize("module", [uavid, potsdam])
def test_colour_codecs_round_trip(module):
    rng = np.random.default_rng(0)
    indices = rng.integers(0, len(module.CLASSES), (9, 11)).astype(np.uint8)
    indices[0, 0] = 255
    colours = module.encode(indices)
    assert colours.shape == (9, 11, 3) and colours.dtype == np.uint8
    assert tuple(colours[0, 0]) == module.IGNORE_COLOUR
    assert np.array_equal(module.decode(colours), indices)
    for index, colour in enumerate(module.PALETTE):
        assert module.decode(np.array([[colour]], np.uint8))[0, 0] == index


def test_unknown_colour_names_colour_count_and_file():
    label = np.zeros((4, 4, 3), np.uint8)
    label[:2, :, :] = (12, 34, 56)
    label[3, 3] = (1, 2, 3)
    with pytest.raises(
        DataFormatError, match=r"'a\.png'.*\(12, 34, 56\) \(8 px\), \(1, 2, 3\) \(1 px\)"
    ):
        uavid.decode(label, source="a.png")
    decoded = uavid.decode(label, unknown="ignore")
    assert (decoded[:2] == 255).all() and decoded[3, 3] == 255 and (decoded[2] == 7).all()
    with pytest.raises(InvalidOptionError, match="unknown_colour"):
        uavid.decode(label, unknown="skip")  # type: ignore[arg-type]


def test_codecs_reject_malformed_input():
    with pytest.raises(DataFormatError, match="H×W×3"):
        decode_colours(np.zeros((2, 2), np.uint8), potsdam.LABEL_COLOURS)
    with pytest.raises(DataFormatError, match=r"\[6\]"):
        encode_colours(np.array([[6]]), potsdam.PALETTE)
    with pytest.raises(DataFormatError, match="single-channel"):
        loveda.decode(np.zeros((2, 2, 3), np.uint8))


def test_outputs_skip_existing_and_undo_on_failure(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "old.png").write_bytes(b"old")
    with pytest.raises(RuntimeError), PatchOutputs(tmp_path) as out:
        out.write("images/old.png", lambda p: p.write_bytes(b"new"))
        out.write("images/new.png", lambda p: p.write_bytes(b"new"))
        assert out.skipped == 1 and (tmp_path / "images" / "new.png").exists()
        raise RuntimeError("boom")
    assert (tmp_path / "images" / "old.png").read_bytes() == b"old"
    assert not (tmp_path / "images" / "new.png").exists()


@pytest.fixture
def prepared_loveda(tmp_path):
    write_loveda(tmp_path / "raw", size=16)
    assert main(["loveda", "--src", str(tmp_path / "raw"), "--dst", str(tmp_path / "out"),
                 "--no-progress", "--splits", "train", "val"]) == 0  # fmt: skip
    return tmp_path / "out"


def test_cli_prepares_and_checks(tmp_path, capsys):
    write_loveda(tmp_path / "raw", size=16)
    argv = ["loveda", "--src", str(tmp_path / "raw"), "--dst", str(tmp_path / "out")]
    assert main([*argv, "--no-progress", "--splits", "val", "test"]) == 0
    assert "val: 2 patches from 2 images (4 files written, 0 kept)" in capsys.readouterr().out
    assert main(["loveda", "--dst", str(tmp_path / "out"), "--check"]) == 0
    assert capsys.readouterr().out.strip() == "test: 2 patches OK; val: 2 patches OK"


def test_check_finds_missing_modified_and_stray_files(prepared_loveda, capsys):
    assert check_prepared(prepared_loveda) == {"train": 4, "val": 2}
    masks = prepared_loveda / "train" / "masks"
    (masks / "0_0_0.png").unlink()
    (masks / "1_0_0.png").write_bytes(b"garbage")
    (masks / ".1366_0_0.tmp.png").write_bytes(b"")
    with pytest.raises(DataFormatError) as info:
        check_prepared(prepared_loveda)
    message = str(info.value)
    assert "missing masks/0_0_0.png" in message
    assert "masks/1_0_0.png differs" in message
    assert "unexpected file masks/.1366_0_0.tmp.png" in message
    assert main(["loveda", "--dst", str(prepared_loveda), "--check"]) == 1
    assert "does not match its meta.json" in capsys.readouterr().err


def test_check_refuses_incomplete_or_absent_meta(prepared_loveda, tmp_path):
    meta_path = prepared_loveda / "val" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps(meta | {"complete": False}))
    with pytest.raises(DataFormatError, match="incomplete"):
        check_prepared(prepared_loveda, ["val"])
    with pytest.raises(DatasetNotFoundError, match=r"meta\.json"):
        check_prepared(prepared_loveda, ["test"])
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        check_prepared(tmp_path / "nowhere")


def test_cli_reports_bad_input_without_traceback(tmp_path, capsys):
    assert main(["uavid", "--src", str(tmp_path), "--dst", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "uavid.nl" in err
    assert main(["potsdam", "--dst", str(tmp_path / "out")]) == 1
    assert "--src is required" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
