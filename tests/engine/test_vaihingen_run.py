"""A tiny Vaihingen run from the fake download: preparation as GeoSeg's
tools/vaihingen_patch_split.py, GeoSeg's recipe under the ``original`` protocol, and the test
block scored with Vaihingen's test rule, vaihingen_test.py -t 'd4' (40 passes)."""

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from lossd.data.prepare.vaihingen import prepare_vaihingen
from lossd.engine import run
from lossd.engine.evaluate import inference_options
from lossd.engine.inference import predict_logits
from lossd.engine.model_io import load_model_from_checkpoint
from lossd.io import read_image, read_mask
from tests.data.vaihingen import write_vaihingen
from tests.engine.test_evaluate import _naive_scores

MEAN = np.array([0.485, 0.456, 0.406]) * 255  # ImageNet normalisation, as in training
STD = np.array([0.229, 0.224, 0.225]) * 255
SIZE, PATCH = (60, 50), 32  # padded to 64×64: 4 rows on top, 14 columns on the left
AREAS = {"train": [1], "val": [30], "test": [2]}

# vaihingen_test.py:80-89 @9453fe4, written here by hand: ttach Compose([HorizontalFlip(),
# VerticalFlip(), Rotate90(angles=[90]), Scale(scales=[0.5, 0.75, 1.0, 1.25, 1.5],
# interpolation='bicubic', align_corners=False)]); ttach adds the identity angle 0, runs the
# product in this order and undoes each pass in reverse; the logits are averaged.
FLIPS = (False, True)
ANGLES = (0, 90)
SCALES = (0.5, 0.75, 1.0, 1.25, 1.5)


@pytest.fixture
def vaihingen_root(tmp_path: Path) -> Path:
    fake = write_vaihingen(tmp_path / "raw", [a for areas in AREAS.values() for a in areas],
                           size=SIZE, block=4, signal=True)  # fmt: skip
    root = tmp_path / "prepared" / "vaihingen"
    prepare_vaihingen(fake.root, root, areas=AREAS, patch_size=PATCH, progress=False)
    return root


