"""A tiny Potsdam run under the ``original`` protocol: selected and tested on the eroded tiles."""

from pathlib import Path

import numpy as np
import pytest

from lossd.data.prepare import prepare_potsdam
from lossd.engine import run
from lossd.io import read_mask
from tests.data.potsdam import write_potsdam
from tests.engine.test_evaluate import _naive_predictions, _naive_scores

TILES = {"train": ["2_11"], "val": ["2_10"], "test": ["2_13"]}


@pytest.fixture
def potsdam_root(tmp_path: Path) -> Path:
    fake = write_potsdam(tmp_path / "raw", tiles=[t for ts in TILES.values() for t in ts], size=64)
    root = tmp_path / "prepared" / "potsdam"
    prepare_potsdam(fake.root, root, tiles=TILES, patch_size=32, progress=False)
    return root


@pytest.mark.slow
def test_original_protocol_selects_and_tests_on_the_eroded_test_tiles(
    make_cfg, potsdam_root: Path
) -> None:
    cfg = make_cfg(
        "dataset=potsdam",
        "protocol=original",
        "model.pretrained=false",  # the recipe's ImageNet encoder; no download in tests
        f"dataset.root={potsdam_root}",
        "dataset.crop_size=32",
        "trainer.max_epochs=2",
    )
    # the GeoSeg Potsdam recipe under the original protocol (conf/recipe/potsdam_unetformer.yaml)
    assert (cfg.dataset.train.split, cfg.dataset.val.split) == ("train", "test")
    assert cfg.trainer.monitor == "mF1" and cfg.test.checkpoint == "best"
    assert cfg.dataset.train.flip_copies is True
    record = run(cfg)
    assert record["protocol"] == "original" and record["val"]["split"] == "test"
    test = record["test"]
    assert (test["split"], test["labels"], test["checkpoint"]) == ("test", "masks", "best")
    assert test["epoch"] == record["best_epoch"]

    # the test block is the best checkpoint scored on the eroded labels (ignore bands 255)
    images = sorted((potsdam_root / "test" / "images").iterdir())
    assert test["num_images"] == len(images) == 4
    preds = _naive_predictions(Path(cfg.paths.output_dir) / "checkpoints/best.ckpt", images)
    eroded = [read_mask(potsdam_root / "test" / "masks" / f"{p.stem}.png") for p in images]
    full = [read_mask(potsdam_root / "test" / "masks_full" / f"{p.stem}.png") for p in images]
    assert any((m == 255).any() for m in eroded) and not any((m == 255).any() for m in full)
    naive = _naive_scores(preds, eroded, 6, [0, 1, 2, 3, 4])
    np.testing.assert_allclose(test["metrics"]["IoU"], naive["IoU"], rtol=1e-9, equal_nan=True)
    assert test["metrics"]["mF1"] == pytest.approx(naive["mF1"], rel=1e-9)
    on_full = _naive_scores(preds, full, 6, [0, 1, 2, 3, 4])
    assert test["metrics"]["OA"] != pytest.approx(on_full["OA"], rel=1e-9)
