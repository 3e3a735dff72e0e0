"""UAVid preparation: GeoSeg's bottom region, both frame widths, every class, bad input."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from lossd.data import SegmentationFolder, uavid
from lossd.data.prepare import check_prepared
from lossd.data.prepare.uavid import prepare_uavid
from lossd.errors import DataFormatError, DatasetNotFoundError, OutputExistsError
from lossd.io import read_image, read_mask
from tests.data.uavid import RELEASE, region, write_full_frames, write_uavid

PATCH = 64  # 1024 / 16: with frames scaled by 1/16 the real patch geometry is kept
REGION = region(16)  # (128, 256): GeoSeg's 2048×4096 scaled by 1/16


@pytest.fixture
def fake(tmp_path):
    return write_uavid(tmp_path / "raw", scale=16)


def geoseg_region(frame, fill, rows, cols):
    """GeoSeg by hand: pad at the top/left to ``cols`` columns, keep the bottom ``rows`` rows."""
    pad_cols = max(cols - frame.shape[1], 0)
    widths = [(0, 0), (pad_cols, 0)] + [(0, 0)] * (frame.ndim - 2)
    return np.pad(frame, widths, constant_values=fill)[-rows:, -cols:]


def stitch_region(split_dir, source, folder, rows, cols, channels=None):
    """Paste a frame's patches onto a canvas of the kept region (frame offsets shifted)."""
    top, left = source["height"] - rows, source["width"] - cols
    canvas = np.full((rows, cols) + ((channels,) if channels else ()), 77, np.uint8)
    for patch in source["patches"]:
        data = (read_image if channels else read_mask)(split_dir / folder / f"{patch['name']}.png")
        r, c = patch["row"] - top, patch["col"] - left
        canvas[r : r + data.shape[0], c : c + data.shape[1]] = data
    return canvas


def test_train_val_keep_the_bottom_region_and_test_stays_whole(fake, tmp_path):
    dst = tmp_path / "out"
    summary = prepare_uavid(fake.root, dst, patch_size=PATCH, region=REGION, progress=False)
    # train/val: 2×4 tiles per frame (GeoSeg's 8 of 1024²); test: each frame whole
    assert {s: summary[s].patches for s in summary} == {"train": 24, "val": 16, "test": 2}
    for split in ("train", "val"):
        meta = json.loads((dst / split / "meta.json").read_text())
        assert meta["preparation_version"] == 3 and meta["options"]["region"] == [128, 256]
        assert [s["stem"] for s in meta["sources"]] == fake.stems(split)
        for source in meta["sources"]:
            stem = source["stem"]
            assert (source["height"], source["width"]) == fake.images[stem].shape[:2]
            assert [p["row"] for p in source["patches"]] == [7] * 4 + [71] * 4  # 135 - 128
            cols = [p["col"] for p in source["patches"][:4]]
            narrow = source["width"] == 240
            assert cols == ([-16, 48, 112, 176] if narrow else [0, 64, 128, 192])
            assert source["patches"][0]["width"] == (48 if narrow else 64)  # source columns
            image = stitch_region(dst / split, source, "images", *REGION, channels=3)
            assert np.array_equal(image, geoseg_region(fake.images[stem], 0, *REGION))
            masks = stitch_region(dst / split, source, "masks", *REGION)
            assert np.array_equal(masks, geoseg_region(fake.classes[stem], 255, *REGION))
            assert (masks[:, :16] == 255).all() if narrow else (masks != 255).all()
            assert set(np.unique(masks)) - {255} == set(range(8))
    assert (dst / "train" / "images" / "seq1_000000_7_-16.png").is_file()
    assert (dst / "train" / "masks" / "seq1_000100_71_176.png").is_file()
    meta = json.loads((dst / "test" / "meta.json").read_text())
    assert meta["options"]["patch_size"] is None  # whole frames, for GeoSeg's test windows
    for source in meta["sources"]:
        (patch,) = source["patches"]
        assert patch["name"] == f"{source['stem']}_0_0"
        assert (patch["row"], patch["col"]) == (0, 0)
        assert (patch["height"], patch["width"]) == fake.images[source["stem"]].shape[:2]
        image = read_image(dst / "test" / "images" / f"{patch['name']}.png")
        assert np.array_equal(image, fake.images[source["stem"]])
    assert not (dst / "test" / "masks").exists()
    assert meta["sources"][0]["files"]["image"] == f"{RELEASE}/uavid_test/seq21/Images/000000.png"


