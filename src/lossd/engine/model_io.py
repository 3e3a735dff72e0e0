"""Rebuild a trained network from a training checkpoint, ready for evaluation or prediction.

Everything needed is in the checkpoint's :class:`lossd.engine.checkpoint.CheckpointMeta`: the
network is rebuilt from ``meta.net`` (the ``build_model`` arguments, with ``pretrained`` and any
weight-file argument switched off, since the state dict replaces every parameter, so nothing is
downloaded or read besides the checkpoint) and the state dict is loaded strictly.
"""

from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from torch import nn

from lossd.engine.checkpoint import CheckpointMeta, load_checkpoint
from lossd.engine.config import build
from lossd.errors import CheckpointError, LossdError

__all__ = [
    "check_checkpoint",
    "input_channels",
    "load_model_from_checkpoint",
    "model_from_checkpoint",
]

_WEIGHT_ARGUMENTS = ("weights", "backbone_weights")
"""``build_model`` arguments that name weight files: unused when the state dict is loaded."""


def check_checkpoint(
    meta: CheckpointMeta,
    path: str | Path,
    expect_model: str | None = None,
    expect_num_classes: int | None = None,
) -> None:
    """Check that a checkpoint holds the model and number of classes the caller needs.

    Args:
        meta: The checkpoint's metadata block.
        path: Its file (for messages).
        expect_model: Model name the caller needs (None: any).
        expect_num_classes: Number of classes the caller needs (None: any).

    Raises:
        CheckpointError: If the model or class count differs from the expected one (the
            message names both and the dataset the checkpoint was trained on).
    """
    if expect_model is not None and meta.model_name != expect_model:
        raise CheckpointError(
            f"checkpoint '{path}' holds a '{meta.model_name}' model (trained on "
            f"{meta.dataset}); expected '{expect_model}'. Pass a checkpoint of {expect_model}, "
            "or drop the expected model"
        )
    if expect_num_classes is not None and meta.num_classes != expect_num_classes:
        raise CheckpointError(
            f"checkpoint '{path}' was trained for {meta.num_classes} classes (dataset "
            f"{meta.dataset}); expected {expect_num_classes}. Pass a checkpoint trained on a "
            f"dataset with {expect_num_classes} classes, or choose the dataset it was trained on"
        )


def model_from_checkpoint(
    checkpoint: dict[str, Any],
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
        CheckpointError: See :meth:`CheckpointMeta.from_checkpoint` and
            :func:`check_checkpoint`; also if the state dict does not fit the rebuilt network.
    """
    meta = CheckpointMeta.from_checkpoint(checkpoint, path)
    check_checkpoint(meta, path, expect_model, expect_num_classes)
    net = dict(meta.net)
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
            "version of lossd? Its network config must name a network of this one"
        ) from err
    try:
        model.load_state_dict(checkpoint["model"])
    except (RuntimeError, KeyError) as err:
        raise CheckpointError(
            f"the weights in '{path}' do not fit the network its config describes "
            f"({meta.model_name}, {meta.num_classes} classes): {err}"
        ) from err
    return model.to(device).eval()


def load_model_from_checkpoint(
    path: str | Path,
    device: torch.device | str = "cpu",
    expect_model: str | None = None,
    expect_num_classes: int | None = None,
) -> tuple[nn.Module, CheckpointMeta]:
    """Load a training checkpoint and rebuild its network.

    Args:
        path: A checkpoint written by ``scripts/train.py`` (``checkpoints/best.ckpt``).
        device: Where the network goes.
        expect_model: Model name the caller needs, e.g. ``unetformer`` (None: any).
        expect_num_classes: Number of classes the caller needs (None: any).

    Returns:
        ``(model, meta)``: the network in eval mode and the checkpoint's metadata
        (``meta.dataset`` is the dataset it was trained on, ``meta.config`` the config).

    Raises:
        CheckpointError: If the file is missing, unreadable, not a lossd checkpoint, written by
            an older lossd, or for another model or number of classes than expected.
    """
    checkpoint = load_checkpoint(path)
    model = model_from_checkpoint(checkpoint, path, device, expect_model, expect_num_classes)
    return model, CheckpointMeta.from_checkpoint(checkpoint, path)


def input_channels(model: nn.Module) -> int:
    """Number of image bands the network takes: ``in_channels`` of its first convolution."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return int(module.in_channels)
    raise CheckpointError(f"{type(model).__name__} has no convolution; cannot tell its input bands")
