"""Rebuild a trained network from a training checkpoint, ready for evaluation or prediction.

A training checkpoint (:mod:`lossd.engine.checkpoint`) stores the model's state dict with the
model name, the number of classes and the full resolved training config. The network is
rebuilt from ``config["model"]["net"]`` (the ``build_model`` arguments, with ``pretrained`` and
any weight-file argument switched off, since the state dict replaces every parameter, so
nothing is downloaded or read besides the checkpoint) and the state dict is loaded strictly.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from torch import nn

from lossd.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from lossd.engine.checkpoint import load_checkpoint
from lossd.engine.config import build
from lossd.errors import CheckpointError, LossdError

__all__ = [
    "REQUIRED_KEYS",
    "check_checkpoint",
    "input_channels",
    "load_model_from_checkpoint",
    "model_from_checkpoint",
    "normalization",
]

REQUIRED_KEYS = ("model", "model_name", "num_classes", "config")
"""Checkpoint entries needed to rebuild the network (written by ``lossd.engine.run``)."""

_WEIGHT_ARGUMENTS = ("weights", "backbone_weights")
"""``build_model`` arguments that name weight files: unused when the state dict is loaded."""


def check_checkpoint(
    checkpoint: Mapping[str, Any],
    path: str | Path,
    expect_model: str | None = None,
    expect_num_classes: int | None = None,
) -> None:
    """Check that a loaded checkpoint can rebuild its network and is the one asked for.

    Args:
        checkpoint: The dict returned by :func:`lossd.engine.checkpoint.load_checkpoint`.
        path: Its file (for messages).
        expect_model: Model name the caller needs (None: any).
        expect_num_classes: Number of classes the caller needs (None: any).

    Raises:
        CheckpointError: If an entry is missing, or the model or class count differs from the
            expected one (the message names both and the dataset the checkpoint was trained on).
    """
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise CheckpointError(
            f"checkpoint '{path}' lacks {missing}; expected a checkpoint written by "
            "scripts/train.py (checkpoints/best.ckpt or last.ckpt of a run folder)"
        )
    config = checkpoint["config"]
    dataset = config.get("dataset", {}).get("name", "?") if isinstance(config, Mapping) else "?"
    name = checkpoint["model_name"]
    if expect_model is not None and name != expect_model:
        raise CheckpointError(
            f"checkpoint '{path}' holds a '{name}' model (trained on {dataset}); expected "
            f"'{expect_model}'. Pass a checkpoint of {expect_model}, or drop the expected model"
        )
    num_classes = int(checkpoint["num_classes"])
    if expect_num_classes is not None and num_classes != expect_num_classes:
        raise CheckpointError(
            f"checkpoint '{path}' was trained for {num_classes} classes (dataset {dataset}); "
            f"expected {expect_num_classes}. Pass a checkpoint trained on a dataset with "
            f"{expect_num_classes} classes, or choose the dataset it was trained on"
        )
    net = config.get("model", {}).get("net") if isinstance(config, Mapping) else None
    if not isinstance(net, Mapping) or "_target_" not in net:
        raise CheckpointError(
            f"checkpoint '{path}' has no config['model']['net'] with a _target_; cannot "
            "rebuild its network"
        )


def model_from_checkpoint(
    checkpoint: Mapping[str, Any],
    path: str | Path,
    device: torch.device | str = "cpu",
    expect_model: str | None = None,
    expect_num_classes: int | None = None,
) -> nn.Module:
    """Rebuild the network of a loaded checkpoint, load its weights, eval mode, on ``device``.

    Args:
        checkpoint: The dict returned by :func:`lossd.engine.checkpoint.load_checkpoint`.
        path: Its file (for messages).
        device: Where the network goes.
        expect_model: Model name the caller needs (None: any).
        expect_num_classes: Number of classes the caller needs (None: any).

    Returns:
        The network in evaluation mode.

    Raises:
        CheckpointError: See :func:`check_checkpoint`; also if the state dict does not fit the
            rebuilt network.
    """
    check_checkpoint(checkpoint, path, expect_model, expect_num_classes)
    net = dict(checkpoint["config"]["model"]["net"])
    net["pretrained"] = False
    for key in _WEIGHT_ARGUMENTS:
        if key in net:
            net[key] = None
    try:
        model: nn.Module = build(net)
    except LossdError as err:
        raise CheckpointError(f"cannot rebuild the network of '{path}': {err}") from err
    except InstantiationException as err:
        # e.g. a _target_ renamed since the checkpoint was written, or an argument it no
        # longer takes: Hydra's message names the target; say which file and what to do.
        raise CheckpointError(
            f"cannot rebuild the network of '{path}': {err}. Was it written by another "
            "version of lossd? Its config['model']['net'] must name a network of this one"
        ) from err
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as err:
        raise CheckpointError(
            f"the weights in '{path}' do not fit the network its config describes "
            f"({checkpoint['model_name']}, {checkpoint['num_classes']} classes): {err}"
        ) from err
    return model.to(device).eval()


def load_model_from_checkpoint(
    path: str | Path,
    device: torch.device | str = "cpu",
    expect_model: str | None = None,
    expect_num_classes: int | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a training checkpoint and rebuild its network.

    Args:
        path: A checkpoint written by ``scripts/train.py`` (``checkpoints/best.ckpt``).
        device: Where the network goes.
        expect_model: Model name the caller needs, e.g. ``unetformer`` (None: any).
        expect_num_classes: Number of classes the caller needs (None: any).

    Returns:
        ``(model, train_config)``: the network in eval mode and the training config (plain
        dict; ``train_config["dataset"]["name"]`` is the dataset it was trained on).

    Raises:
        CheckpointError: If the file is missing, unreadable, not a lossd checkpoint, or for
            another model or number of classes than expected.
    """
    checkpoint = load_checkpoint(path)
    model = model_from_checkpoint(checkpoint, path, device, expect_model, expect_num_classes)
    return model, dict(checkpoint["config"])


def normalization(train_config: Mapping[str, Any]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std (0..1 scale) the network was trained with.

    Read from the ``mean``/``std`` arguments of the training config's evaluation transform
    (``dataset.val.transform``); ImageNet's when it sets none (``eval_transform`` defaults).
    """
    dataset = train_config.get("dataset") or {}
    val = dataset.get("val") if isinstance(dataset, Mapping) else None
    transform = val.get("transform") if isinstance(val, Mapping) else None
    transform = transform if isinstance(transform, Mapping) else {}
    mean: Sequence[float] = transform.get("mean") or IMAGENET_MEAN
    std: Sequence[float] = transform.get("std") or IMAGENET_STD
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def input_channels(model: nn.Module) -> int:
    """Number of image bands the network takes: ``in_channels`` of its first convolution."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return int(module.in_channels)
    raise CheckpointError(f"{type(model).__name__} has no convolution; cannot tell its input bands")
