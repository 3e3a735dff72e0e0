"""LoveDA preparation: official layout in, 0..6/255 masks and linked images out."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from lossd.data.prepare.loveda import prepare_loveda
from lossd.errors import (
    DataFormatError,
    DatasetNotFoundError,
    InvalidOptionError,
    OutputExistsError,
)
from lossd.io import read_image, read_mask
from tests.data.loveda import write_loveda


def expected_indices(raw: np.ndarray) -> np.ndarray:
    """Naive reference: raw 0 (no-data) -> 255, raw k -> k - 1 (docs/datasets.md §1)."""
    out = raw.astype(int) - 1
    out[raw == 0] = 255
    return out.astype(np.uint8)


def listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def fake(tmp_path):
    return write_loveda(tmp_path / "raw", size=32)


def test_every_split_prepared_pixel_by_pixel(fake, tmp_path):
    dst = tmp_path / "out"
    summary = prepare_loveda(fake.root, dst, progress=False)
    assert {s: summary[s].sources for s in summary} == {"train": 4, "val": 2, "test": 2}
    for split in ("train", "val", "test"):
        names = sorted(p.name for p in (dst / split / "images").iterdir())
        assert names == sorted(f"{i}_0_0.png" for i in fake.ids(split))
        for image_id in fake.ids(split):
            image_path = dst / split / "images" / f"{image_id}_0_0.png"
            assert np.array_equal(read_image(image_path), fake.images[image_id])
            assert os.stat(image_path).st_nlink == 2  # hard link to the raw image
            if split == "test":
                continue
            mask = read_mask(dst / split / "masks" / f"{image_id}_0_0.png")
            assert np.array_equal(mask, expected_indices(fake.raw_masks[image_id]))
            assert (mask == 255).any() and mask[0, 1:8].tolist() == list(range(7))
    assert not (dst / "test" / "masks").exists()


def test_meta_json_records_sources_and_tool(fake, tmp_path):
    prepare_loveda(fake.root, tmp_path / "out", splits=["val"], progress=False)
    meta = json.loads((tmp_path / "out" / "val" / "meta.json").read_text())
    assert meta["complete"] is True and meta["dataset"] == "loveda" and meta["split"] == "val"
    assert meta["tool"]["name"] == "lossd" and meta["tool"]["version"]
    assert meta["band_order"] == ["red", "green", "blue"] and len(meta["classes"]) == 7
    assert meta["folders"] == {"images": ".png", "masks": ".png"}
    first = meta["sources"][0]
    assert first["files"] == {"image": "Val/Rural/images_png/2522.png",
                              "label": "Val/Rural/masks_png/2522.png"}  # fmt: skip
    assert (first["height"], first["width"], first["crs"], first["transform"]) == (
        32,
        32,
        None,
        None,
    )
    assert first["patches"][0]["name"] == "2522_0_0" and len(first["patches"][0]["files"]) == 2


def test_patches_stitch_back_to_the_masks(fake, tmp_path):
    dst = tmp_path / "out"
    prepare_loveda(fake.root, dst, splits=["train"], patch_size=12, stride=10, progress=False)
    meta = json.loads((dst / "train" / "meta.json").read_text())
    for source in meta["sources"]:
        stitched = np.full((32, 32), 77, np.uint8)
        for patch in source["patches"]:
            mask = read_mask(dst / "train" / "masks" / f"{patch['name']}.png")
            assert mask.shape == (12, 12)
            r, c, h, w = patch["row"], patch["col"], patch["height"], patch["width"]
            assert (mask[h:] == 255).all() and (mask[:, w:] == 255).all()  # padding is ignore
            stitched[r : r + h, c : c + w] = mask[:h, :w]
        assert np.array_equal(stitched, expected_indices(fake.raw_masks[source["stem"]]))


def test_rerun_skips_finished_outputs_and_resumes(fake, tmp_path):
    dst = tmp_path / "out"
    first = prepare_loveda(fake.root, dst, splits=["train"], progress=False)["train"]
    assert (first.files_written, first.files_skipped) == (8, 0)
    (dst / "train" / "masks" / "1366_0_0.png").unlink()
    again = prepare_loveda(fake.root, dst, splits=["train"], progress=False)["train"]
    assert (again.files_written, again.files_skipped) == (1, 7)
    with pytest.raises(OutputExistsError, match="patch_size"):
        prepare_loveda(fake.root, dst, splits=["train"], patch_size=16, progress=False)


def test_missing_split_folder_names_expected_files_and_download_page(fake, tmp_path):
    for path in sorted((fake.root / "Val").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (fake.root / "Val").rmdir()
    with pytest.raises(DatasetNotFoundError, match=r"missing Val/.*zenodo.org/records/5706578"):
        prepare_loveda(fake.root, tmp_path / "out", progress=False)
    (fake.root / "Train" / "Urban" / "masks_png" / "1366.png").unlink()
    with pytest.raises(DataFormatError, match=r"do not pair up.*1366\.png"):
        prepare_loveda(fake.root, tmp_path / "out", splits=["train"], progress=False)
    assert not (tmp_path / "out").exists()


def test_unknown_value_reported_or_ignored(fake, tmp_path):
    raw = fake.raw_masks["1367"].copy()
    raw[5:7, 5:8] = 9
    Image.fromarray(raw, "L").save(fake.root / "Train" / "Urban" / "masks_png" / "1367.png")
    with pytest.raises(DataFormatError, match=r"1367\.png.*9 \(6 px\).*--unknown-colour ignore"):
        prepare_loveda(fake.root, tmp_path / "out", workers=1, progress=False)
    assert not (tmp_path / "out").exists()  # nothing left behind, not even meta.json
    prepare_loveda(fake.root, tmp_path / "out", splits=["train"], unknown_colour="ignore",
                   progress=False)  # fmt: skip
    mask = read_mask(tmp_path / "out" / "train" / "masks" / "1367_0_0.png")
    assert (mask[5:7, 5:8] == 255).all()


def test_size_mismatch_and_truncated_files_leave_nothing(fake, tmp_path):
    dst = tmp_path / "out"
    mask_path = fake.root / "Val" / "Urban" / "masks_png" / "3514.png"
    Image.fromarray(fake.raw_masks["3514"][:30], "L").save(mask_path)
    with pytest.raises(DataFormatError, match=r"3514\.png' is 32×32 px but its label .* 30×32"):
        prepare_loveda(fake.root, dst, progress=False)
    assert not dst.exists()
    Image.fromarray(fake.raw_masks["3514"], "L").save(mask_path)
    image_path = fake.root / "Train" / "Rural" / "images_png" / "1.png"
    image_path.write_bytes(image_path.read_bytes()[:200])
    with pytest.raises(DataFormatError, match=r"images_png/1\.png"):
        prepare_loveda(fake.root, dst, progress=False)
    assert not dst.exists()


def test_existing_split_is_kept_after_a_failed_rerun(fake, tmp_path):
    dst = tmp_path / "out"
    prepare_loveda(fake.root, dst, splits=["val"], progress=False)
    before = listing(dst)
    image_path = fake.root / "Test" / "Urban" / "images_png" / "5107.png"
    image_path.write_bytes(b"not a png")
    with pytest.raises(DataFormatError, match=r"5107\.png"):
        prepare_loveda(fake.root, dst, splits=["val", "test"], progress=False)
    assert listing(dst) == before


def test_invalid_options(fake, tmp_path):
    with pytest.raises(InvalidOptionError, match="splits"):
        prepare_loveda(fake.root, tmp_path, splits=["training"])
    with pytest.raises(InvalidOptionError, match="stride"):
        prepare_loveda(fake.root, tmp_path, stride=8)
    with pytest.raises(InvalidOptionError, match="workers"):
        prepare_loveda(fake.root, tmp_path / "x", workers=0)


def test_decode_and_encode_by_hand():
    """Raw values by docs/datasets.md §1 (0 no-data -> 255, k -> k - 1) and the visualisation
    colours of the LoveDA repository written literally (LD COLOR_MAP: background white,
    building red, road yellow, water blue, barren (159, 129, 183), forest green, agriculture
    (255, 195, 128)); ignored pixels black."""
    from lossd.data import loveda

    raw = np.array([[0, 1, 2, 3], [4, 5, 6, 7]], np.uint8)
    assert loveda.decode(raw).tolist() == [[255, 0, 1, 2], [3, 4, 5, 6]]
    assert loveda.decode(raw[..., None]).tolist() == [[255, 0, 1, 2], [3, 4, 5, 6]]
    raw[0, 0] = 8
    with pytest.raises(DataFormatError, match=r"^label 'mask' has values .*: 8 \(1 px\)"):
        loveda.decode(raw)
    with pytest.raises(DataFormatError, match=r"^label '1366\.png' has values"):
        loveda.decode(raw, source="1366.png")
    assert loveda.decode(raw, unknown="ignore")[0].tolist() == [255, 0, 1, 2]
    indices = np.array([[0, 1, 2, 3], [4, 5, 6, 255]], np.uint8)
    assert loveda.encode(indices).tolist() == [
        [[255, 255, 255], [255, 0, 0], [255, 255, 0], [0, 0, 255]],
        [[159, 129, 183], [0, 255, 0], [255, 195, 128], [0, 0, 0]],
    ]
