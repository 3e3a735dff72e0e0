"""Bad checkpoints, weights and evaluation options are refused with a message naming them."""

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict
from timm.models import _registry as timm_registry

from lossd.engine.checkpoint import CheckpointMeta, save_checkpoint
from lossd.engine.config import register_resolvers
from lossd.engine.evaluate import evaluate
from lossd.engine.inference import InferenceOptions
from lossd.engine.model_io import load_model_from_checkpoint
from lossd.engine.predict import Predictor
from lossd.errors import CheckpointError, InvalidOptionError, WeightsUnavailableError
from lossd.models import build_model
from lossd.results import load_runs, write_record
from lossd.results.plots import predict_examples

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
TINY_BACKBONE = "mobilenetv3_small_050"
# The tag timm.create_model(TINY_BACKBONE) resolves to (its default pretrained weights).
TINY_BACKBONE_TAG = f"{TINY_BACKBONE}.lamb_in1k"
# A network rebuilt from a checkpoint gets pretrained=False (model_io): nn.Identity takes and
# ignores any argument, so it is the smallest network a checkpoint config can name. It has no
# parameter and no convolution.
IDENTITY_NET = {"_target_": "torch.nn.Identity"}
FCN_NET = {
    "_target_": "lossd.models.build_model",
    "name": "fcn",
    "num_classes": 6,
    "backbone": TINY_BACKBONE,
    "pretrained": False,
}


def write_checkpoint(
    path: Path,
    config: Mapping[str, Any],
    model: Mapping[str, torch.Tensor] | None = None,
    model_name: str = "fcn",
    num_classes: int = 6,
    drop: tuple[str, ...] = (),
) -> Path:
    """A checkpoint in the training format whose metadata block lacks the entries in ``drop``."""
    meta: dict[str, Any] = {
        "version": CheckpointMeta.VERSION,
        "model_name": model_name,
        "num_classes": num_classes,
        "dataset": (config.get("dataset") or {}).get("name", "?"),
        "class_names": [],
        "net": (config.get("model") or {}).get("net") or {},
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "fingerprint": "test",
        "config": dict(config),
        "wandb_run_id": None,
    }
    state: dict[str, Any] = {
        "model": dict(model or {}),
        "trainer": {"epoch": 1, "best_epoch": 1},
        "meta": {k: v for k, v in meta.items() if k not in drop},
    }
    return save_checkpoint(path, state)


def eval_config(tmp_path: Path, checkpoint: Path, *overrides: str) -> DictConfig:
    """``conf/eval.yaml`` for ``checkpoint`` on the CPU, data and outputs under ``tmp_path``."""
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "eval",
            overrides=[
                f"checkpoint={checkpoint}",
                f"paths.data_dir={tmp_path / 'data'}",
                "device=cpu",
                "num_workers=0",
                "progress=false",
                *overrides,
            ],
        )
    GlobalHydra.instance().clear()
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "eval")
    return cfg


# --------------------------------------------------------------------------------------------
# rebuilding the network of a checkpoint (lossd.engine.model_io)
# --------------------------------------------------------------------------------------------
def test_a_checkpoint_lacking_required_entries_names_them(tmp_path: Path) -> None:
    # in the lossd format, but without the model name and class count (e.g. written by hand)
    path = write_checkpoint(
        tmp_path / "best.ckpt", {"model": {"net": IDENTITY_NET}}, drop=("model_name", "num_classes")
    )
    with pytest.raises(
        CheckpointError,
        match=rf"checkpoint '{re.escape(str(path))}' lacks \['model_name', 'num_classes'\] in "
        r"its 'meta' block; expected a checkpoint written by scripts/train\.py",
    ):
        load_model_from_checkpoint(path)


