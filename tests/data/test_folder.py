import json
from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
from PIL import Image

from lossd.data import SegmentationFolder, get_info
from lossd.data.transforms import train_transform
from lossd.errors import DataFormatError, DatasetNotFoundError, InvalidOptionError
from lossd.io import read_mask, write_mask
from tests.conftest import write_prepared_split


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write_prepared_split(tmp_path, "train", 5, size=32, seed=1)
    write_prepared_split(tmp_path, "val", 3, size=32, seed=2)
    return tmp_path


def test_sample_types_shapes_and_pairing(root: Path) -> None:
    data = SegmentationFolder(root, "train", "potsdam")
    assert len(data) == 5
    sample = data[2]
    assert sample["image"].dtype == torch.float32 and sample["image"].shape == (3, 32, 32)
    assert sample["mask"].dtype == torch.int64 and sample["mask"].shape == (32, 32)
    assert sample["name"] == "img002_0_0"
    # Without augmentation the mask is the file, pixel for pixel.
    expected = read_mask(root / "train" / "masks" / "img002_0_0.png")
    assert torch.equal(sample["mask"], torch.from_numpy(expected).long())
    # Default transform is ImageNet normalisation: a zero-mean-ish float image.
    assert sample["image"].abs().max() < 3.0


def test_several_splits_concatenate(root: Path) -> None:
    assert len(SegmentationFolder(root, ["train", "val"], "potsdam")) == 8


def test_missing_folder_names_path_and_how_to_prepare(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"prepare_data\.py potsdam") as info:
        SegmentationFolder(tmp_path / "nowhere", "train", "potsdam")
    assert str(tmp_path / "nowhere") in str(info.value)


def test_empty_folder_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "train" / "images").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="no prepared images"):
        SegmentationFolder(tmp_path, "train", "potsdam")


def test_image_without_mask_is_named(root: Path) -> None:
    (root / "train" / "masks" / "img001_0_0.png").unlink()
    with pytest.raises(DataFormatError, match="img001_0_0"):
        SegmentationFolder(root, "train", "potsdam")


def test_bad_label_value_names_file_and_value(root: Path) -> None:
    bad = np.zeros((32, 32), np.uint8)
    bad[3, 4] = 9  # potsdam has 6 classes; 9 is neither a class nor 255
    write_mask(root / "train" / "masks" / "img003_0_0.png", bad)
    data = SegmentationFolder(root, "train", "potsdam")
    with pytest.raises(DataFormatError, match=r"img003_0_0\.png.*value 9"):
        data[3]


def test_ignore_value_is_accepted(root: Path) -> None:
    mask = np.full((32, 32), 255, np.uint8)
    write_mask(root / "train" / "masks" / "img000_0_0.png", mask)
    data = SegmentationFolder(root, "train", "potsdam")
    assert int(data[0]["mask"].unique()[0]) == 255


def test_size_mismatch_is_reported(root: Path) -> None:
    write_mask(root / "train" / "masks" / "img000_0_0.png", np.zeros((16, 32), np.uint8))
    with pytest.raises(DataFormatError, match=r"img000_0_0.*32×16"):
        SegmentationFolder(root, "train", "potsdam")[0]


def test_split_without_masks(tmp_path: Path) -> None:
    write_prepared_split(tmp_path, "test", 2, with_masks=False)
    with pytest.raises(DatasetNotFoundError, match="no masks folder"):
        SegmentationFolder(tmp_path, "test", "potsdam")
    data = SegmentationFolder(tmp_path, "test", "potsdam", require_masks=False)
    assert bool((data[0]["mask"] == 255).all())


def test_augmentation_is_reproducible_per_epoch_and_index(root: Path) -> None:
    transform = train_transform(crop_size=24, hflip=True, vflip=True, rotate90=True)
    a = SegmentationFolder(root, "train", "potsdam", transform=transform, seed=3)
    b = SegmentationFolder(root, "train", "potsdam", transform=transform, seed=3)
    # Order of access must not matter (workers read in any order).
    first = [a[i]["mask"] for i in range(5)]
    second = [b[i]["mask"] for i in reversed(range(5))][::-1]
    assert all(torch.equal(x, y) for x, y in zip(first, second, strict=True))
    a.set_epoch(1)
    changed = [not torch.equal(a[i]["mask"], first[i]) for i in range(5)]
    assert any(changed)


