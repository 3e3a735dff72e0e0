"""The order and colours in which tables and figures show datasets, models and losses.

One place for what the tables (:mod:`lossd.results.tables`), the paired comparisons
(:mod:`lossd.results.comparisons`) and the figures (:mod:`lossd.results.plots`,
:mod:`lossd.results.evidence`) share: datasets in the order of the dataset registry
(:data:`lossd.data.DATASET_NAMES`), models in the order of the model registry
(:data:`lossd.models.MODEL_NAMES`), losses as the base recipe first, then the Lossd variants
(names starting with ``lossd``) by name, then the other losses by name; names unknown to a
registry come after the known ones, by name. Every loss keeps one colour in every figure
(:func:`loss_colours`).
"""

from collections.abc import Iterable, Sequence
from typing import Any

from lossd.data import DATASET_NAMES
from lossd.models import MODEL_NAMES

__all__ = [
    "BASE_LOSS",
    "LOSSD_LOSS",
    "loss_colours",
    "ordered",
    "ordered_datasets",
    "ordered_losses",
    "ordered_models",
    "rank",
]

BASE_LOSS = "base"
"""The model's own recipe (``conf/loss/base.yaml``), the reference of every comparison."""
LOSSD_LOSS = "lossd"
"""The recipe + Lossd (``conf/loss/lossd.yaml``), the main comparison."""

_KINDS = ("dataset", "model", "loss")
_BASE_COLOUR = "0.55"
_LOSSD_COLOUR = "tab:red"
# tab10 without its red and grey (taken above), then two more, so that the ten losses of a study
# such as experiment=losses_full besides the base recipe get ten distinct colours.
_OTHER_COLOURS = (
    "tab:blue",
    "tab:orange",
    "tab:green",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:olive",
    "tab:cyan",
    "black",
    "gold",
)


def rank(kind: str, name: str) -> tuple[int, int, str]:
    """Sort key of ``name`` among the ``kind`` names (``dataset``, ``model`` or ``loss``).

    Datasets and models: their index in the registry (unknown names after, by name). Losses:
    ``base``, then names starting with ``lossd``, then the others, each group by name.

    Raises:
        ValueError: If ``kind`` is not one of the three.
    """
    if kind == "loss":
        group = 0 if name == BASE_LOSS else 1 if name.startswith(LOSSD_LOSS) else 2
        return group, 0, name
    if kind not in _KINDS:
        raise ValueError(f"kind {kind!r}; expected one of {_KINDS}")
    names: Sequence[str] = DATASET_NAMES if kind == "dataset" else MODEL_NAMES
    return 0, names.index(name) if name in names else len(names), name


def ordered(values: Iterable[Any], kind: str) -> list[str]:
    """The distinct ``values`` (as strings) in the order of :func:`rank`."""
    return sorted({str(v) for v in values}, key=lambda name: rank(kind, name))


def ordered_datasets(values: Iterable[Any]) -> list[str]:
    """Distinct dataset names in registry order (:data:`lossd.data.DATASET_NAMES`)."""
    return ordered(values, "dataset")


def ordered_models(values: Iterable[Any]) -> list[str]:
    """Distinct model names in registry order (:data:`lossd.models.MODEL_NAMES`)."""
    return ordered(values, "model")


def ordered_losses(values: Iterable[Any]) -> list[str]:
    """Distinct loss names: base, the Lossd variants by name, the others by name."""
    return ordered(values, "loss")


def loss_colours(losses: Sequence[str]) -> dict[str, Any]:
    """A matplotlib colour per loss: base grey, Lossd red, the others from a fixed cycle.

    Red goes to ``lossd`` when the figure has it, else to the first Lossd variant drawn (e.g.
    ``lossd_x30``, the Lossd cell of ``experiment=losses_full``), so Lossd is red in every
    figure; the others take :data:`_OTHER_COLOURS` in order (repeating after ten).

    Args:
        losses: The losses of a figure, in the order they are drawn (:func:`ordered_losses`).
    """
    variants = [loss for loss in losses if loss.startswith(LOSSD_LOSS)]
    red = LOSSD_LOSS if LOSSD_LOSS in variants else (variants[0] if variants else None)
    others = iter(_OTHER_COLOURS * (len(losses) // len(_OTHER_COLOURS) + 1))
    fixed = {BASE_LOSS: _BASE_COLOUR}
    if red is not None:
        fixed[red] = _LOSSD_COLOUR
    return {loss: fixed.get(loss) or next(others) for loss in losses}
