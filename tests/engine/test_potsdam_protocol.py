"""A tiny Potsdam run under the ``original`` protocol: selected and tested on the eroded tiles,
the tiles' padding counted as impervious surfaces as GeoSeg's preparation labels it."""

from pathlib import Path

import numpy as np
import pytest
import torch

from lossd.data.prepare.potsdam import prepare_potsdam
from lossd.engine import run
from lossd.engine.model_io import load_model_from_checkpoint
from lossd.io import read_image, read_mask
from tests.data.potsdam import write_potsdam
from tests.engine.test_evaluate import _naive_scores

MEAN = np.array([0.485, 0.456, 0.406]) * 255  # ImageNet normalisation, as in training
STD = np.array([0.229, 0.224, 0.225]) * 255
SIZE, PATCH = 60, 32  # 60 px padded to 64: 4 rows and columns of padding at the top/left

TILES = {"train": ["2_11"], "val": ["2_10"], "test": ["2_13"]}


@pytest.fixture
def potsdam_root(tmp_path: Path) -> Path:
    tiles = [t for ts in TILES.values() for t in ts]
    fake = write_potsdam(tmp_path / "raw", tiles=tiles, size=SIZE)
    root = tmp_path / "prepared" / "potsdam"
    prepare_potsdam(fake.root, root, tiles=TILES, patch_size=PATCH, progress=False)
    return root


def _naive_flip_predictions(checkpoint: Path, images: list[Path]) -> list[np.ndarray]:
    """Potsdam's test rule by hand (potsdam_test.py -t 'lr': ttach HorizontalFlip x
    VerticalFlip, the four logits averaged), numpy normalisation."""
    model, _ = load_model_from_checkpoint(checkpoint)
    out = []
    with torch.no_grad():
        for path in images:
            image = (read_image(path).astype(np.float64) - MEAN) / STD
            x = torch.from_numpy(image.transpose(2, 0, 1)).float()[None]
            total = model(x) + model(x.flip(2)).flip(2)
            total = total + model(x.flip(3)).flip(3) + model(x.flip(2, 3)).flip(2, 3)
            out.append((total / 4)[0].argmax(0).numpy())
    return out


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
    assert cfg.dataset.padding_label == 0 and cfg.dataset.test.padding_label == 0
    assert cfg.test.inference.tta == "flip"  # potsdam_test.py -t 'lr' (README.md:260)
    record = run(cfg)
    assert record["protocol"] == "original" and record["val"]["split"] == "test"
    test = record["test"]
    assert (test["split"], test["labels"], test["checkpoint"]) == ("test", "masks", "best")
    assert test["epoch"] == record["best_epoch"]

    # the test block is the best checkpoint scored on the eroded labels (ignore bands 255),
    # with the 4 padding rows/columns of the first patches as impervious surfaces (class 0)
    images = sorted((potsdam_root / "test" / "images").iterdir())
    assert test["num_images"] == len(images) == 4
    assert images[0].stem == "top_potsdam_2_13_-4_-4"
    preds = _naive_flip_predictions(Path(cfg.paths.output_dir) / "checkpoints/best.ckpt", images)
    eroded = [read_mask(potsdam_root / "test" / "masks" / f"{p.stem}.png") for p in images]
    full = [read_mask(potsdam_root / "test" / "masks_full" / f"{p.stem}.png") for p in images]
    assert any((m == 255).any() for m in eroded)
    as_geoseg = []
    for path, mask in zip(images, eroded, strict=True):
        labelled = mask.copy()
        _, row, col = path.stem.rsplit("_", 2)
        labelled[: max(-int(row), 0)] = 0
        labelled[:, : max(-int(col), 0)] = 0
        as_geoseg.append(labelled)
    padding = sum(int((a != m).sum()) for a, m in zip(as_geoseg, eroded, strict=True))
    assert padding == 4 * 64 + 4 * 64 - 4 * 4  # 4 rows and 4 columns of the 64² padded tile
    naive = _naive_scores(preds, as_geoseg, 6, [0, 1, 2, 3, 4])
    np.testing.assert_allclose(test["metrics"]["IoU"], naive["IoU"], rtol=1e-9, equal_nan=True)
    assert test["metrics"]["mF1"] == pytest.approx(naive["mF1"], rel=1e-9)
    assert test["metrics"]["OA"] == pytest.approx(naive["OA"], rel=1e-9)
    # ... and without the padding: the eroded labels as they are
    plain = _naive_scores(preds, eroded, 6, [0, 1, 2, 3, 4])
    without = test["metrics_without_padding"]
    np.testing.assert_allclose(without["IoU"], plain["IoU"], rtol=1e-9, equal_nan=True)
    assert without["OA"] == pytest.approx(plain["OA"], rel=1e-9)
    assert without["OA"] != pytest.approx(naive["OA"], rel=1e-9)
    on_full = _naive_scores(preds, full, 6, [0, 1, 2, 3, 4])
    assert without["OA"] != pytest.approx(on_full["OA"], rel=1e-9)


@pytest.mark.slow
def test_heldout_protocol_ignores_the_padding(make_cfg, potsdam_root: Path) -> None:
    cfg = make_cfg(
        "dataset=potsdam",
        "protocol=heldout",
        "model.pretrained=false",
        f"dataset.root={potsdam_root}",
        "dataset.crop_size=32",
        "trainer.max_epochs=1",
    )
    assert cfg.dataset.padding_label is None and cfg.dataset.train.padding_label is None
    record = run(cfg)
    test = record["test"]
    assert "metrics_without_padding" not in test
    images = sorted((potsdam_root / "test" / "images").iterdir())
    preds = _naive_flip_predictions(Path(cfg.paths.output_dir) / "checkpoints/best.ckpt", images)
    eroded = [read_mask(potsdam_root / "test" / "masks" / f"{p.stem}.png") for p in images]
    naive = _naive_scores(preds, eroded, 6, [0, 1, 2, 3, 4])
    assert test["metrics"]["OA"] == pytest.approx(naive["OA"], rel=1e-9)
