"""Command-line flags built from the typed config nodes, so no option is declared twice.

``scripts/predict.py`` (argparse) takes the keys of ``conf/inference`` (the fields of
:class:`lossd.engine.inference.InferenceOptions`) as ``--patch-size``, ``--overlap``, ... with the
same meaning and help as ``inference.patch_size=...`` of ``scripts/evaluate.py``; a test-server
submission defaults to its dataset's test rule (``conf/inference/<dataset>.yaml``,
:func:`dataset_inference`), so the archive is predicted as the training run's test is.
"""

import argparse
from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any

from lossd.engine.inference import (
    BLEND_MODES,
    INTERPOLATIONS,
    PADDINGS,
    TTA_MODES,
    InferenceOptions,
)
from lossd.errors import InvalidOptionError

__all__ = ["add_inference_arguments", "dataset_inference", "inference_options_from_args"]

_CHOICES: dict[str, tuple[str, ...]] = {
    "tta": TTA_MODES,
    "blend": BLEND_MODES,
    "interpolation": INTERPOLATIONS,
    "pad": PADDINGS,
}
_LISTS: dict[str, type] = {"patch_size": int, "scales": float, "rotations": int}


def add_inference_arguments(
    parser: argparse.ArgumentParser, defaults: Mapping[str, Any] | None = None
) -> None:
    """Add one ``--<key>`` flag per field of :class:`InferenceOptions` to ``parser``.

    Args:
        parser: The parser to extend.
        defaults: Defaults that differ from the config's (e.g. prediction slides windows).
    """
    defaults = dict(defaults or {})
    group = parser.add_argument_group("inference (the keys of conf/inference)")
    for item in fields(InferenceOptions):
        default = defaults.get(item.name, None if item.default is MISSING else item.default)
        flag = "--" + item.name.replace("_", "-")
        text = f"{item.metadata['help']} (inference.{item.name}; default {default})"
        if item.name in _LISTS:
            group.add_argument(
                flag, type=_LISTS[item.name], nargs="+", default=default, help=text, metavar="N"
            )
        elif item.name in _CHOICES:
            group.add_argument(flag, choices=_CHOICES[item.name], default=default, help=text)
        else:
            group.add_argument(flag, type=type(default), default=default, help=text)


def dataset_inference(dataset: str) -> dict[str, Any]:
    """The test rule of ``dataset``: ``conf/inference/<dataset>.yaml`` composed, as plain values.

    Raises:
        DatasetNotFoundError: If the config folder is missing (lossd installed without its repo).
    """
    from lossd.engine.config import compose_config, to_container

    node = to_container(compose_config(f"inference/{dataset}"))["inference"]
    return dict(node)


def inference_options_from_args(args: argparse.Namespace) -> InferenceOptions:
    """:class:`InferenceOptions` from the flags of :func:`add_inference_arguments`.

    Raises:
        InvalidOptionError: For a bad value (e.g. three numbers to ``--patch-size``).
    """
    values = {item.name: getattr(args, item.name) for item in fields(InferenceOptions)}
    patch = values["patch_size"]
    if isinstance(patch, list):
        if len(patch) > 2:
            raise InvalidOptionError(f"--patch-size {patch}: expected N or H W")
        values["patch_size"] = patch[0] if len(patch) == 1 else tuple(patch)
    return InferenceOptions(**values)  # its __post_init__ turns the sequences into tuples