@pytest.mark.slow
def test_full_size_frames_give_geoseg_8_tiles_of_the_bottom_2048_rows(tmp_path):
    fake = write_full_frames(tmp_path / "raw")
    dst = tmp_path / "out"
    summary = prepare_uavid(fake.root, dst, splits=["train"], progress=False)  # defaults
    assert summary["train"].patches == 16
    meta = json.loads((dst / "train" / "meta.json").read_text())
    for source in meta["sources"]:
        stem, width = source["stem"], source["width"]
        expected_cols = [-256, 768, 1792, 2816] if width == 3840 else [0, 1024, 2048, 3072]
        offsets = [(p["row"], p["col"]) for p in source["patches"]]
        assert offsets == [(r, c) for r in (112, 1136) for c in expected_cols]
        # GeoSeg tools/uavid_patch_split.py by hand: pad to 4096 columns at the left, keep
        # [-2048:, -4096:], tiles k = 0..7 row-major at stride 1024.
        image = geoseg_region(fake.images[stem], 0, 2048, 4096)
        mask = geoseg_region(fake.classes[stem], 255, 2048, 4096)
        for k, (row, col) in enumerate(offsets):
            name = f"{stem}_{row}_{col}.png"
            y, x = (k // 4) * 1024, (k % 4) * 1024
            tile = read_image(dst / "train" / "images" / name)
            assert np.array_equal(tile, image[y : y + 1024, x : x + 1024])
            masks = read_mask(dst / "train" / "masks" / name)
            assert np.array_equal(masks, mask[y : y + 1024, x : x + 1024])
        left = read_mask(dst / "train" / "masks" / f"{stem}_112_{expected_cols[0]}.png")
        left_image = read_image(dst / "train" / "images" / f"{stem}_112_{expected_cols[0]}.png")
        if width == 3840:  # 256 padding columns: ignore in the mask, 0 in the image
            assert (left[:, :256] == 255).all() and (left[:, 256:] != 255).all()
            assert (left_image[:, :256] == 0).all()
            assert np.array_equal(left_image[:, 256:], fake.images[stem][112:1136, :768])
        else:
            assert (left != 255).all()


def test_overlapping_stride_patches_agree(fake, tmp_path):
    dst = tmp_path / "out"
    prepare_uavid(
        fake.root,
        dst,
        splits=["val"],
        patch_size=(48, 64),
        stride=(40, 50),
        region=REGION,
        progress=False,
    )
    meta = json.loads((dst / "val" / "meta.json").read_text())
    source = meta["sources"][0]
    rows = sorted({p["row"] for p in source["patches"]})
    cols = sorted({p["col"] for p in source["patches"]})
    # 128×256 region of 135×256; only whole patches, as GeoSeg's range(0, n, stride) with its
    # full-size check (tools/uavid_patch_split.py:136-143): column 200 would pass column 255
    assert rows == [7, 47, 87] and cols == [0, 50, 100, 150]
    frame = fake.classes[source["stem"]]
    for patch in source["patches"]:
        mask = read_mask(dst / "val" / "masks" / f"{patch['name']}.png")
        r, c, h, w = patch["row"], patch["col"], patch["height"], patch["width"]
        assert (h, w) == (48, 64)
        assert np.array_equal(mask, frame[r : r + h, c : c + w])


def test_old_preparation_is_refused_with_the_command_to_redo_it(fake, tmp_path):
    dst = tmp_path / "out"
    prepare_uavid(fake.root, dst, patch_size=PATCH, region=REGION, progress=False)
    for split, version in (("train", None), ("val", 2), ("test", 2)):  # lossd's versions 1, 2
        path = dst / split / "meta.json"
        meta = json.loads(path.read_text())
        if version is None:
            del meta["preparation_version"]
        else:
            meta["preparation_version"] = version
        path.write_text(json.dumps(meta))
    message = (
        r"UAVid train patches of preparation version 1; this lossd reads version 2 or newer "
        r"\(version 2 cuts train and val as GeoSeg's.*12 over the whole frame.*python "
        rf"scripts/prepare_data\.py uavid --src .*raw --dst {re.escape(str(dst))} --splits train"
    )
    with pytest.raises(OutputExistsError, match=message):
        prepare_uavid(fake.root, dst, patch_size=PATCH, region=REGION, progress=False)
    with pytest.raises(DataFormatError, match=message):
        SegmentationFolder(dst, ["val", "train"], "uavid")
    with pytest.raises(DataFormatError, match=message):  # --check says so too
        check_prepared(dst, ["train"])
    # version 2 cut the test frames into patches: refused; its val split is still read
    with pytest.raises(DataFormatError, match="test patches of preparation version 2"):
        SegmentationFolder(dst, "test", "uavid", require_masks=False)
    assert check_prepared(dst, ["val"])["val"] == 16
    assert len(SegmentationFolder(dst, "val", "uavid")) == 16


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
        prepare_uavid(fake.root, tmp_path / "out", patch_size=PATCH, region=REGION,
                      progress=False)  # fmt: skip
    assert not (tmp_path / "out").exists()
    prepare_uavid(fake.root, tmp_path / "out", splits=["val"], patch_size=PATCH, region=REGION,
                  unknown_colour="ignore", progress=False)  # fmt: skip
    # the first tile starts at frame row 7 (135 - 128): frame rows 10..11 are tile rows 3..4
    mask = read_mask(tmp_path / "out" / "val" / "masks" / "seq16_000100_7_0.png")
    assert (mask[3:5, 20:25] == 255).all() and mask[2, 20] == fake.classes["seq16_000100"][9, 20]


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
        prepare_uavid(fake.root, dst, patch_size=PATCH, region=REGION, progress=False)
    assert not dst.exists()
    label_path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(DataFormatError, match=r"seq2/Labels/000000\.png"):
        prepare_uavid(fake.root, dst, patch_size=PATCH, region=REGION, progress=False)
    assert not dst.exists()


@pytest.mark.slow
def test_two_workers_give_the_same_files_and_undo_on_failure(fake, tmp_path):
    options = {"patch_size": PATCH, "region": REGION, "progress": False}
    one = prepare_uavid(fake.root, tmp_path / "one", workers=1, **options)
    two = prepare_uavid(fake.root, tmp_path / "two", workers=2, **options)
    assert one == {k: v.__class__(**{**vars(v), "path": one[k].path}) for k, v in two.items()}
    for split in one:
        meta_one = json.loads((tmp_path / "one" / split / "meta.json").read_text())
        meta_two = json.loads((tmp_path / "two" / split / "meta.json").read_text())
        assert meta_one["sources"] == meta_two["sources"]
    (fake.root / RELEASE / "uavid_test" / "seq42" / "Images" / "000000.png").write_bytes(b"junk")
    with pytest.raises(DataFormatError, match=r"seq42/Images/000000\.png"):
        prepare_uavid(fake.root, tmp_path / "three", workers=2, **options)
    assert not (tmp_path / "three").exists()


def test_decode_and_encode_use_the_official_colours():
    """The codec against UAVid's colours written literally (tests/data/uavid.py
    OFFICIAL_COLOURS, GeoSeg tools/uavid_patch_split.py:24-32): class k <-> colour k, and
    GeoSeg's white padding <-> 255."""
    from tests.data.uavid import OFFICIAL_COLOURS, colour

    indices = np.array([[0, 1, 2, 3, 4], [5, 6, 7, 255, 0]], np.uint8)
    colours = colour(indices)
    assert colours[1, 3].tolist() == [255, 255, 255] and colours[1, 2].tolist() == [0, 0, 0]
    assert np.array_equal(uavid.decode(colours), indices)
    assert np.array_equal(uavid.encode(indices), colours)
    assert uavid.PALETTE == OFFICIAL_COLOURS
    colours[0, 0] = (10, 20, 30)
    with pytest.raises(
        DataFormatError, match=r"^label 'label' has colours .*\(10, 20, 30\) \(1 px\)"
    ):
        uavid.decode(colours)
    with pytest.raises(DataFormatError, match=r"^label 'seq1/000000\.png' has colours"):
        uavid.decode(colours, source="seq1/000000.png")
    assert uavid.decode(colours, unknown="ignore")[0].tolist() == [255, 1, 2, 3, 4]
