"""UAVid preparation: both frame widths, every class colour, patch geometry, bad input."""

import json

import numpy as np
import pytest
from PIL import Image

from lossd.data import uavid
from lossd.data.prepare import prepare_uavid
from lossd.errors import DataFormatError, DatasetNotFoundError
from lossd.io import read_image, read_mask
from tests.data.uavid import RELEASE, write_uavid

PATCH = 64  # 1024 / 16: with frames scaled by 1/16 the real patch geometry is kept


@pytest.fixture
def fake(tmp_path):
    return write_uavid(tmp_path / "raw", scale=16)


def stitch(split_dir, source, folder, channels=None):
    shape = (source["height"], source["width"]) + ((channels,) if channels else ())
    canvas = np.full(shape, 77, np.uint8)
    for patch in source["patches"]:
        name = patch["name"]
        data = (read_image if channels else read_mask)(split_dir / folder / f"{name}.png")
        assert data.shape[:2] == (PATCH, PATCH)
        r, c, h, w = patch["row"], patch["col"], patch["height"], patch["width"]
        assert (data[h:] == (0 if channels else 255)).all()  # bottom padding
        assert (data[:, w:] == (0 if channels else 255)).all()  # right padding
        canvas[r : r + h, c : c + w] = data[:h, :w]
    return canvas


def test_frames_of_both_widths_stitch_back_pixel_by_pixel(fake, tmp_path):
    dst = tmp_path / "out"
    summary = prepare_uavid(fake.root, dst, patch_size=PATCH, progress=False)
    # 135×240 -> 3×4 patches, 135×256 -> 3×4 patches (as 2160×3840 and 2160×4096 with 1024)
    assert {s: summary[s].patches for s in summary} == {"train": 36, "val": 24, "test": 24}
    for split in ("train", "val", "test"):
        meta = json.loads((dst / split / "meta.json").read_text())
        assert [s["stem"] for s in meta["sources"]] == fake.stems(split)
        for source in meta["sources"]:
            stem = source["stem"]
            assert (source["height"], source["width"]) == fake.images[stem].shape[:2]
            assert [p["row"] for p in source["patches"]][::4] == [0, 64, 128]
            widths = [p["width"] for p in source["patches"][:4]]
            assert widths == ([64, 64, 64, 48] if source["width"] == 240 else [64] * 4)
            assert np.array_equal(stitch(dst / split, source, "images", 3), fake.images[stem])
            if split == "test":
                assert not (dst / "test" / "masks").exists()
                continue
            masks = stitch(dst / split, source, "masks")
            assert np.array_equal(masks, fake.classes[stem])
            assert set(np.unique(masks)) == set(range(8))
    assert (dst / "train" / "images" / "seq1_000100_128_192.png").is_file()
    assert meta["sources"][0]["files"]["image"] == f"{RELEASE}/uavid_test/seq21/Images/000000.png"


def test_overlapping_stride_patches_agree(fake, tmp_path):
    dst = tmp_path / "out"
    prepare_uavid(
        fake.root, dst, splits=["val"], patch_size=(48, 64), stride=(40, 50), progress=False
    )
    meta = json.loads((dst / "val" / "meta.json").read_text())
    source = meta["sources"][0]
    rows = sorted({p["row"] for p in source["patches"]})
    cols = sorted({p["col"] for p in source["patches"]})
    assert rows == [0, 40, 80, 120] and cols == [0, 50, 100, 150, 200]  # 135×256 frame
    for patch in source["patches"]:
        mask = read_mask(dst / "val" / "masks" / f"{patch['name']}.png")
        r, c, h, w = patch["row"], patch["col"], patch["height"], patch["width"]
        assert np.array_equal(mask[:h, :w], fake.classes[source["stem"]][r : r + h, c : c + w])


def test_colour_decoding_matches_the_documented_order():
    assert uavid.CLASSES[5] == "static_car" and uavid.LABEL_COLOURS[(192, 0, 192)] == 5
    assert uavid.LABEL_COLOURS[(0, 0, 0)] == 7 and uavid.LABEL_COLOURS[(255, 255, 255)] == 255
    assert uavid.INFO.eval_classes == tuple(range(8)) and uavid.INFO.num_classes == 8


def test_unknown_colour_reported_or_ignored(fake, tmp_path):
    label_path = fake.root / RELEASE / "uavid_val" / "seq16" / "Labels" / "000100.png"
    label = np.array(Image.open(label_path))
    label[10:12, 20:25] = (10, 20, 30)
    Image.fromarray(label).save(label_path)
    with pytest.raises(DataFormatError, match=r"000100\.png.*\(10, 20, 30\) \(10 px\)"):
        prepare_uavid(fake.root, tmp_path / "out", patch_size=PATCH, progress=False)
    assert not (tmp_path / "out").exists()
    prepare_uavid(fake.root, tmp_path / "out", splits=["val"], patch_size=PATCH,
                  unknown_colour="ignore", progress=False)  # fmt: skip
    mask = read_mask(tmp_path / "out" / "val" / "masks" / "seq16_000100_0_0.png")
    assert (mask[10:12, 20:25] == 255).all() and mask[9, 20] == fake.classes["seq16_000100"][9, 20]


def test_bad_layouts_are_named(fake, tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"uavid_train.*uavid\.nl"):
        prepare_uavid(tmp_path / "nowhere", tmp_path / "out", progress=False)
    seq = fake.root / RELEASE / "uavid_train" / "seq2"
    (seq / "Labels" / "000000.png").rename(seq / "Labels" / "000200.png")
    with pytest.raises(DataFormatError, match=r"do not pair up.*000000\.png.*000200\.png"):
        prepare_uavid(fake.root, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_size_mismatch_and_truncated_label_leave_nothing(fake, tmp_path):
    dst = tmp_path / "out"
    label_path = fake.root / RELEASE / "uavid_train" / "seq2" / "Labels" / "000000.png"
    Image.fromarray(uavid.encode(fake.classes["seq2_000000"][:, :240])).save(label_path)
    with pytest.raises(
        DataFormatError, match=r"is 135×256 px but its label .*000000\.png' is 135×240"
    ):
        prepare_uavid(fake.root, dst, patch_size=PATCH, progress=False)
    assert not dst.exists()
    label_path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(DataFormatError, match=r"seq2/Labels/000000\.png"):
        prepare_uavid(fake.root, dst, patch_size=PATCH, progress=False)
    assert not dst.exists()


@pytest.mark.slow
def test_two_workers_give_the_same_files_and_undo_on_failure(fake, tmp_path):
    one = prepare_uavid(fake.root, tmp_path / "one", patch_size=PATCH, workers=1, progress=False)
    two = prepare_uavid(fake.root, tmp_path / "two", patch_size=PATCH, workers=2, progress=False)
    assert one == {k: v.__class__(**{**vars(v), "path": one[k].path}) for k, v in two.items()}
    for split in one:
        meta_one = json.loads((tmp_path / "one" / split / "meta.json").read_text())
        meta_two = json.loads((tmp_path / "two" / split / "meta.json").read_text())
        assert meta_one["sources"] == meta_two["sources"]
    (fake.root / RELEASE / "uavid_test" / "seq42" / "Images" / "000000.png").write_bytes(b"junk")
    with pytest.raises(DataFormatError, match=r"seq42/Images/000000\.png"):
        prepare_uavid(fake.root, tmp_path / "three", patch_size=PATCH, workers=2, progress=False)
    assert not (tmp_path / "three").exists()
