from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
from PIL import Image

from lossd.data import SegmentationFolder, get_info
from lossd.data.transforms import train_transform
from lossd.errors import DataFormatError, DatasetNotFoundError, InvalidOptionError
from lossd.io import read_image, read_mask, write_mask
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


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(InvalidOptionError, match="potsdam"):
        get_info("vaihingen2")


def test_flip_copies_serve_each_patch_three_times_flipped_before_augmentation(
    root: Path,
) -> None:
    plain = SegmentationFolder(root, "train", "potsdam", transform=A.Compose([]))
    data = SegmentationFolder(
        root, "train", "potsdam", transform=A.Compose([]), flip_copies=True, mosaic_ratio=0.0
    )
    assert len(plain) == 5 and len(data) == 15
    epoch = [data[i] for i in range(len(data))]
    names = [sample["name"] for sample in epoch]
    assert len(set(names)) == 15
    for i, stem in enumerate(f"img{j:03d}_0_0" for j in range(5)):
        assert names[3 * i : 3 * i + 3] == [stem, f"{stem}+hflip", f"{stem}+vflip"]
        image = read_image(root / "train" / "images" / f"{stem}.png")
        mask = read_mask(root / "train" / "masks" / f"{stem}.png")
        # The original's flips: PIL FLIP_LEFT_RIGHT and FLIP_TOP_BOTTOM (torchvision hflip/vflip).
        expected = [
            mask,
            np.asarray(Image.fromarray(mask).transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
            np.asarray(Image.fromarray(mask).transpose(Image.Transpose.FLIP_TOP_BOTTOM)),
        ]
        assert np.array_equal(expected[1], mask[:, ::-1]) and not np.array_equal(expected[1], mask)
        for k in range(3):
            sample = epoch[3 * i + k]
            assert np.array_equal(sample["mask"].numpy(), expected[k])
        flipped = epoch[3 * i + 1]["image"].numpy().transpose(1, 2, 0)
        assert np.array_equal(flipped, image[:, ::-1].astype(np.float32))
    # Flip first, then augment: cropping the top-left corner of the left-right copy gives the
    # mirrored top-right corner of the patch (cropping first would mirror the top-left one).
    corner = SegmentationFolder(
        root, "train", "potsdam", transform=A.Compose([A.Crop(0, 0, 8, 8)]), flip_copies=True
    )
    mask = read_mask(root / "train" / "masks" / "img000_0_0.png")
    assert np.array_equal(corner[1]["mask"].numpy(), mask[:8, -8:][:, ::-1])
    assert np.array_equal(corner[2]["mask"].numpy(), mask[-8:, :8][::-1])
