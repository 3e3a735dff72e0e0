"""Prediction of user images and rasters (lossd.engine.predict, scripts/predict.py)."""

import dataclasses
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from rasterio.crs import CRS

from lossd.data.synthetic import INFO
from lossd.engine.inference import InferenceOptions, predict_logits
from lossd.engine.predict import Predictor, predict_paths, predict_submission
from lossd.errors import (
    CheckpointError,
    DataFormatError,
    DatasetNotFoundError,
    InvalidOptionError,
    OutputExistsError,
)
from lossd.io import read_image, read_mask, write_geotiff, write_image
from lossd.io.colours import colorize
from tests.engine.test_evaluate import make_checkpoint

ROOT = Path(__file__).resolve().parents[2]
OPTIONS = InferenceOptions(patch_size=32, overlap=0.25, batch_size=1, blend="gaussian")
CRS_UTM = CRS.from_epsg(32633)
TRANSFORM = Affine(0.05, 0.0, 368000.0, 0.0, -0.05, 5810000.0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ckpt")
    return make_checkpoint(folder / "best.ckpt", folder)


@pytest.fixture(scope="module")
def predictor(checkpoint) -> Predictor:
    return Predictor.from_checkpoint(checkpoint, OPTIONS, "cpu", progress=False)


def _in_memory(predictor: Predictor, image: np.ndarray) -> np.ndarray:
    """Reference: the whole image as one tensor through predict_logits (no raster windows)."""
    tensor = predictor.inference.normalize(np.moveaxis(image, -1, 0))
    # The normalisation is ImageNet's, as in training (numpy in float64 for comparison).
    mean = np.array([0.485, 0.456, 0.406]) * 255
    std = np.array([0.229, 0.224, 0.225]) * 255
    by_numpy = ((image - mean) / std).transpose(2, 0, 1)[None]
    np.testing.assert_allclose(tensor.numpy(), by_numpy, rtol=0, atol=1e-5)
    options = predictor.options
    logits = predict_logits(
        predictor.model,
        tensor,
        options.tta,
        None,
        options.patch_size,
        options.overlap,
        options.batch_size,
        options.blend,
    )
    return logits[0].argmax(0).to(torch.uint8).numpy()


def _geotiff(path: Path, height: int, width: int, bands: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, bands), dtype=np.uint8)
    write_geotiff(path, image, crs=CRS_UTM, transform=TRANSFORM)
    return image


def test_windowed_geotiff_prediction_equals_in_memory_prediction(tmp_path, predictor) -> None:
    image = _geotiff(tmp_path / "tile.tif", 131, 110)
    written = predict_paths(predictor, [tmp_path / "tile.tif"], tmp_path / "out")
    assert sorted(p.name for p in written) == ["tile.tif", "tile_colour.png", "tile_overlay.png"]

    with rasterio.open(tmp_path / "out" / "tile.tif") as dst:
        assert (dst.count, dst.dtypes[0], dst.height, dst.width) == (1, "uint8", 131, 110)
        assert dst.crs == CRS_UTM and dst.transform == TRANSFORM
        assert dst.colormap(1)[1] == (*INFO.palette[1], 255)
        pred = dst.read(1)
    expected = _in_memory(predictor, image)
    assert len(np.unique(expected)) > 1
    np.testing.assert_array_equal(pred, expected)  # the same windows, batches and blending
    np.testing.assert_array_equal(
        read_image(tmp_path / "out" / "tile_colour.png"), colorize(pred, INFO.palette)
    )
    blend = read_image(tmp_path / "out" / "tile_overlay.png").astype(int)
    half = (image.astype(int) + colorize(pred, INFO.palette).astype(int)) / 2
    assert np.abs(blend - half).max() <= 1


def test_png_in_gives_index_and_colour_pngs(tmp_path, predictor) -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)
    write_image(tmp_path / "in" / "photo.png", image)
    write_image(tmp_path / "in" / "sub" / "other.jpg", image)
    written = predict_paths(predictor, [tmp_path / "in"], tmp_path / "out", ["indices", "colour"])
    assert sorted(p.name for p in written) == [
        "other.png",
        "other_colour.png",
        "photo.png",
        "photo_colour.png",
    ]
    indices = read_mask(tmp_path / "out" / "photo.png")
    assert indices.shape == (40, 70) and indices.max() < INFO.num_classes
    np.testing.assert_array_equal(indices, predictor.predict_array(image))
    np.testing.assert_array_equal(
        read_image(tmp_path / "out" / "photo_colour.png"), colorize(indices, INFO.palette)
    )


