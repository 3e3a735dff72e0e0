"""The dataset × model recipes (conf/recipe/) against the original code, and docs/recipes.md.

The expected values below are typed from the originals (GeoSeg @9453fe4 config/<dataset>/
unetformer.py and geoseg/datasets/*; SFA-Net j2jeong/priv @3c442da config/<dataset>/sfanet.py
and network/datasets/*; catalyst 20.09 for SFA-Net's optimiser; read in the research notes of
issue 12), not read back from the configs: a recipe edit that departs from an original fails.
"""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import pytest
import torch
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from lossd.data.transforms import PillowScale, SmartCrop
from lossd.engine.config import compose_config, register_resolvers
from lossd.engine.evaluate import inference_options
from lossd.engine.optim import build_optimizer
from lossd.results.recipes import compose_cell, recipes_markdown, yaml_sources

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
DATASETS = ("loveda", "uavid", "potsdam", "vaihingen")
MODELS = ("unetformer", "abcnet", "fcn", "sfanet")
MS = [0.75, 1.0, 1.25, 1.5]  # RandomScale(scale_list=[0.75, 1.0, 1.25, 1.5], mode='value')
MS5 = [0.5, 0.75, 1.0, 1.25, 1.5]  # Vaihingen: RandomScale(scale_list=[0.5, ...]); TTA Scale

# GeoSeg's UNetFormer recipes (ABCNet and FCN-8s have no original and take them).
GEOSEG: dict[str, dict[str, Any]] = {
    "loveda": {  # config/loveda/unetformer.py:9,11,13-16,22,24,44,51-52,60,62,85
        "epochs": 30,
        "batch": 16,
        "crop": 512,
        "mosaic": 0.25,  # LoveDATrainDataset default (loveda_dataset.py:71)
        "scales": MS,
        "smart_crop": 0.75,
        "count_ignore": False,  # ignore_index=len(CLASSES)=7, the no-data label
        "hflip": True,
        "vflip": False,
        "rotate90": None,
        "colour": None,
        "sharpen": False,
        "lr": (6e-4, 6e-5, 0.01),
        "scheduler": ("CosineAnnealingLR", {"T_max": 30, "eta_min": 1e-6}),
        "original": (["train", "val"], "val", "test", "mIoU", "last"),
        "submission": "loveda",
    },
    "uavid": {  # config/uavid/unetformer.py:13,15,17-20,26,28,46-47,49,72; uavid_dataset.py:23-39
        "epochs": 40,
        "batch": 8,
        "crop": 1024,
        "mosaic": 0.25,
        "scales": [1.0],
        "smart_crop": None,  # SmartCropV1 commented out: whole 1024² tiles
        "count_ignore": None,
        "hflip": True,
        "vflip": True,
        "rotate90": None,
        "colour": 0.25,  # RandomBrightnessContrast(0.25, 0.25, p=0.25)
        "sharpen": False,
        "lr": (6e-4, 6e-5, 0.01),
        "scheduler": ("CosineAnnealingLR", {"T_max": 40, "eta_min": 0.0}),
        "original": (["train", "val"], "val", "test", "mIoU", "last"),
        "submission": "uavid",
    },
    "potsdam": {  # config/potsdam/unetformer.py:9,11,13-16,20,22,24,42-46,68; potsdam_dataset.py
        "epochs": 45,
        "batch": 8,
        "crop": 768,
        "mosaic": 0.25,
        "scales": MS,
        "smart_crop": 0.75,
        "count_ignore": False,
        "hflip": False,  # get_training_transform: Normalize only
        "vflip": False,
        "rotate90": None,
        "colour": None,
        "sharpen": False,
        "lr": (6e-4, 6e-5, 0.01),
        "scheduler": ("CosineAnnealingWarmRestarts", {"T_0": 15, "T_mult": 2, "eta_min": 0.0}),
        "original": ("train", "test", "test", "mF1", "best"),  # selects on the test tiles
        "submission": None,
    },
    "vaihingen": {  # config/vaihingen/unetformer.py:9,11,13-16,20,22,24,42-46,68
        "epochs": 105,
        "batch": 8,
        "crop": 512,  # vaihingen_dataset.py:33 SmartCropV1(crop_size=512, max_ratio=0.75)
        "mosaic": 0.25,  # config :43
        "scales": MS5,  # vaihingen_dataset.py:32
        "smart_crop": 0.75,
        "count_ignore": False,  # ignore_index=len(CLASSES) (:34)
        "hflip": False,  # get_training_transform: RandomRotate90(p=0.5), Normalize (:23-28)
        "vflip": False,
        "rotate90": 0.5,
        "colour": None,
        "sharpen": False,
        "lr": (6e-4, 6e-5, 0.01),
        # CosineAnnealingWarmRestarts(T_0=15, T_mult=2) (:68): 15 + 30 + 60 = 105 epochs
        "scheduler": ("CosineAnnealingWarmRestarts", {"T_0": 15, "T_mult": 2, "eta_min": 0.0}),
        # VaihingenDataset(transform=val_aug) defaults to data/vaihingen/test (:45; dataset :57)
        "original": ("train", "test", "test", "mF1", "best"),
        "submission": None,
    },
}

