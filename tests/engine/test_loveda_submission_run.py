"""A tiny LoveDA run ends with the test-server archive of its checkpoint (test labels withheld)."""

import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from lossd.data.prepare.loveda import prepare_loveda
from lossd.engine import run
from tests.data.loveda import write_loveda


@pytest.mark.slow
def test_a_loveda_run_writes_the_submission_archive_of_its_selected_checkpoint(
    make_cfg, tmp_path: Path
) -> None:
    fake = write_loveda(tmp_path / "raw", size=32)
    root = tmp_path / "prepared" / "loveda"
    prepare_loveda(fake.root, root, progress=False)
    cfg = make_cfg(
        "dataset=loveda",
        "model.pretrained=false",
        f"dataset.root={root}",
        "dataset.crop_size=32",
        "dataset.train.transform.scales=[1.0]",
    )
    assert cfg.protocol == "heldout" and cfg.test.submission == "loveda"
    record = run(cfg)
    test = record["test"]
    assert test["split"] == "test" and "metrics" not in test
    archive = Path(cfg.paths.output_dir) / "submission_loveda.zip"
    assert test["submission"].endswith("submission_loveda.zip") and archive.is_file()
    with zipfile.ZipFile(archive) as zf:
        names = sorted(zf.namelist())
        # one single-channel PNG per test image, named as the image, values 0..6 (no ignore)
        assert names == sorted(f"{i}.png" for i in fake.ids("test"))
        for name in names:
            mask = cv2.imdecode(np.frombuffer(zf.read(name), np.uint8), cv2.IMREAD_UNCHANGED)
            assert mask.shape == (32, 32) and mask.dtype == np.uint8 and mask.max() <= 6
    assert "official test split has 1796" in test["submission_summary"]  # a few fake images