def test_wrong_band_count_names_the_file_and_the_fix(tmp_path, predictor) -> None:
    image = _geotiff(tmp_path / "rgbir.tif", 50, 60, bands=4)
    with pytest.raises(DataFormatError, match=r"rgbir.tif' has 4 band\(s\); the network takes 3"):
        predict_paths(predictor, [tmp_path / "rgbir.tif"], tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    picked = dataclasses.replace(predictor, bands=(3, 2, 1))
    predict_paths(picked, [tmp_path / "rgbir.tif"], tmp_path / "out", ["indices"])
    with rasterio.open(tmp_path / "out" / "rgbir.tif") as dst:
        pred = dst.read(1)
    np.testing.assert_array_equal(pred, _in_memory(picked, image[:, :, [2, 1, 0]]))
    with pytest.raises(InvalidOptionError, match=r"3 band numbers"):
        dataclasses.replace(predictor, bands=(1, 2))


def test_unreadable_and_non_8bit_files_are_named(tmp_path, predictor) -> None:
    (tmp_path / "broken.tif").write_bytes(b"II*\x00 not really a tiff")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n garbage")
    for name in ("broken.tif", "broken.png"):
        with pytest.raises(DataFormatError, match=f"cannot read '.*{name}'"):
            predict_paths(predictor, [tmp_path / name], tmp_path / "out")
    with rasterio.open(
        tmp_path / "float.tif", "w", driver="GTiff", height=8, width=8, count=3, dtype="float32"
    ) as dst:
        dst.write(np.zeros((3, 8, 8), np.float32))
    with pytest.raises(DataFormatError, match=r"float.tif' holds float32 values; expected 8-bit"):
        predict_paths(predictor, [tmp_path / "float.tif"], tmp_path / "out")
    with pytest.raises(DatasetNotFoundError, match=r"input '.*missing.png' not found"):
        predict_paths(predictor, [tmp_path / "missing.png"], tmp_path / "out")


def test_existing_outputs_are_refused_unless_overwrite(tmp_path, predictor) -> None:
    write_image(tmp_path / "a.png", np.zeros((20, 20, 3), np.uint8))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a_colour.png").write_bytes(b"keep me")
    with pytest.raises(OutputExistsError, match=r"a_colour.png' exists.*--overwrite"):
        predict_paths(predictor, [tmp_path / "a.png"], tmp_path / "out")
    assert (tmp_path / "out" / "a_colour.png").read_bytes() == b"keep me"
    assert not (tmp_path / "out" / "a.png").exists()  # nothing written before the check
    predict_paths(predictor, [tmp_path / "a.png"], tmp_path / "out", overwrite=True)
    assert read_image(tmp_path / "out" / "a_colour.png").shape == (20, 20, 3)
    with pytest.raises(InvalidOptionError, match=r"replace the input image itself"):
        predict_paths(predictor, [tmp_path / "out" / "a.png"], tmp_path / "out", overwrite=True)


def test_checkpoint_for_another_class_count_or_model(tmp_path, checkpoint) -> None:
    with pytest.raises(CheckpointError, match=r"trained for 6 classes \(dataset synthetic\)"):
        Predictor.from_checkpoint(checkpoint, OPTIONS, "cpu", expect_num_classes=7)
    with pytest.raises(CheckpointError, match=r"holds a 'fcn' model.*expected 'sfanet'"):
        Predictor.from_checkpoint(checkpoint, OPTIONS, "cpu", expect_model="sfanet")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk.ckpt"):
        Predictor.from_checkpoint(tmp_path / "junk.ckpt", OPTIONS, "cpu")


def test_loveda_submission_from_raw_test_images(tmp_path, predictor) -> None:
    checkpoint = make_checkpoint(tmp_path / "loveda.ckpt", tmp_path, "loveda")
    loveda = Predictor.from_checkpoint(checkpoint, OPTIONS, "cpu", progress=False)
    rng = np.random.default_rng(5)
    images = {}
    for scene, image_id in (("Rural", "4191"), ("Urban", "5107")):
        images[image_id] = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        write_image(tmp_path / "Test" / scene / "images_png" / f"{image_id}.png", images[image_id])
    summary = predict_submission(loveda, [tmp_path / "Test"], "loveda", tmp_path / "sub.zip")
    assert summary.entries == ["4191.png", "5107.png"] and not summary.complete
    with zipfile.ZipFile(tmp_path / "sub.zip") as archive:
        for image_id, image in images.items():
            data = np.frombuffer(archive.read(f"{image_id}.png"), np.uint8)
            stored = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
            assert stored.ndim == 2 and stored.dtype == np.uint8 and stored.max() <= 6
            np.testing.assert_array_equal(stored, loveda.predict_array(image))
    with pytest.raises(OutputExistsError):
        predict_submission(loveda, [tmp_path / "Test"], "loveda", tmp_path / "sub.zip")
    with pytest.raises(CheckpointError, match=r"6 classes.*loveda submission needs 7"):
        predict_submission(predictor, [tmp_path / "Test"], "loveda", tmp_path / "other.zip")


@pytest.mark.slow
def test_cli_predicts_a_geotiff_and_refuses_to_overwrite(tmp_path, checkpoint) -> None:
    _geotiff(tmp_path / "tile.tif", 70, 90)
    command = [
        sys.executable,
        str(ROOT / "scripts" / "predict.py"),
        str(tmp_path / "tile.tif"),
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(tmp_path / "out"),
        "--device",
        "cpu",
        "--patch-size",
        "64",
        "48",
        "--tta",
        "flip",
        "--format",
        "indices",
        "colour",
        "--no-progress",
    ]
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["tile.tif", "tile_colour.png"]
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines()[-1].startswith("error: output ")
    assert "--overwrite" in again.stderr


def test_geoseg_padded_tiling_is_refused_for_a_raster_read_by_windows(tmp_path, checkpoint) -> None:
    _geotiff(tmp_path / "tile.tif", 40, 50)
    options = InferenceOptions(patch_size=(32, 32), pad="top_left", blend="uniform")
    padded = Predictor.from_checkpoint(checkpoint, options, "cpu", progress=False)
    with pytest.raises(InvalidOptionError, match=r"pad='top_left'.*not to rasters"):
        predict_paths(padded, [tmp_path / "tile.tif"], tmp_path / "out")
    # a PNG is held whole: the padded tiling applies
    write_image(tmp_path / "photo.png", read_image(tmp_path / "tile.tif"))
    written = predict_paths(padded, [tmp_path / "photo.png"], tmp_path / "png", ["indices"])
    assert read_mask(written[0]).shape == (40, 50)