# SFA-Net's own recipes.
SFANET: dict[str, dict[str, Any]] = {
    "loveda": {  # config/loveda/sfanet.py:9,11,13-16,20-24,45-47,54-55,63,65,88
        **GEOSEG["loveda"],
        "epochs": 45,
        "batch": 8,
        "vflip": True,
        "rotate90": 0.5,  # RandomRotate90(p=0.5)
        "lr": (9e-3, 1e-3, 0.01),
        "scheduler": ("CosineAnnealingLR", {"T_max": 45, "eta_min": 1e-6}),
        "original": (["train", "val"], "val", "test", "mIoU", "best"),
    },
    "uavid": {  # config/uavid/sfanet.py:9,11,13-16,20-24,43-44,46,69; uavid_dataset.py:23-40
        **GEOSEG["uavid"],
        "epochs": 45,
        "batch": 4,
        "sharpen": True,  # albu.Sharpen() with its defaults
        "lr": (9e-3, 1e-3, 0.01),
        "scheduler": ("CosineAnnealingLR", {"T_max": 45, "eta_min": 0.0}),
        "original": (["train", "val"], "val", "test", "mIoU", "best"),
    },
    "potsdam": {  # config/potsdam/sfanet.py:9,11,13-16,22-26,45-49,71; potsdam_dataset.py:22-39
        **GEOSEG["potsdam"],
        "hflip": True,
        "vflip": True,
        "rotate90": 0.25,  # RandomRotate90(p=0.25)
        "lr": (9e-3, 1e-3, 0.01),
        # README.md:109 puts the train(+val) tiles into the training folder
        "original": (["train", "val"], "test", "test", "mF1", "best"),
    },
    "vaihingen": {  # config/vaihingen/sfanet.py:10,12,14-17,21,23,25,44-48,70; dataset :25-41
        **GEOSEG["vaihingen"],
        "smart_crop": 0.5,  # SmartCropV1(crop_size=512, max_ratio=0.5) (vaihingen_dataset.py:40)
        "hflip": True,  # HorizontalFlip(p=0.5) (:31)
        "vflip": True,  # VerticalFlip(p=0.5) (:32)
        "rotate90": 0.5,  # RandomRotate90(p=0.5) (:30)
        "lr": (9e-3, 1e-3, 0.01),
        # README.md:90-91 put the train(+val) areas into the training folder
        "original": (["train", "val"], "test", "test", "mF1", "best"),
    },
}


def expected(dataset: str, model: str) -> dict[str, Any]:
    if model == "abcnet":
        # GeoSeg's layerwise_params {"backbone.*": ...} go through re.match on the parameter
        # names (tools/utils.py:71-74); GeoSeg's ABCNet names its encoder cp.resnet.*
        # (geoseg/models/ABCNet.py:169,290): no backbone lr, everything at 6e-4.
        return {**GEOSEG[dataset], "lr": (6e-4, None, 0.01)}
    return (SFANET if model == "sfanet" else GEOSEG)[dataset]


CELLS = [(d, m) for d in DATASETS for m in MODELS]


def _compose(*overrides: str) -> DictConfig:
    return compose_config("train", overrides)


