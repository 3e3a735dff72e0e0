"""Display names and headline metrics of datasets, models and losses, from where they are defined.

Each name is defined with its component: a dataset's ``label`` and ``headline_metric`` in its
module (:class:`lossd.data.DatasetInfo`), a model's and a loss's ``label`` in its config file
(``conf/model/<name>.yaml``, ``conf/loss/<name>.yaml``). Run records copy them (``labels``,
``headline_metric``), and :class:`Labels` prefers a record's copy, so tables name a run as its
record does; records written before labels existed get them from the definitions here.
"""

from collections.abc import Mapping
from functools import cache
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from lossd.data import DATASET_MODULES, get_info
from lossd.engine.config import CONF_DIR

__all__ = ["Labels", "config_label", "dataset_label", "headline_metric"]


KINDS = ("dataset", "model", "loss")


def dataset_label(name: str) -> str:
    """``DatasetInfo.label`` of a known dataset, else the name."""
    return get_info(name).label if name in DATASET_MODULES else name


def headline_metric(dataset: str) -> str:
    """``DatasetInfo.headline_metric`` of a known dataset, else ``mIoU``."""
    return get_info(dataset).headline_metric if dataset in DATASET_MODULES else "mIoU"


@cache
def config_label(group: str, name: str) -> str:
    """The ``label`` of ``conf/<group>/<name>.yaml``, else the name (unknown or no label)."""
    path = CONF_DIR / group / f"{name}.yaml"
    if not path.is_file():
        return name
    node = OmegaConf.load(path)
    label = node.get("label") if isinstance(node, Mapping) else None
    return str(label) if isinstance(label, str) and "${" not in label else name


def _default(kind: str, name: str) -> str:
    return dataset_label(name) if kind == "dataset" else config_label(kind, name)


class Labels:
    """Display names for the runs of a frame: each record's own labels first, then definitions.

    Args:
        recorded: ``{kind: {name: label}}`` taken from run records (kinds: dataset, model, loss).
    """

    def __init__(self, recorded: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.recorded = {kind: dict((recorded or {}).get(kind, {})) for kind in KINDS}

    @classmethod
    def from_runs(cls, runs: pd.DataFrame) -> "Labels":
        """The labels recorded in a runs frame (column ``labels`` of :mod:`lossd.results.runs`)."""
        recorded: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}
        if "labels" in runs.columns:
            for _, row in runs.iterrows():
                labels: Any = row["labels"]
                if not isinstance(labels, Mapping):
                    continue
                for kind in KINDS:
                    if labels.get(kind):
                        recorded[kind].setdefault(str(row[kind]), str(labels[kind]))
        return cls(recorded)

    def __call__(self, kind: str, name: str) -> str:
        """The display name of ``name`` of kind ``dataset``, ``model`` or ``loss``."""
        return self.recorded[kind].get(name) or _default(kind, name)

    def dataset(self, name: str) -> str:
        """Display name of a dataset."""
        return self("dataset", name)

    def model(self, name: str) -> str:
        """Display name of a model."""
        return self("model", name)

    def loss(self, name: str) -> str:
        """Display name of a loss."""
        return self("loss", name)
