"""Config helpers: resolvers that read class facts from the dataset modules, fingerprints.

The resolvers keep class counts and evaluation subsets out of YAML (docs/design.md: class lists live
once per dataset in ``lossd/data/<name>.py``)::

    num_classes: ${lossd.num_classes:${dataset.name}}
    eval_classes: ${lossd.eval_classes:${dataset.name}}

and the run identity (:class:`lossd.records.RunIdentity`) defined once in Python::

    run_name: ${lossd.run_name:${experiment_name},${dataset.name},${model.name},...}
"""

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from lossd.data.registry import get_info
from lossd.engine.schema import register_schemas
from lossd.records import run_name

__all__ = [
    "CONF_DIR",
    "VOLATILE_KEYS",
    "build",
    "compose_config",
    "config_fingerprint",
    "padding_label",
    "register_resolvers",
    "to_container",
]

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"
"""The repository's config folder (``conf/``; present in a clone or an editable install)."""

VOLATILE_KEYS: tuple[str, ...] = (
    "trainer.resume",
    "trainer.progress",
    "trainer.log_every_n_steps",
    "dataset.num_workers",
    "logger",
    "paths",
    "hydra",
    "skip_done",
    "test",
)
"""Keys that may change between a run and its resume without changing its results."""


def register_resolvers() -> None:
    """Register the ``lossd.*`` OmegaConf resolvers and the typed config nodes (idempotent)."""
    register_schemas()
    resolvers: dict[str, Callable[..., Any]] = {
        "lossd.num_classes": lambda name: get_info(name).num_classes,
        "lossd.eval_classes": lambda name: ListConfig(list(get_info(name).eval_classes)),
        "lossd.class_names": lambda name: ListConfig(list(get_info(name).classes)),
        "lossd.padding_label": padding_label,
        "lossd.run_name": run_name,
    }
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


def padding_label(dataset: str, protocol: str) -> int | None:
    """The class of the padding of ``dataset``'s prepared patches under ``protocol``.

    ``original`` reproduces the original preparation's label (GeoSeg's ISPRS tiles: 0,
    impervious surfaces; :attr:`DatasetInfo.original_padding_label`); any other protocol
    ignores the padding (None)::

        padding_label: ${lossd.padding_label:${dataset.name},${protocol}}
    """
    return get_info(dataset).original_padding_label if protocol == "original" else None


def compose_config(
    name: str, overrides: Sequence[str] = (), conf_dir: Path = CONF_DIR
) -> DictConfig:
    """Compose ``conf/<name>.yaml`` with ``overrides`` outside a Hydra app (tools, tests).

    Raises:
        DatasetNotFoundError: If ``conf_dir`` does not exist (lossd installed without its repo).
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from lossd.errors import DatasetNotFoundError

    if not conf_dir.is_dir():
        raise DatasetNotFoundError(
            f"config folder '{conf_dir}' not found; run from a clone of the lossd repository"
        )
    register_resolvers()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            return compose(name, overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain Python containers."""
    container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    if not isinstance(container, dict):
        raise TypeError("expected a mapping config")
    return {str(k): v for k, v in container.items()}


def _drop(tree: dict[str, Any], dotted: str) -> None:
    head, _, rest = dotted.partition(".")
    if head not in tree:
        return
    if not rest:
        del tree[head]
    elif isinstance(tree[head], dict):
        _drop(tree[head], rest)


def config_fingerprint(cfg: DictConfig, ignore: Iterable[str] = VOLATILE_KEYS) -> str:
    """A short hash of the resolved config without the keys that do not change results."""
    tree = to_container(cfg)
    for key in ignore:
        _drop(tree, key)
    blob = json.dumps(tree, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def build(node: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate``, re-raising a lossd error unwrapped.

    Hydra wraps every exception of a ``_target_`` in an ``InstantiationException`` whose message
    repeats the call; a user-facing :class:`lossd.errors.LossdError` is clearer on its own.
    """
    from lossd.errors import LossdError

    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, LossdError):
            raise cause from None
        raise
