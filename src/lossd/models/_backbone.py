"""timm feature extractors used as encoders, with offline-safe pretrained weights.

Every network of ``lossd.models`` takes its encoder from
``timm.create_model(name, features_only=True, output_stride=32, out_indices=...)`` and reads
the channel widths from ``feature_info.channels()``, as GeoSeg does
(WangLibo1995/GeoSeg: geoseg/models/UNetFormer.py, ``UNetFormer.__init__``).

Pretrained weights come, in this order, from a local file (``weights_file``), from the
Hugging Face cache, or from the Hugging Face hub. Nothing is downloaded unless
``pretrained=True`` is asked for, and a failed download raises one
:class:`~lossd.errors.WeightsUnavailableError` that names the timm model, its hub id and how to
provide the file offline: ``python scripts/fetch_weights.py`` (:mod:`lossd.models.weights`)
fills the cache with every backbone of conf/model/ on a machine with network access.
"""

import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import timm
from huggingface_hub import constants as hf_constants
from huggingface_hub import hf_hub_download, try_to_load_from_cache
from torch import nn

from lossd.errors import CheckpointError, InvalidOptionError, WeightsUnavailableError

__all__ = [
    "FETCH_COMMAND",
    "HUB_WEIGHT_FILES",
    "cached_hub_file",
    "check_encoder_strides",
    "create_backbone",
    "feature_channels_and_strides",
    "hub_location",
    "resolve_pretrained_file",
]

#: Seconds to wait for a TCP connection to the hub before giving up on a download. Without
#: this probe huggingface_hub retries a failed request five times with back-off (about 25 s).
HUB_PROBE_TIMEOUT_S = 3.0

#: File names that timm publishes on the Hugging Face hub, preferred first
#: (timm/models/_hub.py: ``HF_SAFE_WEIGHTS_NAME``, ``HF_WEIGHTS_NAME``).
HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

#: The command that puts the pretrained weights of every configured backbone into the cache
#: (scripts/fetch_weights.py; run it where the network is reachable, e.g. a login node).
FETCH_COMMAND = "python scripts/fetch_weights.py"


def _check_model_name(name: str) -> None:
    if not timm.is_model(name):
        raise InvalidOptionError(
            f"backbone={name!r} is not a timm model; expected a name listed by "
            "timm.list_models(), e.g. 'resnet18.fb_swsl_ig1b_ft_in1k' or 'efficientnet_b3'"
        )


def _create(name: str, out_indices: Sequence[int], weights_file: Path | None = None) -> nn.Module:
    """``timm.create_model(features_only=True, output_stride=32)``, optionally from a file."""
    overlay = None if weights_file is None else {"file": str(weights_file)}
    model = timm.create_model(
        name,
        pretrained=weights_file is not None,
        features_only=True,
        output_stride=32,
        out_indices=tuple(out_indices),
        pretrained_cfg_overlay=overlay,
    )
    return model


def _hub_id(model: nn.Module) -> tuple[str | None, str | None]:
    """Return the Hugging Face hub id and the legacy URL of a timm model's default weights."""
    cfg = cast(dict[str, object], getattr(model, "pretrained_cfg", None) or {})
    hub_id, url = cfg.get("hf_hub_id"), cfg.get("url")
    return (
        hub_id if isinstance(hub_id, str) and hub_id else None,
        url if isinstance(url, str) and url else None,
    )


def hub_location(name: str) -> tuple[str | None, str | None]:
    """Hub id and legacy URL of a timm model's pretrained weights, from timm's registry.

    The same as the ``pretrained_cfg`` of ``timm.create_model(name)`` without building it.

    Raises:
        InvalidOptionError: ``name`` is not a timm model.
    """
    _check_model_name(name)
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        return None, None
    url = cfg.url[0] if isinstance(cfg.url, tuple) else cfg.url  # (url, filename) or url
    return cfg.hf_hub_id or None, url or None


def cached_hub_file(hub_id: str) -> Path | None:
    """The weights file of a hub repository in the Hugging Face cache, or None (no network).

    The cache is ``huggingface_hub.constants.HF_HUB_CACHE`` (``$HF_HOME/hub`` by default).
    """
    for filename in HUB_WEIGHT_FILES:
        cached = try_to_load_from_cache(hub_id, filename)
        if isinstance(cached, str):
            return Path(cached)
    return None


def _one_line(err: BaseException) -> str:
    """``Type: message`` with the message's whitespace (newlines included) collapsed."""
    return f"{type(err).__name__}: {' '.join(str(err).split())}"


def _hub_unreachable_reason() -> str | None:
    """Why the Hugging Face hub cannot be reached now, or None if a download may work."""
    if hf_constants.is_offline_mode():
        return "HF_HUB_OFFLINE is set"
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None  # a proxy decides; let huggingface_hub try
    endpoint = urlsplit(hf_constants.ENDPOINT)
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=HUB_PROBE_TIMEOUT_S):
            return None
    except OSError as err:
        return f"cannot connect to {host}:{port} within {HUB_PROBE_TIMEOUT_S:g} s ({err})"