def naive_d4_logits(model, x: torch.Tensor) -> torch.Tensor:
    """Vaihingen's test rule by hand: 2 × 2 × 2 × 5 = 40 passes, logits averaged."""
    total, passes = torch.zeros(()), 0
    for hflip, vflip, angle, scale in itertools.product(FLIPS, FLIPS, ANGLES, SCALES):
        y = x.flip(3) if hflip else x
        y = y.flip(2) if vflip else y
        y = torch.rot90(y, angle // 90, (2, 3))
        shape = tuple(y.shape[-2:])
        if scale != 1.0:
            size = (int(shape[0] * scale), int(shape[1] * scale))
            y = F.interpolate(y, size=size, mode="bicubic", align_corners=False)
        logits = model(y)
        if scale != 1.0:
            logits = F.interpolate(logits, size=shape, mode="bicubic", align_corners=False)
        logits = torch.rot90(logits, -(angle // 90), (2, 3))
        logits = logits.flip(2) if vflip else logits
        logits = logits.flip(3) if hflip else logits
        total, passes = total + logits, passes + 1
    assert passes == 40
    return total / passes


def _naive_d4_predictions(checkpoint: Path, images: list[Path]) -> list[np.ndarray]:
    """The rule by hand on the checkpoint, numpy normalisation."""
    model, _ = load_model_from_checkpoint(checkpoint)
    out = []
    with torch.no_grad():
        for path in images:
            image = (read_image(path).astype(np.float64) - MEAN) / STD
            x = torch.from_numpy(image.transpose(2, 0, 1)).float()[None]
            out.append(naive_d4_logits(model, x)[0].argmax(0).numpy())
    return out


def test_the_vaihingen_test_rule_is_the_d4_of_vaihingen_test_py(make_cfg) -> None:
    """conf/inference/vaihingen.yaml through the engine's inference = the 40 passes by hand."""
    cfg = make_cfg("dataset=vaihingen", "model=fcn")
    options = inference_options(OmegaConf.to_container(cfg.test.inference, resolve=True))
    assert options.passes == 40
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 6, 5, padding=2)).eval()  # fmt: skip
    x = torch.randn(2, 3, 32, 48)  # not square: a quarter turn changes the shape
    with torch.no_grad():
        engine = predict_logits(net, x, tta=options.tta, scales=options.tta_scales,
                                rotations=options.tta_rotations,
                                interpolation=options.interpolation)  # fmt: skip
        by_hand = naive_d4_logits(net, x)
        plain = net(x)
    torch.testing.assert_close(engine, by_hand, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(engine, plain, atol=1e-3)  # the rule changes the logits


@pytest.mark.slow
def test_original_protocol_run_is_scored_with_the_d4_rule_on_the_eroded_test_areas(
    make_cfg, vaihingen_root: Path
) -> None:
    cfg = make_cfg(
        "dataset=vaihingen",
        "protocol=original",
        "model.pretrained=false",  # the recipe's ImageNet encoder; no download in tests
        f"dataset.root={vaihingen_root}",
        "dataset.crop_size=32",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=3",  # of the ~14 batches of windows and car crops
        "model.lr=0.01",  # a few steps that learn something from the fake pixels
    )
    # GeoSeg's Vaihingen recipe under the original protocol (conf/recipe/vaihingen_unetformer.yaml)
    assert (cfg.dataset.train.split, cfg.dataset.val.split) == ("train", "test")
    assert cfg.trainer.monitor == "mF1" and cfg.test.checkpoint == "best"
    assert cfg.dataset.padding_label == 0 and cfg.dataset.test.padding_label == 0
    rule = cfg.test.inference  # vaihingen_test.py -t 'd4' (README.md:255)
    assert (rule.tta, list(rule.rotations), list(rule.scales)) == ("d4", [90], list(SCALES))
    assert rule.interpolation == "bicubic" and rule.patch_size is None
    record = run(cfg)
    assert record["protocol"] == "original" and record["val"]["split"] == "test"
    test = record["test"]
    assert (test["split"], test["labels"], test["checkpoint"]) == ("test", "masks", "best")
    assert test["inference"]["passes"] == 40 and test["inference"]["rotations"] == [0, 90]

    # the test block is the best checkpoint with the 40-pass rule, scored on the eroded labels
    # with the padding rows/columns of the first patches as impervious surfaces (class 0)
    images = sorted((vaihingen_root / "test" / "images").iterdir())
    assert test["num_images"] == len(images) == 4
    assert images[0].stem == "top_mosaic_09cm_area2_-4_-14"
    preds = _naive_d4_predictions(Path(cfg.paths.output_dir) / "checkpoints/best.ckpt", images)
    assert len({int(v) for p in preds for v in np.unique(p)}) > 1  # a non-trivial prediction
    eroded = [read_mask(vaihingen_root / "test" / "masks" / f"{p.stem}.png") for p in images]
    assert any((m == 255).any() for m in eroded)
    as_geoseg = []
    for path, mask in zip(images, eroded, strict=True):
        labelled = mask.copy()
        _, row, col = path.stem.rsplit("_", 2)
        labelled[: max(-int(row), 0)] = 0
        labelled[:, : max(-int(col), 0)] = 0
        as_geoseg.append(labelled)
    padding = sum(int((a != m).sum()) for a, m in zip(as_geoseg, eroded, strict=True))
    assert padding == 4 * 64 + 14 * 64 - 4 * 14  # 4 rows and 14 columns of the 64² padded area
    naive = _naive_scores(preds, as_geoseg, 6, [0, 1, 2, 3, 4])
    np.testing.assert_allclose(test["metrics"]["IoU"], naive["IoU"], rtol=1e-6, equal_nan=True)
    for key in ("mF1", "mIoU", "OA"):
        assert test["metrics"][key] == pytest.approx(naive[key], rel=1e-6), key
    plain = _naive_scores(preds, eroded, 6, [0, 1, 2, 3, 4])
    without = test["metrics_without_padding"]
    assert without["OA"] == pytest.approx(plain["OA"], rel=1e-6)
    assert without["OA"] != pytest.approx(naive["OA"], rel=1e-6)
