"""LoveDA and UAVid submission archives (lossd.data.submission)."""

import json
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from lossd.data import uavid
from lossd.data.prepare import patch_grid
from lossd.data.submission import (
    SubmissionWriter,
    source_key,
    submission_entry,
    write_submission,
)
from lossd.errors import DataFormatError, InvalidOptionError, OutputExistsError


def _read(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    data = np.frombuffer(archive.read(name), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _uavid_colours(indices: np.ndarray) -> np.ndarray:
    """Independent colour lookup with the official table (docs/datasets.md §2)."""
    table = {
        0: (128, 0, 0),
        1: (128, 64, 128),
        2: (0, 128, 0),
        3: (128, 128, 0),
        4: (64, 0, 128),
        5: (192, 0, 192),
        6: (64, 64, 0),
        7: (0, 0, 0),
    }
    out = np.zeros((*indices.shape, 3), np.uint8)
    for index, colour in table.items():
        out[indices == index] = colour
    return out


def test_source_keys_follow_each_layout() -> None:
    assert source_key("loveda", "raw/Test/Rural/images_png/4191.png") == "4191"
    assert source_key("loveda", "data/loveda/test/images/5107_0_0.png") == "5107"
    assert source_key("uavid", "uavid_test/seq21/Images/000100.png") == "seq21/Labels/000100"
    assert source_key("uavid", "test/images/seq42_000300_1024_2048.png") == "seq42/Labels/000300"
    with pytest.raises(DataFormatError, match=r"LoveDA image id of 'photo.png'"):
        source_key("loveda", "photo.png")
    with pytest.raises(DataFormatError, match=r"UAVid sequence and frame"):
        source_key("uavid", "frames/Images/000000.png")
    with pytest.raises(InvalidOptionError, match=r"potsdam"):
        source_key("potsdam", "x.png")


def test_loveda_zip_is_flat_single_channel_indices(tmp_path) -> None:
    rng = np.random.default_rng(0)
    preds = {
        "4191": rng.integers(0, 7, (32, 32)).astype(np.int64),
        "5107": rng.integers(0, 7, (32, 32)).astype(np.uint8),
    }
    pairs = [
        (Path("Test/Rural/images_png/4191.png"), preds["4191"]),
        (Path("prepared/test/images/5107_0_0.png"), preds["5107"]),
    ]
    summary = write_submission("loveda", pairs, tmp_path / "loveda.zip")
    assert summary.entries == ["4191.png", "5107.png"]
    # LoveDA's official test split has 1796 images (docs/datasets.md §1)
    assert summary.expected == 1796 and not summary.complete
    assert "1796" in summary.describe()
    with zipfile.ZipFile(tmp_path / "loveda.zip") as archive:
        assert archive.namelist() == ["4191.png", "5107.png"]
        for image_id, pred in preds.items():
            stored = _read(archive, f"{image_id}.png")
            assert stored.ndim == 2 and stored.dtype == np.uint8
            np.testing.assert_array_equal(stored, pred)


def test_uavid_patches_are_stitched_into_colour_frames(tmp_path) -> None:
    rng = np.random.default_rng(1)
    height, width, patch = 100, 150, (64, 64)
    frame = rng.integers(0, 8, (height, width)).astype(np.uint8)
    split = tmp_path / "test"
    windows = patch_grid(height, width, patch, patch)
    meta = {"sources": [{"stem": "seq21_000100", "height": height, "width": width}]}
    (split / "images").mkdir(parents=True)
    (split / "meta.json").write_text(json.dumps(meta))
    pairs = []
    for w in windows:  # a prediction per padded patch; padding holds arbitrary classes
        pred = rng.integers(0, 8, patch).astype(np.uint8)
        pred[: w.height, : w.width] = frame[w.row : w.row + w.height, w.col : w.col + w.width]
        pairs.append((split / "images" / f"seq21_000100_{w.row}_{w.col}.png", pred))
    raw = rng.integers(0, 8, (40, 50)).astype(np.uint8)
    pairs.append((tmp_path / "uavid_test" / "seq42" / "Images" / "000000.png", raw))
    summary = write_submission("uavid", pairs, tmp_path / "uavid.zip")
    assert summary.entries == ["seq21/Labels/000100.png", "seq42/Labels/000000.png"]
    with zipfile.ZipFile(tmp_path / "uavid.zip") as archive:
        stitched = _read(archive, "seq21/Labels/000100.png")
        assert stitched.shape == (height, width, 3)
        np.testing.assert_array_equal(stitched, _uavid_colours(frame))
        np.testing.assert_array_equal(
            _read(archive, "seq42/Labels/000000.png"), _uavid_colours(raw)
        )
    # The stored colours decode back to the indices with the dataset's own table.
    np.testing.assert_array_equal(uavid.decode(_uavid_colours(frame)), frame)


def test_patches_need_their_source_size(tmp_path) -> None:
    pred = np.zeros((64, 64), np.uint8)
    images = tmp_path / "test" / "images"
    with pytest.raises(DataFormatError, match=r"meta.json.*does not give that source's size"):
        write_submission("uavid", [(images / "seq1_000000_64_0.png", pred)], tmp_path / "a.zip")
    assert not (tmp_path / "a.zip").exists()
    # A lone (0, 0) patch is a whole image (LoveDA prepared whole): no meta.json needed.
    write_submission("loveda", [(images / "42_0_0.png", pred)], tmp_path / "b.zip")
    with zipfile.ZipFile(tmp_path / "b.zip") as archive:
        assert archive.namelist() == ["42.png"]


def test_missing_patches_bad_values_and_existing_zips_leave_no_archive(tmp_path) -> None:
    split = tmp_path / "test"
    (split / "images").mkdir(parents=True)
    meta = {"sources": [{"stem": "seq1_000000", "height": 100, "width": 100}]}
    (split / "meta.json").write_text(json.dumps(meta))
    part = [(split / "images" / "seq1_000000_0_0.png", np.zeros((64, 64), np.uint8))]
    with pytest.raises(DataFormatError, match=r"leave .* pixel\(s\) of its source image uncovered"):
        write_submission("uavid", part, tmp_path / "c.zip")
    assert not (tmp_path / "c.zip").exists()
    with pytest.raises(DataFormatError, match=r"0..6"):
        write_submission("loveda", [(Path("7.png"), np.full((4, 4), 7))], tmp_path / "d.zip")
    assert not (tmp_path / "d.zip").exists() and not list(tmp_path.glob(".d*"))
    twice = [(Path("A/1.png"), np.zeros((4, 4), np.uint8)), (Path("B/1.png"), np.zeros((4, 4)))]
    with pytest.raises(DataFormatError, match=r"'1.png' again"):
        write_submission("loveda", twice, tmp_path / "e.zip")
    (tmp_path / "f.zip").write_bytes(b"old")
    with pytest.raises(OutputExistsError, match=r"f.zip' exists"):
        SubmissionWriter("loveda", tmp_path / "f.zip")
    write_submission(
        "loveda", [(Path("1.png"), np.zeros((4, 4), np.uint8))], tmp_path / "f.zip", overwrite=True
    )
    assert zipfile.is_zipfile(tmp_path / "f.zip")
    with pytest.raises(InvalidOptionError, match=r"must end in \.zip"):
        SubmissionWriter("loveda", tmp_path / "folder")


def test_entries_hold_indices_or_official_colours() -> None:
    pred = np.array([[0, 7], [3, 5]])
    np.testing.assert_array_equal(submission_entry("uavid", pred), _uavid_colours(pred))
    assert submission_entry("loveda", np.array([[6, 0]])).dtype == np.uint8
    with pytest.raises(DataFormatError, match=r"0..7"):
        submission_entry("uavid", np.array([[8]]))
    with pytest.raises(DataFormatError, match=r"H×W"):
        submission_entry("loveda", np.zeros((2, 2, 3), np.uint8))