def resolve_pretrained_file(name: str) -> Path:
    """Find the pretrained weights of a timm model in the HF cache, or download them there.

    Args:
        name: timm model name, optionally with a pretrained tag (``arch.tag``).

    Returns:
        Path of the cached weights file.

    Raises:
        InvalidOptionError: ``name`` is not a timm model.
        WeightsUnavailableError: the weights are neither cached nor downloadable (offline).
    """
    _check_model_name(name)
    return _resolve_hub_file(name, *_hub_id(timm.create_model(name, pretrained=False)))


def _resolve_hub_file(name: str, hub_id: str | None, url: str | None) -> Path:
    if hub_id is None:
        raise WeightsUnavailableError(
            f"timm model {name!r} has no Hugging Face hub weights (legacy URL: {url}); download "
            "the file yourself and pass backbone_weights=<path>, or use pretrained=False"
        )
    cached = cached_hub_file(hub_id)
    if cached is not None:
        return cached
    reason = _hub_unreachable_reason()
    try:
        if reason is not None:
            raise ConnectionError(reason)
        return Path(hf_hub_download(hub_id, HUB_WEIGHT_FILES[0]))
    except Exception as err:  # network, DNS, offline mode, missing file: all mean "unavailable"
        raise WeightsUnavailableError(
            f"pretrained weights for timm model {name!r} (Hugging Face hub id {hub_id!r}) are "
            f"not in the Hugging Face cache ({hf_constants.HF_HUB_CACHE}) and could not be "
            f"downloaded ({_one_line(err)}). Run `{FETCH_COMMAND}` once on a machine with "
            "network access (e.g. a login node) with the same HF_HOME: it caches the weights "
            "of every configured backbone there. Or download "
            f"https://huggingface.co/{hub_id}/resolve/main/{HUB_WEIGHT_FILES[0]} and pass "
            "backbone_weights=<path to that file> (Hydra: +model.net.backbone_weights=<path>), "
            "or use pretrained=False"
        ) from err


def create_backbone(
    name: str,
    out_indices: Sequence[int],
    *,
    pretrained: bool = False,
    weights_file: str | Path | None = None,
) -> nn.Module:
    """Create a timm feature extractor with output stride 32.

    Args:
        name: timm model name (``arch`` or ``arch.tag``).
        out_indices: feature levels to return (timm ``out_indices``).
        pretrained: load timm's pretrained weights from the HF cache, downloading them if
            the network is reachable.
        weights_file: local weights file (``.safetensors``, ``.pth``, ``.bin``) of the
            classification model ``name``; implies ``pretrained`` and never touches the network.

    Returns:
        The timm ``features_only`` module; ``feature_info.channels()`` and
        ``feature_info.reduction()`` describe its outputs.

    Raises:
        InvalidOptionError: ``name`` is not a timm model or cannot give these features.
        WeightsUnavailableError: pretrained weights were asked for and cannot be found.
        CheckpointError: ``weights_file`` cannot be read or does not fit ``name``.
    """
    _check_model_name(name)
    try:
        model = _create(name, out_indices)
    except Exception as err:  # timm raises IndexError, TypeError, ... for unfit models
        raise InvalidOptionError(
            f"backbone={name!r} cannot be a timm features_only encoder with output_stride=32 "
            f"and out_indices={tuple(out_indices)} ({type(err).__name__}: {err})"
        ) from err
    if weights_file is not None:
        path = Path(weights_file)
        if not path.is_file():
            raise WeightsUnavailableError(
                f"backbone weights file {str(path)!r} does not exist; expected the weights of "
                f"timm model {name!r} (see https://huggingface.co/timm)"
            )
    elif pretrained:
        path = _resolve_hub_file(name, *_hub_id(model))
    else:
        return model
    try:
        return _create(name, out_indices, path)
    except Exception as err:  # torch.load, safetensors and load_state_dict errors alike
        raise CheckpointError(
            f"cannot load backbone weights {str(path)!r} into timm model {name!r}: {err}"
        ) from err


def feature_channels_and_strides(backbone: nn.Module) -> tuple[list[int], list[int]]:
    """Channels and strides of a timm feature extractor's outputs (its ``feature_info``)."""
    info: Any = backbone.feature_info
    return [int(c) for c in info.channels()], [int(r) for r in info.reduction()]


def check_encoder_strides(
    backbone_name: str, strides: Sequence[int], expected: Sequence[int]
) -> None:
    """Raise InvalidOptionError if a timm backbone's feature strides are not ``expected``."""
    if list(strides) != list(expected):
        raise InvalidOptionError(
            f"backbone={backbone_name!r} gives features at strides {list(strides)}; expected "
            f"{list(expected)}"
        )
