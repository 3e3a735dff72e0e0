"""Evaluation of checkpoints (lossd.engine.evaluate, scripts/evaluate.py, conf/eval.yaml).

The tiny checkpoints here hold an FCN-8s on a randomly initialised MobileNetV3 (275k
parameters) with random score layers, saved in the training checkpoint format.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from lossd.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from lossd.engine.checkpoint import CheckpointMeta, save_checkpoint
from lossd.engine.config import build, register_resolvers, to_container
from lossd.engine.evaluate import dataset_config, evaluate
from lossd.engine.model_io import load_model_from_checkpoint
from lossd.errors import CheckpointError, DatasetNotFoundError
from lossd.io import read_image, read_mask, write_image, write_mask
from lossd.results import read_record
from tests.metrics import _naive as naive_metrics
from tests.tiny import SYNTHETIC

ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT / "conf"
TINY_BACKBONE = "mobilenetv3_small_050"


def compose_config(name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(name, overrides=overrides)
    GlobalHydra.instance().clear()
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def make_checkpoint(
    path: Path, data_dir: Path, dataset: str = "synthetic", extra: tuple[str, ...] = ()
) -> Path:
    """A training checkpoint of a tiny FCN for ``dataset`` (random weights, random scores)."""
    overrides = [
        "logger=none",
        f"dataset={dataset}",
        "model=fcn",
        f"model.net.backbone={TINY_BACKBONE}",
        "model.pretrained=false",  # the real datasets' recipes ask for ImageNet encoders
        f"paths.data_dir={data_dir}",
        *(SYNTHETIC if dataset == "synthetic" else []),
        *extra,
    ]
    cfg = compose_config("train", overrides, path.parent / "run")
    torch.manual_seed(0)
    model = build(cfg.model.net)
    with torch.no_grad():  # FCN score layers start at zero: make the predictions vary
        for name, parameter in model.named_parameters():
            if "score" in name:
                parameter.normal_(0.0, 0.5)
    meta = CheckpointMeta.from_config(to_container(cfg), "test")
    state = {"model": model.state_dict(), "trainer": {"epoch": 3, "best_epoch": 2}}
    return save_checkpoint(path, meta.into(state))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, synthetic_root) -> Path:
    """A synthetic-dataset checkpoint whose stored data root no longer exists."""
    folder = tmp_path_factory.mktemp("ckpt")
    path = make_checkpoint(folder / "best.ckpt", folder / "gone")
    return path


@pytest.fixture(scope="module")
def potsdam_checkpoint(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("potsdam")
    return make_checkpoint(folder / "best.ckpt", folder, "potsdam")


def eval_config(tmp_path: Path, checkpoint: Path, data_dir: Path, *overrides: str) -> DictConfig:
    return compose_config(
        "eval",
        [
            f"checkpoint={checkpoint}",
            f"paths.data_dir={data_dir}",
            "device=cpu",
            "num_workers=0",
            "progress=false",
            *overrides,
        ],
        tmp_path / "eval",
    )


def _naive_predictions(checkpoint: Path, images: list[Path]) -> list[np.ndarray]:
    """Predictions by hand: numpy normalisation, one forward pass per image."""
    model, _ = load_model_from_checkpoint(checkpoint)
    mean, std = np.array(IMAGENET_MEAN) * 255, np.array(IMAGENET_STD) * 255
    out = []
    with torch.no_grad():
        for path in images:
            image = (read_image(path).astype(np.float64) - mean) / std
            tensor = torch.from_numpy(image.transpose(2, 0, 1)).float()[None]
            out.append(model(tensor)[0].argmax(0).numpy())
    return out


def _naive_scores(preds, targets, num_classes, eval_classes):
    """IoU per class and the protocol means, from a confusion matrix built by a loop."""
    conf = np.zeros((num_classes, num_classes), np.int64)
    for pred, target in zip(preds, targets, strict=True):
        for t, p in zip(target.ravel(), pred.ravel(), strict=True):
            if t != 255:
                conf[t, p] += 1
    tp = np.diag(conf).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (conf.sum(0) + conf.sum(1) - tp)
        f1 = 2 * tp / (conf.sum(0) + conf.sum(1))
    return {
        "IoU": iou,
        "mIoU": np.nanmean(iou[eval_classes]),
        "mF1": np.nanmean(f1[eval_classes]),
        "OA": tp.sum() / conf.sum(),
    }


def test_evaluate_defaults_to_the_checkpoint_dataset_and_matches_naive_metrics(
    tmp_path, checkpoint, synthetic_root
) -> None:
    cfg = eval_config(tmp_path, checkpoint, synthetic_root.parent)
    record = evaluate(cfg)

    images = sorted((synthetic_root / "test" / "images").glob("*.png"))
    targets = [read_mask(synthetic_root / "test" / "masks" / p.name) for p in images]
    preds = _naive_predictions(checkpoint, images)
    assert len({int(v) for p in preds for v in np.unique(p)}) > 1  # a non-trivial model
    naive = _naive_scores(preds, targets, 6, [0, 1, 2, 3, 4])
    metrics = record["metrics"]
    np.testing.assert_allclose(metrics["IoU"], naive["IoU"], rtol=1e-9, equal_nan=True)
    for key in ("mIoU", "mF1", "OA"):
        assert metrics[key] == pytest.approx(naive[key], rel=1e-9), key
    # Boundary IoU by the naive per-image, per-class bands of tests/metrics/_naive.py (the
    # official mask_to_boundary's semantics; conf/eval.yaml: ratio 0.02 of the diagonal)
    biou = naive_metrics.boundary_iou(preds, targets, 6, 255, ratio=0.02)
    np.testing.assert_allclose(metrics["BIoU"], biou, rtol=1e-9, equal_nan=True)
    assert metrics["mBIoU"] == pytest.approx(naive_metrics.nanmean(biou, [0, 1, 2, 3, 4]), rel=1e-9)
    assert 0.0 < metrics["mBIoU"] < 1.0

    assert (record["dataset"], record["model"], record["loss"], record["seed"]) == (
        "synthetic",
        "fcn",
        "lossd",
        0,
    )
    assert record["split"] == "test" and record["labels"] == "masks"
    assert record["num_images"] == len(images) == 2
    assert record["checkpoint"]["path"] == str(checkpoint.resolve())
    assert record["checkpoint"]["epoch"] == 3
    assert record["inference"]["tta"] == "none" and record["inference"]["passes"] == 1
    # The stored root (gone/synthetic) was moved onto the current paths.data_dir.
    assert record["eval_config"]["dataset"]["root"] == f"{synthetic_root.parent}/synthetic"
    assert record["config"]["model"]["net"]["backbone"] == TINY_BACKBONE
    on_disk = read_record(tmp_path / "eval" / "metrics.json")
    assert on_disk["metrics"]["mIoU"] == pytest.approx(metrics["mIoU"])
    assert on_disk["split"] == "test"
    json.loads((tmp_path / "eval" / "metrics.json").read_text())  # strict JSON


def test_dataset_config_rebases_every_stored_path(tmp_path) -> None:
    cfg = compose_config("eval", ["checkpoint=x.ckpt", "paths.data_dir=/new"], tmp_path)
    stored = {
        "dataset": {
            "name": "potsdam",
            "root": "/old/data/potsdam",
            "other": "/elsewhere",
            "test": {"root": "/old/data/potsdam", "split": "test"},
        }
    }
    node = dataset_config(cfg, stored)
    assert node.root == "/new/potsdam" and node.test.root == "/new/potsdam"
    assert node.other == "/elsewhere" and node.test.split == "test"
    explicit = compose_config("eval", ["checkpoint=x.ckpt", "dataset=uavid"], tmp_path)
    assert dataset_config(explicit, stored).name == "uavid"


def test_a_checkpoint_for_another_class_count_or_model_is_refused(
    tmp_path, checkpoint, synthetic_root
) -> None:
    cfg = eval_config(tmp_path, checkpoint, synthetic_root.parent, "dataset=loveda")
    with pytest.raises(CheckpointError, match=r"trained for 6 classes \(dataset synthetic\).*7"):
        evaluate(cfg)
    cfg = eval_config(tmp_path, checkpoint, synthetic_root.parent, "expect_model=unetformer")
    with pytest.raises(CheckpointError, match=r"holds a 'fcn' model.*expected 'unetformer'"):
        evaluate(cfg)
    cfg = eval_config(tmp_path, tmp_path / "missing.ckpt", synthetic_root.parent)
    with pytest.raises(CheckpointError, match=r"missing.ckpt"):
        evaluate(cfg)


def _potsdam_like(root: Path, with_masks: bool = True) -> list[Path]:
    """A prepared Potsdam-style test split: eroded masks (255 bands) and full masks."""
    rng = np.random.default_rng(1)
    images = []
    for index in range(2):
        stem = f"top_potsdam_2_13_{index * 64}_0"
        image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        write_image(root / "test" / "images" / f"{stem}.png", image)
        full = np.kron(rng.integers(0, 6, (8, 8)), np.ones((8, 8), np.int64)).astype(np.uint8)
        eroded = full.copy()
        eroded[::7] = 255  # stand-in for the eroded boundaries
        if with_masks:
            write_mask(root / "test" / "masks" / f"{stem}.png", eroded)
            write_mask(root / "test" / "masks_full" / f"{stem}.png", full)
        images.append(root / "test" / "images" / f"{stem}.png")
    return images


def test_potsdam_is_scored_on_eroded_labels_by_default_and_full_on_request(
    tmp_path, potsdam_checkpoint
) -> None:
    checkpoint = potsdam_checkpoint
    root = tmp_path / "potsdam"
    images = _potsdam_like(root)
    preds = _naive_predictions(checkpoint, images)
    for labels, folder in (("eroded", "masks"), ("full", "masks_full")):
        cfg = eval_config(tmp_path / labels, checkpoint, tmp_path, f"labels={labels}")
        record = evaluate(cfg)
        assert record["dataset"] == "potsdam" and record["labels"] == folder
        targets = [read_mask(root / "test" / folder / p.name) for p in images]
        naive = _naive_scores(preds, targets, 6, [0, 1, 2, 3, 4])
        assert record["metrics"]["mIoU"] == pytest.approx(naive["mIoU"], rel=1e-9)
        assert record["metrics"]["OA"] == pytest.approx(naive["OA"], rel=1e-9)


def test_tta_sliding_window_and_colour_masks(tmp_path, checkpoint, synthetic_root) -> None:
    from lossd.data.synthetic import INFO
    from lossd.engine.inference import predict_logits
    from lossd.io.colours import colorize

    cfg = eval_config(
        tmp_path,
        checkpoint,
        synthetic_root.parent,
        "inference=flip",
        "inference.patch_size=32",
        "inference.overlap=0.5",
        "limit=1",
        "save_masks=true",
    )
    record = evaluate(cfg)
    assert record["num_images"] == 1
    assert record["inference"]["passes"] == 4 and record["inference"]["patch_size"] == [32, 32]
    image_path = sorted((synthetic_root / "test" / "images").glob("*.png"))[0]
    model, _ = load_model_from_checkpoint(checkpoint)
    mean, std = np.array(IMAGENET_MEAN) * 255, np.array(IMAGENET_STD) * 255
    image = (read_image(image_path).astype(np.float64) - mean) / std
    tensor = torch.from_numpy(image.transpose(2, 0, 1)).float()[None]
    logits = predict_logits(model, tensor, tta="flip", patch_size=32, overlap=0.5, batch_size=4)
    expected = colorize(logits[0].argmax(0).numpy(), INFO.palette)
    saved = read_image(tmp_path / "eval" / "masks" / image_path.name)
    assert (saved == expected).all(axis=2).mean() > 0.999  # float noise may flip a rare tie


def test_inference_presets_compose(tmp_path) -> None:
    from lossd.engine.evaluate import inference_options

    passes = {}
    for preset in ("none", "flip", "d4"):
        cfg = compose_config("eval", ["checkpoint=x.ckpt", f"inference={preset}"], tmp_path)
        options = inference_options(to_container(cfg)["inference"])
        passes[preset] = (options.tta, options.passes, options.tta_scales)
    assert passes == {
        "none": ("none", 1, (1.0,)),
        "flip": ("flip", 4, (1.0,)),
        "d4": ("d4", 16, (0.75, 1.0, 1.25, 1.5)),
    }
    cfg = compose_config("eval", ["checkpoint=x.ckpt", "inference.tta=d4"], tmp_path)
    assert inference_options(to_container(cfg)["inference"]).passes == 16


def test_a_split_without_labels_points_to_the_submission_tool(tmp_path, potsdam_checkpoint) -> None:
    _potsdam_like(tmp_path / "potsdam", with_masks=False)
    ckpt = potsdam_checkpoint
    cfg = eval_config(tmp_path, ckpt, tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"withheld.*predict.py --submission"):
        evaluate(cfg)
    cfg = eval_config(tmp_path, ckpt, tmp_path, "split=val")
    with pytest.raises(DatasetNotFoundError, match=r"no prepared split 'val'"):
        evaluate(cfg)


@pytest.mark.slow
def test_cli_writes_a_record_and_reports_bad_input_in_one_line(
    tmp_path, checkpoint, synthetic_root
) -> None:
    base = [
        sys.executable,
        str(ROOT / "scripts" / "evaluate.py"),
        f"paths.data_dir={synthetic_root.parent}",
        "device=cpu",
        "num_workers=0",
        "progress=false",
    ]
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [*base, f"checkpoint={checkpoint}", f"hydra.run.dir={tmp_path / 'run'}", "inference=flip"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    record = read_record(tmp_path / "run" / "metrics.json")
    assert record["inference"]["tta"] == "flip" and record["split"] == "test"
    assert "mean" in done.stdout and "run record" in done.stdout
    bad = subprocess.run(
        [*base, f"checkpoint={tmp_path / 'nope.ckpt'}", f"hydra.run.dir={tmp_path / 'bad'}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1].startswith("error: checkpoint not found")


@pytest.mark.slow
@pytest.mark.ddp
def test_torchrun_shards_the_images_and_sums_the_metrics(tmp_path, checkpoint, synthetic_root):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    single = evaluate(eval_config(tmp_path / "single", checkpoint, synthetic_root.parent))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        f"--master_port={port}", str(ROOT / "scripts" / "evaluate.py"),
        f"checkpoint={checkpoint}", f"paths.data_dir={synthetic_root.parent}", "device=cpu",
        "num_workers=0", "progress=false", f"hydra.run.dir={tmp_path / 'ddp'}",
    ]  # fmt: skip
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    record = read_record(tmp_path / "ddp" / "metrics.json")
    assert record["world_size"] == 2 and record["num_images"] == 2
    for key in ("mIoU", "mF1", "OA", "mBIoU"):
        assert record["metrics"][key] == pytest.approx(single["metrics"][key], rel=1e-12), key
