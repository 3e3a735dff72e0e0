"""Pretrained backbone weights: which the configs use, whether they are cached, and fetching them.

Training with ``model.pretrained=true`` reads the encoder's timm weights from the Hugging Face
cache (:func:`lossd.models._backbone.resolve_pretrained_file`), ``huggingface_hub``'s
``HF_HUB_CACHE`` (``$HF_HOME/hub``, ``~/.cache/huggingface/hub`` by default). On machines
without network access, run ``python scripts/fetch_weights.py`` once where the hub is
reachable (e.g. a login node) with the same ``HF_HOME``; ``--check`` reports what is cached.
Every configured backbone has Hugging Face hub weights, so ``TORCH_HOME`` (timm's legacy-URL
cache) is neither read nor written.
"""

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import constants as hf_constants
from huggingface_hub import hf_hub_download

from lossd.errors import InvalidOptionError, WeightsUnavailableError
from lossd.models._backbone import (
    FETCH_COMMAND,
    HUB_WEIGHT_FILES,
    _hub_unreachable_reason,
    _one_line,
    cached_hub_file,
    hub_location,
)
from lossd.models._factory import MODEL_CONSTRUCTORS

__all__ = [
    "FETCH_COMMAND",
    "PRETRAINED_BACKBONES",
    "WeightStatus",
    "check_weights",
    "fetch_weights",
    "format_weight_status",
    "hub_cache_dir",
]


def _default_backbone(constructor: Callable[..., object]) -> str:
    """The ``backbone`` default of a network's constructor: its module's own timm encoder."""
    default = inspect.signature(constructor).parameters["backbone"].default
    if not isinstance(default, str):
        raise TypeError(f"{constructor} has no default timm backbone name")
    return default


PRETRAINED_BACKBONES: dict[str, str] = {
    name: _default_backbone(constructor) for name, constructor in MODEL_CONSTRUCTORS.items()
}
"""Model name -> its timm backbone: each network module's own ``DEFAULT_BACKBONE`` (the
constructor's default), which ``net.backbone`` of conf/model/<model>.yaml names too
(tests/models/test_weights.py checks the configs against it)."""


@dataclass(frozen=True)
class WeightStatus:
    """Where the pretrained weights of one backbone stand.

    Attributes:
        backbone: timm model name (``arch`` or ``arch.tag``).
        models: The lossd models that use it.
        hub_id: Its Hugging Face hub repository (``timm/arch.tag``).
        path: The cached weights file, or ``None`` if it is not cached.
    """

    backbone: str
    models: tuple[str, ...]
    hub_id: str
    path: Path | None

    @property
    def cached(self) -> bool:
        """Whether the weights are in the cache."""
        return self.path is not None


def hub_cache_dir() -> Path:
    """The Hugging Face cache that training reads (``HF_HUB_CACHE``, set via ``HF_HOME``)."""
    return Path(hf_constants.HF_HUB_CACHE)


def _backbones(models: Sequence[str] | None) -> dict[str, tuple[str, ...]]:
    """Backbone -> models using it, for ``models`` (None: all), in table order."""
    names = list(PRETRAINED_BACKBONES) if models is None else list(models)
    unknown = [m for m in names if m not in PRETRAINED_BACKBONES]
    if unknown:
        raise InvalidOptionError(
            f"unknown model(s) {unknown}; expected some of {', '.join(PRETRAINED_BACKBONES)}"
        )
    used: dict[str, tuple[str, ...]] = {}
    for model, backbone in PRETRAINED_BACKBONES.items():
        if model in names:
            used[backbone] = (*used.get(backbone, ()), model)
    return used


def _status(backbone: str, models: tuple[str, ...]) -> WeightStatus:
    hub_id, url = hub_location(backbone)
    if hub_id is None:
        raise WeightsUnavailableError(
            f"timm model {backbone!r} (used by {', '.join(models)}) has no Hugging Face hub "
            f"weights (legacy URL: {url}); download the file yourself and pass "
            "backbone_weights=<path>"
        )
    return WeightStatus(backbone, models, hub_id, cached_hub_file(hub_id))


def check_weights(models: Sequence[str] | None = None) -> list[WeightStatus]:
    """Report, without any network access, which backbone weights are cached.

    Args:
        models: lossd model names (``unetformer``, ``abcnet``, ``fcn``, ``sfanet``); None: all.

    Returns:
        One status per distinct backbone, in the order of :data:`PRETRAINED_BACKBONES`.

    Raises:
        InvalidOptionError: An unknown model name.
        WeightsUnavailableError: A backbone has no Hugging Face hub weights.
    """
    return [_status(backbone, users) for backbone, users in _backbones(models).items()]


def fetch_weights(
    models: Sequence[str] | None = None, log: Callable[[str], None] | None = None
) -> list[WeightStatus]:
    """Download the missing backbone weights into the Hugging Face cache.

    Weights already cached are not downloaded again. The hub is probed once before any
    download, so without network access this fails at once with one message.

    Args:
        models: lossd model names; None: all.
        log: Called with one line per download (e.g. ``print``).

    Returns:
        The statuses after fetching (every backbone cached).

    Raises:
        InvalidOptionError: An unknown model name.
        WeightsUnavailableError: The hub is unreachable or a download failed; the message
            names the missing weights and the cache.
    """
    statuses = check_weights(models)
    missing = [s for s in statuses if not s.cached]
    if not missing:
        return statuses
    names = ", ".join(f"{s.backbone} ({s.hub_id})" for s in missing)
    reason = _hub_unreachable_reason()
    if reason is not None:
        raise WeightsUnavailableError(
            f"cannot download the pretrained weights of {names}: the Hugging Face hub is "
            f"unreachable ({reason}). Run `{FETCH_COMMAND}` on a machine with network access "
            "(e.g. a login node) and without HF_HUB_OFFLINE, with the HF_HOME that training "
            f"uses, so that {hub_cache_dir()} is filled"
        )
    fetched = {}
    for status in missing:
        if log is not None:
            log(f"downloading {status.hub_id}/{HUB_WEIGHT_FILES[0]} for {status.backbone}")
        try:
            fetched[status.backbone] = Path(hf_hub_download(status.hub_id, HUB_WEIGHT_FILES[0]))
        except Exception as err:  # network, HTTP, disk: one message naming the weights
            raise WeightsUnavailableError(
                f"downloading the pretrained weights of {status.backbone} "
                f"(https://huggingface.co/{status.hub_id}/resolve/main/{HUB_WEIGHT_FILES[0]}) "
                f"into {hub_cache_dir()} failed ({_one_line(err)})"
            ) from err
    return [
        WeightStatus(s.backbone, s.models, s.hub_id, fetched.get(s.backbone, s.path))
        for s in statuses
    ]


def format_weight_status(statuses: Sequence[WeightStatus]) -> str:
    """One line per backbone: ``cached``/``MISSING``, timm name, models, file or hub id."""
    width = max((len(s.backbone) for s in statuses), default=0)
    lines = []
    for s in statuses:
        where = str(s.path) if s.path is not None else f"hub id {s.hub_id}"
        state = "cached " if s.cached else "MISSING"
        lines.append(f"{state}  {s.backbone:<{width}}  [{', '.join(s.models)}]  {where}")
    return "\n".join(lines)
