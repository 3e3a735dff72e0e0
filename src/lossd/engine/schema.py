"""Typed config nodes: Hydra checks ``trainer``, ``metrics`` and ``inference`` when composing.

Each option is declared once, in the dataclass the code uses: :class:`TrainerOptions`
(``trainer.*``), :class:`MetricsOptions` (``metrics.*``) and :class:`InferenceOptions`
(``inference.*``). :func:`node_schema` derives from each the dataclass Hydra's ConfigStore
takes (OmegaConf types: a ``Literal`` becomes ``str``, a tuple a list, any other union
``Any``), registered by :func:`register_schemas` and named first in the defaults lists of
``conf/train.yaml``, ``conf/eval.yaml`` and ``conf/inference/*.yaml``, so the YAML values merge
into typed nodes: ``trainer.max_epochs=abc`` or ``metrics.diagnostics=maybe`` fails before
anything is built, naming the key. Each field's ``help`` is the one description of the option
(``scripts/predict.py`` builds its flags from :class:`InferenceOptions`).
"""

import dataclasses
import types
import typing
from dataclasses import MISSING, fields
from typing import Any, Literal, Union, get_args, get_origin

from hydra.core.config_store import ConfigStore

from lossd.engine.inference import InferenceOptions
from lossd.engine.options import MetricsOptions, TrainerOptions

__all__ = ["node_schema", "register_schemas"]

_PLAIN = (int, float, bool, str)


def _node_type(annotation: Any) -> Any:
    """An OmegaConf-compatible type for a field's annotation (see the module docstring)."""
    if annotation in _PLAIN or annotation is Any:
        return annotation
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return str
    if origin is tuple and args and args[-1] is Ellipsis and args[0] in _PLAIN:
        return list[args[0]]  # type: ignore[valid-type]
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1 and len(args) == 2:
            inner = _node_type(options[0])
            return inner if inner is Any else typing.Optional[inner]  # noqa: UP045
    return Any


def node_schema(options: type) -> type:
    """The Hydra node dataclass of an options dataclass: same fields, defaults and help."""
    hints = typing.get_type_hints(options, include_extras=False)
    spec = []
    for item in fields(options):
        default: Any = item.default if item.default is not MISSING else None
        spec.append(
            (
                item.name,
                _node_type(hints[item.name]),
                dataclasses.field(default=default, metadata=dict(item.metadata)),
            )
        )
    return dataclasses.make_dataclass(f"{options.__name__}Node", spec)


def register_schemas() -> None:
    """Register the typed nodes in Hydra's ConfigStore (idempotent)."""
    store = ConfigStore.instance()
    store.store(group="schema", name="trainer", node=node_schema(TrainerOptions), package="trainer")
    store.store(group="schema", name="metrics", node=node_schema(MetricsOptions), package="metrics")
    store.store(
        group="schema", name="inference", node=node_schema(InferenceOptions), package="inference"
    )