@pytest.mark.parametrize(
    "config",
    [
        {"dataset": {"name": "synthetic"}},  # no model node
        {"model": {"name": "fcn"}},  # no net node
        {"model": {"net": {"name": "fcn", "num_classes": 6}}},  # net without _target_
    ],
    ids=["no-model", "no-net", "no-target"],
)
def test_a_checkpoint_without_a_network_target_cannot_be_rebuilt(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    path = write_checkpoint(tmp_path / "best.ckpt", config)
    with pytest.raises(
        CheckpointError,
        match=rf"checkpoint '{re.escape(str(path))}' has no network config with a _target_ in "
        r"its 'meta' block; cannot rebuild its network",
    ):
        load_model_from_checkpoint(path)


@pytest.mark.parametrize(
    ("net", "cause"),
    [
        # a model this version of lossd does not know (e.g. a checkpoint of a newer version)
        ({**FCN_NET, "name": "segformer"}, r"unknown model name='segformer'"),
        # an architecture argument the model does not take
        ({**FCN_NET, "dropout": 0.1}, r"unknown architecture argument\(s\) \['dropout'\]"),
    ],
    ids=["unknown-model", "unknown-argument"],
)
def test_a_checkpoint_whose_network_cannot_be_rebuilt_names_file_and_cause(
    tmp_path: Path, net: dict[str, Any], cause: str
) -> None:
    path = write_checkpoint(tmp_path / "best.ckpt", {"model": {"net": net}}, model_name=net["name"])
    with pytest.raises(
        CheckpointError,
        match=rf"cannot rebuild the network of '{re.escape(str(path))}': {cause}",
    ):
        load_model_from_checkpoint(path)


def test_a_checkpoint_whose_network_target_does_not_exist_names_the_file(tmp_path: Path) -> None:
    # e.g. a checkpoint of another lossd version whose network function was renamed
    net = {**FCN_NET, "_target_": "lossd.models.no_such_builder"}
    path = write_checkpoint(tmp_path / "best.ckpt", {"model": {"net": net}})
    with pytest.raises(
        CheckpointError,
        match=rf"cannot rebuild the network of '{re.escape(str(path))}': .*no_such_builder.*"
        "another version of lossd",
    ):
        load_model_from_checkpoint(path)


def test_weights_that_do_not_fit_their_own_config_are_refused(tmp_path: Path) -> None:
    # weights of a 2-class network stored with a config (and class count) of 6 classes
    weights = build_model("fcn", 2, backbone=TINY_BACKBONE).state_dict()
    path = write_checkpoint(tmp_path / "best.ckpt", {"model": {"net": FCN_NET}}, model=weights)
    with pytest.raises(
        CheckpointError,
        match=rf"the weights in '{re.escape(str(path))}' do not fit the network its config "
        r"describes \(fcn, 6 classes\): Error\(s\) in loading state_dict for FCN8s:\s+size "
        r"mismatch for score_stride8\.weight",
    ):
        load_model_from_checkpoint(path)


def test_predicting_with_a_network_without_convolution_is_refused(tmp_path: Path) -> None:
    # the band count of the inputs is read from the first convolution, and there is none
    config = {"model": {"net": IDENTITY_NET}, "dataset": {"name": "synthetic"}}
    path = write_checkpoint(tmp_path / "best.ckpt", config, model_name="identity")
    with pytest.raises(
        CheckpointError, match=r"^Identity has no convolution; cannot tell its input bands$"
    ):
        Predictor.from_checkpoint(path, InferenceOptions(), device="cpu", progress=False)


# --------------------------------------------------------------------------------------------
# evaluation (lossd.engine.evaluate)
# --------------------------------------------------------------------------------------------
def test_evaluating_a_checkpoint_that_names_no_dataset_asks_for_one(tmp_path: Path) -> None:
    path = write_checkpoint(tmp_path / "best.ckpt", {"model": {"net": IDENTITY_NET}})
    cfg = eval_config(tmp_path, path)  # no dataset=: the checkpoint's would be used
    with pytest.raises(
        CheckpointError,
        match=rf"checkpoint '{re.escape(str(path))}' names no dataset in its config; "
        r"pass dataset=<name>",
    ):
        evaluate(cfg)


def test_evaluation_labels_other_than_eroded_or_full_are_refused(tmp_path: Path) -> None:
    # a Potsdam checkpoint (no prepare step); labels= is checked before any image is read
    config = {
        "model": {"net": IDENTITY_NET},
        "dataset": {"name": "potsdam", "root": "/gone/potsdam", "eval_classes": [0, 1, 2, 3, 4]},
    }
    path = write_checkpoint(tmp_path / "best.ckpt", config, model_name="identity")
    cfg = eval_config(tmp_path, path, "labels=boundary")
    with pytest.raises(
        InvalidOptionError, match=r"^labels='boundary'; expected one of \['eroded', 'full'\]$"
    ):
        evaluate(cfg)
    # It is checked first: a bad value fails before a (here missing) checkpoint is loaded
    # or a synthetic dataset is generated.
    cfg = eval_config(tmp_path, tmp_path / "missing.ckpt", "labels=boundary")
    with pytest.raises(InvalidOptionError, match=r"^labels='boundary'"):
        evaluate(cfg)


# --------------------------------------------------------------------------------------------
# pretrained encoder weights (lossd.models._backbone)
# --------------------------------------------------------------------------------------------
def test_a_timm_model_without_hub_weights_asks_for_a_local_file(
    monkeypatch: pytest.MonkeyPatch, no_network: None
) -> None:
    # Simulate a timm model whose default weights exist only at a legacy URL (as timm's
    # legacy_seresnet18 or gcvit_*): drop the hub id of the tiny backbone's pretrained config.
    pretrained_cfg = timm_registry._model_pretrained_cfgs[TINY_BACKBONE_TAG]
    url = "https://example.invalid/legacy/mobilenetv3_small_050.pth"
    monkeypatch.setattr(pretrained_cfg, "hf_hub_id", None)
    monkeypatch.setattr(pretrained_cfg, "url", url)
    with pytest.raises(
        WeightsUnavailableError,
        match=rf"^timm model '{TINY_BACKBONE}' has no Hugging Face hub weights \(legacy URL: "
        rf"{re.escape(url)}\); download the file yourself and pass backbone_weights=<path>, "
        r"or use pretrained=False$",
    ):
        build_model("fcn", 6, pretrained=True, backbone=TINY_BACKBONE)


# --------------------------------------------------------------------------------------------
# example predictions of a run (lossd.results.plots)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("given", ["path", "row"])
def test_example_predictions_of_a_record_without_output_dir_name_the_record(
    tmp_path: Path, given: str
) -> None:
    # a record with the required fields only (e.g. converted from another tool): no run folder
    record = {
        "dataset": "synthetic",
        "model": "fcn",
        "loss": "ce",
        "seed": 0,
        "metrics": {"mIoU": 0.5},
        "status": "completed",
    }
    path = write_record(tmp_path / "run", record)
    run = path if given == "path" else load_runs(path).iloc[0]  # a record file or a table row
    with pytest.raises(
        CheckpointError, match=rf"^run record '{re.escape(str(path))}' names no output_dir$"
    ):
        predict_examples(run)