@pytest.fixture(scope="module")
def paper() -> dict[tuple[str, str], DictConfig]:
    return {
        (d, m): _compose("experiment=paper", f"dataset={d}", f"model={m}", "loss=lossd")
        for d, m in CELLS
    }


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


@pytest.mark.parametrize(("dataset", "model"), CELLS)
def test_paper_cell_trains_with_the_original_recipe(paper, dataset: str, model: str) -> None:
    cfg, want = paper[dataset, model], expected(dataset, model)
    transform = cfg.dataset.train.transform
    assert cfg.trainer.max_epochs == cfg.dataset.max_epochs == want["epochs"]
    assert cfg.dataset.batch_size == want["batch"]
    assert cfg.dataset.crop_size == transform.crop_size == want["crop"]
    assert cfg.dataset.train.mosaic_ratio == want["mosaic"]
    assert list(transform.scales) == want["scales"]
    assert transform.smart_crop_max_ratio == want["smart_crop"]
    if want["smart_crop"] is not None:
        assert transform.smart_crop_count_ignore is want["count_ignore"]
        assert transform.scale_interpolation == "pil_bicubic"  # transform.py:176 Image.BICUBIC
    # ImageNet encoders (UNetFormer.py:356, ABCNet.py:287, SFANet.py:448: pretrained=True)
    assert cfg.model.pretrained is True and cfg.model.net.pretrained is True
    assert (cfg.model.lr, cfg.model.backbone_lr, cfg.model.weight_decay) == pytest.approx(
        want["lr"]
    )
    # Lookahead(base_optimizer): k=5, alpha=0.5 (GeoSeg tools/utils.py:104; catalyst
    # lookahead.py:23); process_model_params(no_bias_weight_decay=True) (utils.py:46)
    assert (cfg.optimizer.k, cfg.optimizer.alpha, cfg.model.no_bias_decay) == (5, 0.5, True)
    assert cfg.trainer.precision == "32"  # no precision in pl.Trainer: fp32
    name, params = want["scheduler"]
    assert cfg.scheduler._target_ == f"torch.optim.lr_scheduler.{name}"
    assert {k: cfg.scheduler[k] for k in params} == pytest.approx(params)
    train, val, test, monitor, checkpoint = want["original"]
    original = cfg.protocols.original
    assert cfg.protocol == "original"
    assert (_plain(original.train_split), original.val_split, original.test_split) == (
        train,
        val,
        test,
    )
    assert (original.monitor, original.test_checkpoint) == (monitor, checkpoint)
    # the run follows the protocol: splits, selection, tested checkpoint
    assert _plain(cfg.dataset.train.split) == train and cfg.dataset.val.split == val
    assert (cfg.trainer.monitor, cfg.test.split, cfg.test.checkpoint) == (monitor, test, checkpoint)
    heldout = cfg.protocols.heldout
    assert (heldout.train_split, heldout.val_split, heldout.test_split) == ("train", "val", "test")
    assert (heldout.monitor, heldout.test_checkpoint) == (monitor, "best")
    assert cfg.test.submission == want["submission"]
    assert cfg.loss.ignore_mode == "authors"  # qwqwqer233/Lossd lossd.py:162,177


# One test-time rule per dataset, for every model: the test commands of the original READMEs
# (GeoSeg README.md:255-274 @9453fe4; SFA-Net README.md:166-199 @3c442da), with the TTA that
# each test script defines for its -t option (ttach adds the identity scale/rotation):
# (tta, scales, rotations, patch_size, batch_size, pad, passes).
TEST_RULE: dict[str, tuple[Any, ...]] = {
    # loveda_test.py -t 'd4': HorizontalFlip x Scale([0.75, 1.0, 1.25, 1.5]) (:73-80)
    "loveda": ("hflip", MS, None, None, 4, "none", 8),
    # inference_uavid.py -t 'lr' -ph 1152 -pw 1024 -b 2: whole frames padded top/left (:97-109)
    "uavid": ("flip", None, None, [1152, 1024], 2, "top_left", 4),
    # potsdam_test.py -t 'lr': HorizontalFlip x VerticalFlip (:75-82)
    "potsdam": ("flip", None, None, None, 4, "none", 4),
    # vaihingen_test.py -t 'd4' (README.md:255): HorizontalFlip x VerticalFlip x
    # Rotate90(angles=[90]) x Scale([0.5, 0.75, 1.0, 1.25, 1.5], bicubic) (:80-89): 2*2*2*5
    "vaihingen": ("d4", MS5, [90], None, 4, "none", 40),
    # lossd's synthetic set: whole tiles, no TTA
    "synthetic": ("none", None, None, None, 4, "none", 1),
}


