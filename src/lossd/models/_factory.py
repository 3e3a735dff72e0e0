"""``build_model``: network name -> constructor, plus local checkpoint loading.

A plain dict lookup (docs/style.md, "House style": no registry decorators).
"""

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lossd.errors import CheckpointError, InvalidOptionError
from lossd.models._blocks import SegmentationModel
from lossd.models.abcnet import ABCNet
from lossd.models.fcn import FCN8s
from lossd.models.sfanet import SFANet
from lossd.models.unetformer import UNetFormer

__all__ = ["MODEL_CONSTRUCTORS", "MODEL_NAMES", "build_model", "load_weights"]

MODEL_CONSTRUCTORS: dict[str, Callable[..., SegmentationModel]] = {
    "unetformer": UNetFormer,
    "abcnet": ABCNet,
    "fcn": FCN8s,
    "sfanet": SFANet,
}

#: Names accepted by :func:`build_model`, in table order.
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_CONSTRUCTORS)

#: Wrapper prefixes stripped from checkpoint keys when every key has one: DistributedDataParallel
#: (``module.``), GeoSeg's Lightning module (``net.``), and a generic ``model.``.
_WRAPPER_PREFIXES = ("module.", "net.", "model.")
_MAX_LISTED_KEYS = 5


def build_model(
    name: str,
    num_classes: int,
    pretrained: bool = False,
    weights: str | Path | None = None,
    **kwargs: Any,
) -> SegmentationModel:
    """Build a segmentation network by name.

    Args:
        name: one of :data:`MODEL_NAMES` (``unetformer``, ``abcnet``, ``fcn``, ``sfanet``).
        num_classes: output classes.
        pretrained: load the encoder's timm weights (HF cache, else a download). Ignored when
            ``weights`` is given, since the checkpoint replaces every parameter.
        weights: local checkpoint of the whole network (see :func:`load_weights`).
        **kwargs: architecture arguments of the network's constructor (``backbone``,
            ``decode_channels``, ``window_size``, ``backbone_weights``, ...).

    Returns:
        The network. Evaluation mode returns logits [B, num_classes, H, W]; training mode the
        tuple ``(main, aux_1, ...)`` of length ``1 + model.num_aux_outputs``.

    Raises:
        InvalidOptionError: unknown ``name`` or architecture argument.
        WeightsUnavailableError: ``pretrained=True`` but the weights are not available offline.
        CheckpointError: ``weights`` cannot be read or was made for another network.
    """
    constructor = MODEL_CONSTRUCTORS.get(name)
    if constructor is None:
        raise InvalidOptionError(
            f"unknown model name={name!r}; expected one of {', '.join(MODEL_NAMES)}"
        )
    accepted = [
        p
        for p in inspect.signature(constructor).parameters
        if p not in ("num_classes", "pretrained")
    ]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise InvalidOptionError(
            f"unknown architecture argument(s) {unknown} for model {name!r}; expected some of "
            f"{accepted}"
        )
    model = constructor(
        num_classes=num_classes, pretrained=pretrained and weights is None, **kwargs
    )
    if weights is not None:
        load_weights(model, weights)
    return model


def _extract_state_dict(checkpoint: object, path: Path) -> dict[str, Tensor]:
    if isinstance(checkpoint, Mapping):
        for key in ("model", "state_dict"):
            if isinstance(checkpoint.get(key), Mapping):
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in checkpoint.items()
    ):
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds no state dict; expected a mapping of parameter "
            "names to tensors, or {'model': state_dict} / {'state_dict': state_dict}"
        )
    state_dict: dict[str, Tensor] = dict(checkpoint)
    for prefix in _WRAPPER_PREFIXES:
        if state_dict and all(k.startswith(prefix) for k in state_dict):
            state_dict = {k[len(prefix) :]: v for k, v in state_dict.items()}
    return state_dict


def _guess_num_classes(
    model: SegmentationModel, mismatched: list[str], state_dict: Mapping[str, Tensor]
) -> int | None:
    """Number of classes a checkpoint was trained for, from a class-sized output layer.

    A layer whose first dimension is ``k * num_classes`` in the model and differs from the
    checkpoint only there gives ``checkpoint_dim0 / k``.
    """
    own = model.state_dict()
    for key in mismatched:
        mine, theirs = own[key].shape, state_dict[key].shape
        if len(mine) != len(theirs) or mine[1:] != theirs[1:]:
            continue
        if mine[0] % model.num_classes == 0:
            factor = mine[0] // model.num_classes
            if theirs[0] % factor == 0:
                return int(theirs[0] // factor)
    return None


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED_KEYS])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > _MAX_LISTED_KEYS else "")


def load_weights(model: SegmentationModel, weights: str | Path) -> None:
    """Load a local checkpoint into ``model`` strictly, with an explicit error on mismatch.

    The file is read with ``torch.load(weights_only=True)``. Accepted content: a raw state
    dict, ``{"model": state_dict}`` or ``{"state_dict": state_dict}``; a ``module.``,
    ``net.`` or ``model.`` prefix on every key is removed, then the network's
    ``remap_state_dict`` maps original (GeoSeg) keys.

    Args:
        model: the network to fill.
        weights: path of the checkpoint.

    Raises:
        CheckpointError: the file is missing or unreadable, or its keys or shapes differ
            from the network's (the message lists them and the number of classes the
            checkpoint seems to have been trained for).
    """
    path = Path(weights)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {str(path)!r} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and weights_only errors alike
        raise CheckpointError(
            f"cannot read checkpoint {str(path)!r} with torch.load(weights_only=True): {err}"
        ) from err
    state_dict = type(model).remap_state_dict(_extract_state_dict(checkpoint, path))
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [k for k in own if k in state_dict and own[k].shape != state_dict[k].shape]
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"missing keys: {_listed(missing)}")
        if unexpected:
            problems.append(f"unexpected keys: {_listed(unexpected)}")
        if mismatched:
            shapes = [
                f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}" for k in mismatched
            ]
            problems.append(f"shape mismatches (checkpoint vs model): {_listed(shapes)}")
        guess = _guess_num_classes(model, mismatched, state_dict)
        trained_for = (
            f"; it seems to have been trained for num_classes={guess}" if guess is not None else ""
        )
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not fit {type(model).__name__}"
            f"(num_classes={model.num_classes}): {'; '.join(problems)}{trained_for}"
        )
    model.load_state_dict(state_dict)
