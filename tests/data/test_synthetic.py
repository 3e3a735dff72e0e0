import json

import cv2
import numpy as np
import pytest
from matplotlib.figure import Figure

from lossd.data import potsdam
from lossd.data.synthetic import (
    GENERATOR_VERSION,
    INFO,
    generate_tile,
    plot_sample,
    prepare_synthetic,
)
from lossd.data.synthetic import prepare as synthetic_prepare
from lossd.errors import InvalidOptionError, OutputExistsError
from lossd.io import read_image, read_mask

CAR = 4
SMALL = {"tile_size": 64, "num_train": 3, "num_val": 2, "num_test": 1, "progress": False}


@pytest.fixture(scope="module")
def tiles() -> list[tuple[np.ndarray, np.ndarray]]:
    return [generate_tile(np.random.default_rng(seed)) for seed in range(10)]


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _mtimes(root):
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_info_follows_the_potsdam_protocol():
    assert INFO.name == "synthetic"
    assert INFO.classes == potsdam.CLASSES
    assert INFO.palette == potsdam.PALETTE
    assert INFO.eval_classes == (0, 1, 2, 3, 4)
    assert INFO.ignore_index == 255


def test_tile_is_rgb_uint8_with_class_indices(tiles):
    for image, mask in tiles:
        assert image.shape == (256, 256, 3) and image.dtype == np.uint8
        assert mask.shape == (256, 256) and mask.dtype == np.uint8
        assert mask.max() <= 5
        assert image.std() > 10  # not a flat colour


@pytest.mark.parametrize("size", [64, 97])
def test_any_size_from_64_works(size):
    image, mask = generate_tile(np.random.default_rng(3), size)
    assert image.shape == (size, size, 3)
    assert mask.shape == (size, size)
    assert mask.max() <= 5


def test_same_seed_gives_identical_tiles_and_other_seeds_differ():
    image_a, mask_a = generate_tile(np.random.default_rng(42))
    image_b, mask_b = generate_tile(np.random.default_rng(42))
    image_c, mask_c = generate_tile(np.random.default_rng(43))
    assert np.array_equal(image_a, image_b) and np.array_equal(mask_a, mask_b)
    assert not np.array_equal(image_a, image_c)
    assert not np.array_equal(mask_a, mask_c)


def test_every_class_appears_with_a_useful_share(tiles):
    counts = np.bincount(np.concatenate([m.ravel() for _, m in tiles]), minlength=6)
    share = counts / counts.sum()
    assert (share[[0, 1, 2, 3]] > 0.05).all(), share
    assert share[CAR] > 0.01, share
    assert share[5] > 0.001, share  # clutter is rare (it is not evaluated)


def test_cars_are_small_separate_objects(tiles):
    lengths, widths = [], []
    for _, mask in tiles:
        count, labels = cv2.connectedComponents((mask == CAR).astype(np.uint8), connectivity=8)
        for index in range(1, count):
            ys, xs = np.nonzero(labels == index)
            if min(ys.min(), xs.min()) == 0 or max(ys.max(), xs.max()) == mask.shape[0] - 1:
                continue  # cut by the tile border: not a whole car
            points = np.stack([xs, ys], axis=1).astype(np.float32)
            _, (w, h), _ = cv2.minAreaRect(points)
            lengths.append(max(w, h))
            widths.append(min(w, h))
    assert len(lengths) > 50  # many cars, not a few blobs
    # Each component is one car (at most 15 × 6.6 px, any angle): two touching cars would
    # make a component at least 11 px wide or 22 px long.
    assert max(lengths) <= 18
    assert max(widths) <= 9
    assert np.median(lengths) >= 9  # and not specks


@pytest.mark.parametrize("size", [63, 64.0, True, "256"])
def test_generate_tile_rejects_bad_sizes(size):
    with pytest.raises(InvalidOptionError, match=r"size=.*expected an integer >= 64"):
        generate_tile(np.random.default_rng(0), size)


@pytest.mark.parametrize("rng", [0, np.random.RandomState(0)])
def test_generate_tile_needs_a_generator(rng):
    with pytest.raises(InvalidOptionError, match=r"numpy\.random\.Generator"):
        generate_tile(rng)


def test_prepare_writes_the_layout_and_meta(tmp_path):
    root = prepare_synthetic(tmp_path / "synthetic", seed=7, **SMALL)
    assert root == tmp_path / "synthetic"
    expected = ["meta.json"]
    for split, count in [("test", 1), ("train", 3), ("val", 2)]:
        for kind in ("images", "masks"):
            expected += [f"{split}/{kind}/tile{i:05d}_0_0.png" for i in range(count)]
    assert _files(root) == sorted(expected)
    meta = json.loads((root / "meta.json").read_text())
    assert meta == {
        "generator": "lossd.data.synthetic",
        "generator_version": GENERATOR_VERSION,
        "tile_size": 64,
        "num_train": 3,
        "num_val": 2,
        "num_test": 1,
        "seed": 7,
    }
    image = read_image(root / "train/images/tile00001_0_0.png")
    mask = read_mask(root / "train/masks/tile00001_0_0.png")
    assert image.shape == (64, 64, 3) and mask.shape == (64, 64)
    assert mask.max() <= 5
    # The splits hold different tiles.
    other = read_image(root / "val/images/tile00001_0_0.png")
    assert not np.array_equal(image, other)
    assert not list(tmp_path.glob(".synthetic.*"))  # no temporary folder left behind


def test_prepare_is_idempotent(tmp_path):
    root = prepare_synthetic(tmp_path / "data", **SMALL)
    before = _mtimes(root)
    prepare_synthetic(tmp_path / "data", **SMALL)
    assert _mtimes(root) == before