def _rule(cfg: DictConfig) -> tuple[Any, ...]:
    node = cfg.test.inference
    options = inference_options(_plain(node))
    return (
        node.tta,
        _plain(node.scales),
        _plain(node.rotations),
        _plain(node.patch_size),
        node.batch_size,
        node.pad,
        options.passes,
    )


@pytest.mark.parametrize(("dataset", "model"), CELLS)
def test_every_paper_cell_tests_with_its_datasets_rule(paper, dataset: str, model: str) -> None:
    assert _rule(paper[dataset, model]) == TEST_RULE[dataset]
    heldout = _compose(f"dataset={dataset}", f"model={model}")
    assert _rule(heldout) == TEST_RULE[dataset]


def test_the_main_job_tests_with_the_synthetic_rule() -> None:
    assert _rule(_compose()) == TEST_RULE["synthetic"]


@pytest.mark.parametrize(("dataset", "model"), CELLS)
def test_paper_cell_builds_its_augmentation_and_optimiser(paper, dataset: str, model: str) -> None:
    cfg, want = paper[dataset, model], expected(dataset, model)
    pipeline = instantiate(cfg.dataset.train.transform)
    steps = list(pipeline.transforms)
    kinds = [type(t) for t in steps]
    if want["scales"] != [1.0]:
        assert [t.scale for t in steps[0].transforms] == want["scales"]
        assert all(isinstance(t, PillowScale) for t in steps[0].transforms)
    else:
        assert not isinstance(steps[0], A.OneOf)
    crop = next((t for t in steps if isinstance(t, SmartCrop)), None)
    if want["smart_crop"] is None:
        assert crop is None and A.RandomCrop in kinds
    else:
        assert crop is not None and crop.size == want["crop"]
        assert crop.max_ratio == want["smart_crop"]  # 0.75; SFA-Net's Vaihingen 0.5
        assert crop.count_ignore is want["count_ignore"]

    def probability(kind: type) -> float | None:
        found = [t.p for t in steps if type(t) is kind]
        return found[0] if found else None

    assert probability(A.HorizontalFlip) == (0.5 if want["hflip"] else None)
    assert probability(A.VerticalFlip) == (0.5 if want["vflip"] else None)
    assert probability(A.RandomRotate90) == want["rotate90"]
    assert probability(A.RandomBrightnessContrast) == want["colour"]
    assert probability(A.Sharpen) == (0.5 if want["sharpen"] else None)
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    mask = np.random.default_rng(1).integers(0, 3, (64, 64), np.uint8)
    pipeline.set_random_seed(0)
    out = pipeline(image=image, mask=mask)
    assert out["image"].shape == (want["crop"], want["crop"], 3)

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = torch.nn.Conv2d(3, 4, 1)
            self.head = torch.nn.Conv2d(4, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.backbone(x))

    net = Tiny()
    optimizer = build_optimizer(
        net, instantiate(cfg.optimizer), cfg.model.backbone_lr, cfg.model.no_bias_decay
    )
    groups = {g["name"]: g for g in optimizer.param_groups}
    lr, backbone_lr, weight_decay = want["lr"]
    if backbone_lr is None:  # one group at lr for every parameter (ABCNet)
        assert set(groups) == {"all", "all_no_decay"}
        groups["head"], groups["head_no_decay"] = groups["all"], groups["all_no_decay"]
    else:
        assert set(groups) == {"backbone", "backbone_no_decay", "head", "head_no_decay"}
        assert groups["backbone"]["lr"] == pytest.approx(backbone_lr)
    assert groups["head"]["lr"] == pytest.approx(lr)
    assert groups["head"]["weight_decay"] == pytest.approx(weight_decay)
    assert groups["head_no_decay"]["weight_decay"] == 0.0
    assert groups["head"]["lookahead_k"] == 5 and groups["head"]["lookahead_alpha"] == 0.5
    # GeoSeg tools/utils.py:142-148 and catalyst 20.09 lookahead.py:61-67 sync after step 1
    assert groups["head"]["lookahead_phase"] == "geoseg"
    scheduler = instantiate(cfg.scheduler)(optimizer)
    assert type(scheduler).__name__ == want["scheduler"][0]
    net(torch.zeros(1, 3, 2, 2)).sum().backward()
    optimizer.step()
    scheduler.step()