def test_crop_larger_than_image_pads_with_ignore(root: Path) -> None:
    transform = train_transform(crop_size=40, hflip=False)
    sample = SegmentationFolder(root, "train", "potsdam", transform=transform)[0]
    assert sample["mask"].shape == (40, 40)
    assert int((sample["mask"] == 255).sum()) == 40 * 40 - 32 * 32


def test_mosaic_keeps_size_and_mixes_sources(root: Path) -> None:
    data = SegmentationFolder(root, "train", "potsdam", mosaic_ratio=1.0)
    plain = SegmentationFolder(root, "train", "potsdam")
    mosaic = data[0]["mask"]
    assert mosaic.shape == (32, 32)
    assert not torch.equal(mosaic, plain[0]["mask"])
    with pytest.raises(InvalidOptionError, match="mosaic_ratio"):
        SegmentationFolder(root, "train", "potsdam", mosaic_ratio=1.5)


def write_position_coded_split(root: Path, count: int, size: int) -> None:
    """Images whose pixels say where they come from: R = row, G = column, B = sample."""
    rows, cols = np.mgrid[0:size, 0:size]
    for index in range(count):
        image = np.stack([rows, cols, np.full_like(rows, index)], axis=-1).astype(np.uint8)
        name = f"pos{index:03d}_0_0.png"
        (root / "train" / "images").mkdir(parents=True, exist_ok=True)
        (root / "train" / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / "train" / "images" / name)
        write_mask(root / "train" / "masks" / name, np.zeros((size, size), np.uint8))


def seam(line: np.ndarray) -> int:
    """First index along a [3, n] line of position codes where one window ends."""
    for i in range(1, line.shape[1]):
        step = line[:, i] - line[:, i - 1]
        if not (np.count_nonzero(step) == 1 and step.sum() == 1 and step[2] == 0):
            return i
    return line.shape[1]


def test_mosaic_quadrants_are_random_crops_as_geoseg_draws_them(tmp_path: Path) -> None:
    """GeoSeg potsdam_dataset.py:117-152: centre in [w//4, w - w//4]; each quadrant, A too,
    a random crop of its size from its own sample (A from the sample itself)."""
    size = 32
    write_position_coded_split(tmp_path, 6, size)
    offsets_a, centres = set(), set()
    for seed in range(12):
        data = SegmentationFolder(
            tmp_path, "train", "potsdam", transform=A.Compose([]), mosaic_ratio=1.0, seed=seed
        )
        index = seed % 6
        image = data[index]["image"].numpy().astype(int)  # [3, H, W]: row, col, sample
        cy, cx = seam(image[:, :, 0]), seam(image[:, 0, :])
        assert size // 4 <= cy <= size - size // 4 and size // 4 <= cx <= size - size // 4
        # quadrant A: one contiguous window of the sample itself
        quadrant = image[:, :cy, :cx]
        assert (quadrant[2] == index).all()
        sy, sx = int(quadrant[0, 0, 0]), int(quadrant[1, 0, 0])
        assert np.array_equal(quadrant[0], sy + np.arange(cy)[:, None] + 0 * quadrant[0])
        assert np.array_equal(quadrant[1], sx + np.arange(cx)[None, :] + 0 * quadrant[1])
        assert 0 <= sy <= size - cy and 0 <= sx <= size - cx
        # the other quadrants are contiguous windows of one sample each
        for y0, y1, x0, x1 in ((0, cy, cx, size), (cy, size, 0, cx), (cy, size, cx, size)):
            part = image[:, y0:y1, x0:x1]
            if part.size == 0:
                continue
            assert (part[2] == part[2, 0, 0]).all()
            assert np.array_equal(
                part[0] - part[0, 0, 0], np.arange(y1 - y0)[:, None] + 0 * part[0]
            )
        offsets_a.add((sy, sx))
        centres.add((cy, cx))
    assert len(offsets_a) > 3 and len(centres) > 3  # quadrant A moves with the seed


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(InvalidOptionError, match="potsdam"):
        get_info("vaihingen2")