def test_two_runs_write_identical_bytes(tmp_path):
    first = prepare_synthetic(tmp_path / "a", **SMALL)
    second = prepare_synthetic(tmp_path / "b", **SMALL)
    assert _files(first) == _files(second)
    for name in _files(first):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_tiles_do_not_change_when_counts_change(tmp_path):
    small = prepare_synthetic(tmp_path / "a", **SMALL)
    large = prepare_synthetic(tmp_path / "b", **{**SMALL, "num_train": 5, "num_val": 0})
    for name in ("train/images/tile00002_0_0.png", "train/masks/tile00002_0_0.png"):
        assert (small / name).read_bytes() == (large / name).read_bytes()
    assert not list((large / "val/images").iterdir())


def test_prepare_regenerates_when_parameters_change(tmp_path):
    root = prepare_synthetic(tmp_path / "data", **SMALL)
    old_image = (root / "train/images/tile00000_0_0.png").read_bytes()
    prepare_synthetic(root, **{**SMALL, "seed": 1, "num_train": 2})
    assert json.loads((root / "meta.json").read_text())["seed"] == 1
    assert (root / "train/images/tile00000_0_0.png").read_bytes() != old_image
    assert not (root / "train/images/tile00002_0_0.png").exists()  # nothing stale kept


def test_prepare_regenerates_when_the_generator_changes(tmp_path, monkeypatch):
    """A new generator version rebuilds every tile with the new generator: the content on disk
    is the new generator's (not only the version in meta.json), and no old tile is left."""
    root = prepare_synthetic(tmp_path / "data", **SMALL)
    old_files = {name: (root / name).read_bytes() for name in _files(root) if name.endswith(".png")}
    real = synthetic_prepare.generate_tile

    def new_generator(rng, size=256):  # a changed generator: other pixels, other labels
        image, mask = real(rng, size)
        return 255 - image, (mask + 1) % len(INFO.classes)

    monkeypatch.setattr(synthetic_prepare, "generate_tile", new_generator)
    monkeypatch.setattr(synthetic_prepare, "GENERATOR_VERSION", GENERATOR_VERSION + 1)
    prepare_synthetic(root, **SMALL)
    meta = json.loads((root / "meta.json").read_text())
    assert meta["generator_version"] == GENERATOR_VERSION + 1
    counts = {"train": SMALL["num_train"], "val": SMALL["num_val"], "test": SMALL["num_test"]}
    expected = set()
    for split, count in counts.items():
        for index in range(count):
            stem = f"{split}/%s/tile{index:05d}_0_0.png"
            image, mask = new_generator(synthetic_prepare.tile_rng(0, split, index), 64)
            assert np.array_equal(read_image(root / (stem % "images")), image), stem
            assert np.array_equal(read_mask(root / (stem % "masks")), mask), stem
            expected |= {stem % "images", stem % "masks"}
    assert {name for name in _files(root) if name.endswith(".png")} == expected
    assert all((root / name).read_bytes() != data for name, data in old_files.items())


def _fail_on_third_call(monkeypatch):
    real = synthetic_prepare.generate_tile
    calls = []

    def flaky(rng, size=256):
        calls.append(size)
        if len(calls) == 3:
            raise RuntimeError("generator crashed")
        return real(rng, size)

    monkeypatch.setattr(synthetic_prepare, "generate_tile", flaky)


def test_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    _fail_on_third_call(monkeypatch)
    with pytest.raises(RuntimeError, match="generator crashed"):
        prepare_synthetic(tmp_path / "data", **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_failure_midway_keeps_the_old_dataset(tmp_path, monkeypatch):
    root = prepare_synthetic(tmp_path / "data", **SMALL)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    _fail_on_third_call(monkeypatch)
    with pytest.raises(RuntimeError, match="generator crashed"):
        prepare_synthetic(root, **{**SMALL, "seed": 5})
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_prepare_refuses_to_replace_a_foreign_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("do not delete")
    with pytest.raises(OutputExistsError, match=r"dataset\.root=.*mine.*not a synthetic dataset"):
        prepare_synthetic(tmp_path / "mine", **SMALL)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "do not delete"
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputExistsError):
        prepare_synthetic(tmp_path / "file", **SMALL)


def test_prepare_fills_an_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    root = prepare_synthetic(tmp_path / "empty", **SMALL)
    assert (root / "meta.json").is_file()


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"tile_size": 32}, r"tile_size=32; expected an integer >= 64"),
        ({"tile_size": 64.5}, r"tile_size=64\.5"),
        ({"num_train": 0}, r"num_train=0; expected an integer >= 1"),
        ({"num_val": -1}, r"num_val=-1; expected an integer >= 0"),
        ({"num_test": None}, r"num_test=None"),
        ({"seed": -3}, r"seed=-3; expected an integer >= 0"),
    ],
)
def test_prepare_validates_arguments(tmp_path, override, match):
    with pytest.raises(InvalidOptionError, match=match):
        prepare_synthetic(tmp_path / "data", **{**SMALL, **override})
    assert not (tmp_path / "data").exists()


def test_prepare_restores_the_opencv_thread_count(tmp_path):
    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        prepare_synthetic(tmp_path / "data", **SMALL)
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(before)


def test_prepare_shows_progress(tmp_path, capsys):
    prepare_synthetic(tmp_path / "data", **{**SMALL, "progress": True})
    assert "6/6" in capsys.readouterr().err


def test_plot_sample_returns_a_figure(tiles):
    image, mask = tiles[0]
    fig = plot_sample(image, mask)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    assert len(plot_sample(image, mask, prediction=mask).axes) == 3