def test_recipe_is_chosen_by_dataset_and_model_and_synthetic_has_none() -> None:
    register_resolvers()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            loader = GlobalHydra.instance().config_loader()

            def recipes(*overrides: str) -> list[str]:
                entries = loader.compute_defaults_list("train", list(overrides), RunMode.RUN)
                paths = [str(d.config_path) for d in entries.defaults]
                return [p for p in paths if p.startswith("recipe/")]

            # `optional recipe: ${dataset}_${model}`; ABCNet's extends UNetFormer's
            assert recipes("dataset=uavid", "model=sfanet") == ["recipe/uavid_sfanet"]
            assert recipes("dataset=potsdam", "model=abcnet") == [
                "recipe/potsdam_unetformer",
                "recipe/potsdam_abcnet",
            ]
            assert recipes() == []  # the synthetic main job: no recipe file
            assert recipes("model=sfanet") == []
    finally:
        GlobalHydra.instance().clear()
    cfg = _compose()
    assert (cfg.dataset.train.split, cfg.dataset.val.split) == ("train", "val")
    assert cfg.trainer.precision == "auto" and cfg.optimizer.k == 6
    assert cfg.model.pretrained is False and cfg.test.inference.tta == "none"


def test_heldout_is_the_default_protocol_on_real_datasets() -> None:
    cfg = _compose("dataset=loveda", "model=fcn")
    assert cfg.protocol == "heldout"
    assert (cfg.dataset.train.split, cfg.dataset.val.split, cfg.test.split) == (
        "train",
        "val",
        "test",
    )
    assert cfg.trainer.max_epochs == 30 and cfg.test.checkpoint == "best"
    potsdam = _compose("dataset=potsdam", "protocol=heldout", "experiment=paper")
    assert (potsdam.dataset.val.split, potsdam.trainer.monitor) == ("val", "mF1")


RECIPE_KEYS = (
    "batch_size",
    "crop_size",
    "max_epochs",
    "train.mosaic_ratio",
    "train.transform.scales",
    "train.transform.hflip",
    "train.transform.vflip",
    "train.transform.rotate90",
    "train.transform.color_jitter",
    "train.transform.smart_crop_max_ratio",
)


@pytest.mark.parametrize("dataset", DATASETS)
def test_dataset_files_leave_recipe_values_to_the_recipes(dataset: str) -> None:
    node = OmegaConf.load(CONF / "dataset" / f"{dataset}.yaml")
    for key in RECIPE_KEYS:
        parent, _, leaf = f"x.{key}".rpartition(".")
        holder = OmegaConf.select(OmegaConf.create({"x": node}), parent)
        assert OmegaConf.is_missing(holder, leaf), f"conf/dataset/{dataset}.yaml sets {key}"
    # the splits come from the protocol (conf/train.yaml protocols, set by the recipes)
    assert OmegaConf.to_container(node)["train"]["split"] == "${protocols.${protocol}.train_split}"
    assert OmegaConf.to_container(node)["val"]["split"] == "${protocols.${protocol}.val_split}"
    with pytest.raises(MissingMandatoryValue, match="batch_size"):
        _compose(f"dataset={dataset}", "model=unetformer", "~recipe").dataset.batch_size  # noqa: B018


CITATION = (
    r"(GeoSeg \S+:\d[\d,-]* @9453fe4|SFA-Net \S+:\d[\d,-]* @3c442da|catalyst 20\.09 \S+:\d+"
    r"|qwqwqer233/Lossd \S+:\d[\d,]* @86ed3c0)"
)