def write_padded_meta(root: Path, split: str, dataset: str = "potsdam") -> None:
    """meta.json of GeoSeg-style patches: img000 starts 5 rows and 7 columns above/left of its
    source (top/left padding), img001 is fully inside, img002 is padded at the bottom/right."""
    patches = [
        {"name": "img000_0_0", "row": -5, "col": -7, "height": 27, "width": 25, "files": {}},
        {"name": "img001_0_0", "row": 0, "col": 0, "height": 32, "width": 32, "files": {}},
        {"name": "img002_0_0", "row": 40, "col": 40, "height": 30, "width": 31, "files": {}},
    ]
    meta = {"dataset": dataset, "split": split, "preparation_version": 2,
            "sources": [{"stem": "img", "patches": patches}]}  # fmt: skip
    (root / split / "meta.json").write_text(json.dumps(meta))


def test_padding_label_relabels_the_padding_before_augmentation(root: Path) -> None:
    write_padded_meta(root, "train")
    raw = read_mask(root / "train" / "masks" / "img000_0_0.png")
    kept = SegmentationFolder(root, "train", "potsdam", transform=A.Compose([]))
    assert np.array_equal(kept[0]["mask"].numpy(), raw)  # heldout: the file as it is
    data = SegmentationFolder(root, "train", "potsdam", transform=A.Compose([]), padding_label=0)
    mask = data[0]["mask"].numpy()
    # by hand: rows 0-4 and columns 0-6 are padding (class 0), the rest is the file
    expected = raw.copy()
    expected[:5, :] = 0
    expected[:, :7] = 0
    assert np.array_equal(mask, expected)
    assert data.source_box("img000_0_0") == (5, 32, 7, 32)
    assert np.array_equal(data[1]["mask"].numpy(), read_mask(root / "train/masks/img001_0_0.png"))
    bottom = data[2]["mask"].numpy()  # 30 source rows, 31 columns: the rest is padding
    assert (bottom[30:] == 0).all() and (bottom[:, 31:] == 0).all()
    raw2 = read_mask(root / "train" / "masks" / "img002_0_0.png")
    assert np.array_equal(bottom[:30, :31], raw2[:30, :31])
    # before the augmentation: a crop of the top-left corner is all padding
    corner = SegmentationFolder(
        root, "train", "potsdam", transform=A.Compose([A.Crop(0, 0, 5, 7)]), padding_label=3
    )
    assert (corner[0]["mask"] == 3).all()


def test_padding_label_needs_meta_and_a_class(root: Path) -> None:
    with pytest.raises(DataFormatError, match=r"meta\.json"):
        SegmentationFolder(root, "train", "potsdam", padding_label=0)
    write_padded_meta(root, "train")
    with pytest.raises(InvalidOptionError, match="padding_label=6"):
        SegmentationFolder(root, "train", "potsdam", padding_label=6)


def test_a_split_of_an_older_preparation_is_refused_with_the_command(root: Path) -> None:
    write_padded_meta(root, "train")
    meta = json.loads((root / "train" / "meta.json").read_text())
    meta.update(preparation_version=1, src="/raw/potsdam")
    (root / "train" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataFormatError, match="version 1") as info:
        SegmentationFolder(root, "train", "potsdam")
    assert "prepare_data.py potsdam --src /raw/potsdam" in str(info.value)
    # the same folder declared as another dataset's is not judged by Potsdam's versions
    meta["dataset"] = "loveda"
    (root / "train" / "meta.json").write_text(json.dumps(meta))
    SegmentationFolder(root, "train", "potsdam")