@pytest.mark.parametrize(
    "path",
    sorted((CONF / "recipe").glob("*.yaml"))
    + [CONF / "scheduler" / f"{d}.yaml" for d in DATASETS]
    + [CONF / "experiment" / "paper.yaml"],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_every_recipe_value_cites_its_original_line(path: Path) -> None:
    import re

    own = ("protocols.heldout.", "test.submission", "protocol")  # lossd's, not reproductions
    sources = yaml_sources(path, "", CONF)
    assert sources or path.stem.endswith("_fcn")
    for key, source in sources.items():
        if key == "experiment_name" or key.startswith("hydra."):
            continue
        if key.startswith(own):
            assert source.comment, f"{source.path}:{source.line} ({key}) has no comment"
            continue
        assert re.search(CITATION, source.comment), (
            f"{source.path}:{source.line} ({key}) names no original file:line @commit: "
            f"{source.comment!r}"
        )


def test_yaml_sources_follow_packages_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "group" / "file.yaml"
    path.parent.mkdir()
    path.write_text(
        "# header of the file\n"
        "top: 1\n"
        "node:\n"
        "  # why the value\n"
        "  # takes two lines\n"
        "  leaf: [1, 2]   # origin.py:3 (a = [1, 2])\n"
        "  plain: x\n"
        "defaults:\n"
        "  - other\n"
    )
    sources = yaml_sources(path, "pkg", tmp_path)
    assert set(sources) == {"pkg.top", "pkg.node.leaf", "pkg.node.plain"}
    assert sources["pkg.top"].comment == ""  # the header describes the file
    leaf = sources["pkg.node.leaf"]
    assert (leaf.path, leaf.line) == ("group/file.yaml", 6)
    assert leaf.comment == "origin.py:3 (a = [1, 2]). why the value takes two lines."
    assert leaf.footnote().startswith("`conf/group/file.yaml:6`: origin.py:3")


def test_compose_cell_finds_the_last_file_that_sets_a_value() -> None:
    cell = compose_cell("potsdam", "fcn")
    assert cell.get("dataset.batch_size") == 8
    assert cell.sources["dataset.batch_size"].path == "recipe/potsdam_unetformer.yaml"
    assert cell.sources["optimizer.k"].path == "recipe/potsdam_unetformer.yaml"  # not k: 6
    assert cell.sources["scheduler.eta_min"].path == "scheduler/potsdam.yaml"
    assert cell.sources["model.net.backbone"].path == "model/fcn.yaml"
    assert cell.sources["loss.ignore_mode"].path == "experiment/paper.yaml"
    assert "dataset.train.transform.sharpen" not in cell.sources


def test_recipes_doc_is_generated_from_the_configs() -> None:
    committed = (ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")
    assert committed == recipes_markdown(), (
        "docs/recipes.md is out of date: run python scripts/make_recipes_doc.py"
    )
    assert "## LoveDA" in committed and "| epochs | 30 [1] |" in committed


def test_train_cli_prints_a_paper_cell_without_data(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    done = subprocess.run(
        [
            sys.executable,
            "scripts/train.py",
            "experiment=paper",
            "dataset=loveda",
            "model=sfanet",
            f"paths.data_dir={tmp_path / 'no-data'}",
            "--cfg",
            "job",
            "--resolve",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    printed = done.stdout
    for line in (
        "max_epochs: 45",
        "batch_size: 8",
        "crop_size: 512",
        "lr: 0.009",
        "backbone_lr: 0.001",
        "protocol: original",
        "ignore_mode: authors",
        "precision: '32'",
        "tta: hflip",
        "submission: loveda",
        "rotate90_p: 0.5",
    ):
        assert line in printed, line
    assert "- train\n    - val" in printed
    assert not (tmp_path / "no-data").exists()


def test_plain_adamw_composes_and_builds_with_a_recipe() -> None:
    # the recipes set Lookahead's keys; optimizer=adamw takes them (k=null: no Lookahead)
    from hydra.utils import instantiate

    from lossd.models import build_model

    cfg = _compose("dataset=loveda", "model=unetformer", "optimizer=adamw", "optimizer.k=null")
    net = build_model("fcn", 7, backbone="mobilenetv3_small_050")
    optimizer = build_optimizer(net, instantiate(cfg.optimizer), 1e-4, cfg.model.no_bias_decay)
    assert type(optimizer) is torch.optim.AdamW
    assert sorted(g["name"] for g in optimizer.param_groups) == [
        "backbone",
        "backbone_no_decay",
        "head",
        "head_no_decay",
    ]
