"""Run records as a table: one row per run, mean metrics and per-class columns.

The records (``metrics.json``, :mod:`lossd.records`) are the source of truth for every
table and figure (docs/design.md, Conventions); this module flattens them into a
:class:`pandas.DataFrame` that :mod:`lossd.results.tables`, :mod:`lossd.results.plots` and
``notebooks/analysis.ipynb`` share. W&B runs are converted into the same shape by
:mod:`lossd.results.wandb_runs`.

Columns of the frame:

- keys: ``dataset``, ``model``, ``loss``, ``seed``; run facts: ``experiment``, ``protocol``,
  ``split`` (where the metrics come from: the test split when the record has test metrics,
  else the validation split of the selected epoch; :func:`reported_metrics`), ``status``,
  ``best_epoch``, ``epochs``, ``wall_time_s``, ``finished_at``, ``git_commit``, ``path`` (the
  record file, or the W&B run path), ``output_dir`` (the Hydra run folder);
- mean metrics (fractions in 0..1, NaN when absent, e.g. ``mBF`` in records older than it):
  every metric of the catalogue (``lossd.metrics.metric_names()``: mIoU, mF1, OA, mBIoU, mBF,
  mPrecision, mRecall);
- per-class metrics ``"<metric>/<class name>"`` for the per-class lists of the catalogue
  (``lossd.metrics.per_class_names()``, e.g. ``IoU/building``) that the records hold; classes
  of other datasets are NaN;
- lists kept as objects: ``labels`` (the record's display names of its dataset, model and
  loss, None in records older than them), ``class_names``, ``eval_classes``, and the
  over/under-segmentation histograms ``fp_distance_hist`` / ``fn_depth_hist`` ([C][bins]
  pixel counts) with their
  ``diagnostic_bins`` when the run had ``metrics.diagnostics=true`` (else None).
"""

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lossd.metrics import metric_names, per_class_names
from lossd.records import find_records, read_record

__all__ = [
    "KEY_COLUMNS",
    "completed_runs",
    "deduplicate",
    "load_runs",
    "per_class_column",
    "record_to_row",
    "reported_metrics",
    "runs_frame",
]

log = logging.getLogger(__name__)

KEY_COLUMNS = ("dataset", "model", "loss", "seed")
"""Identity of a run: one grid cell and one seed."""

_FACT_COLUMNS = (
    "experiment",
    "protocol",
    "status",
    "best_epoch",
    "epochs",
    "wall_time_s",
    "finished_at",
    "git_commit",
    "path",
    "output_dir",
)
_LIST_COLUMNS = (
    "labels",
    "class_names",
    "eval_classes",
    "fp_distance_hist",
    "fn_depth_hist",
    "diagnostic_bins",
)
_HISTOGRAMS = ("fp_distance_hist", "fn_depth_hist", "diagnostic_bins")


def per_class_column(metric: str, class_name: str) -> str:
    """Column name of one class's value of a per-class metric: ``"IoU/building"``."""
    return f"{metric}/{class_name}"


def completed_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The rows of completed runs (a row without ``status`` counts as completed)."""
    if runs.empty:
        return runs
    return runs[runs["status"].fillna("completed").eq("completed")]


def _float(value: Any) -> float:
    """A metric value as float; None, non-numbers and booleans become NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def reported_metrics(record: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    """The metrics a record reports and the split they come from.

    The test block's when it has metrics (the protocol's checkpoint on the test split), else the
    selected epoch's validation metrics.
    """
    test = record.get("test")
    if isinstance(test, Mapping) and isinstance(test.get("metrics"), Mapping):
        return test["metrics"], str(test.get("split") or "test")
    val = record.get("val")
    split = str(val.get("split") or "val") if isinstance(val, Mapping) else "val"
    return record.get("metrics") or {}, split


def record_to_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten one run record (as :func:`lossd.results.read_record` returns it) into a row.

    Class names come from the record's ``class_names`` (``class<i>`` where it has none);
    evaluated classes from ``eval_classes`` (the record's, else its metrics', else all).
    """
    metrics, split = reported_metrics(record)
    row: dict[str, Any] = {
        "dataset": str(record["dataset"]),
        "model": str(record["model"]),
        "loss": str(record["loss"]),
        "seed": int(record["seed"]),
    }
    for key in _FACT_COLUMNS:
        row[key] = record.get(key)
    row["split"] = split
    for name in metric_names():
        row[name] = _float(metrics.get(name))
    per_class = per_class_names()
    lengths = [len(v) for k in per_class if isinstance(v := metrics.get(k), list)]
    num_classes = max(lengths, default=0)
    names = list(record.get("class_names") or [])
    if len(names) < num_classes:
        names += [f"class{i}" for i in range(len(names), num_classes)]
    for name in per_class:
        values = metrics.get(name)
        if not isinstance(values, list):
            continue
        for class_name, value in zip(names, values, strict=False):
            row[per_class_column(name, class_name)] = _float(value)
    eval_classes = record.get("eval_classes") or metrics.get("eval_classes")
    labels = record.get("labels")
    row["labels"] = dict(labels) if isinstance(labels, Mapping) else None
    row["class_names"] = names
    row["eval_classes"] = (
        [int(c) for c in eval_classes] if eval_classes else list(range(len(names)))
    )
    for key in _HISTOGRAMS:
        row[key] = metrics.get(key)
    return row


def runs_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows of :func:`record_to_row` as a frame with the key and metric columns always present."""
    frame = pd.DataFrame(list(rows))
    means = metric_names()
    base = [*KEY_COLUMNS, *_FACT_COLUMNS, "split", *means]
    for column in base:
        if column not in frame.columns:
            frame[column] = pd.Series(dtype=float if column in means else object)
    for column in _LIST_COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.Series([None] * len(frame), dtype=object)
    per_class = [c for c in frame.columns if c not in base and c not in _LIST_COLUMNS]
    frame = frame[[*base, *per_class, *_LIST_COLUMNS]]
    if len(frame):
        frame["seed"] = frame["seed"].astype(int)
    return frame.reset_index(drop=True)


def deduplicate(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, model, loss, seed): completed before failed, then the newest.

    The same cell can have several records, e.g. when ``--runs`` spans two grids that trained
    it, or a Hydra output folder besides the results folder. The rows dropped are logged.
    """
    if runs.empty:
        return runs
    order = runs.assign(
        _completed=runs["status"].eq("completed"),
        _finished=runs["finished_at"].fillna("").astype(str),
    ).sort_values(["_completed", "_finished", "path"], na_position="first", kind="stable")
    keep = order.drop_duplicates(list(KEY_COLUMNS), keep="last")
    dropped = order.index.difference(keep.index)
    for index in dropped:
        row = runs.loc[index]
        log.warning(
            "run record '%s' ignored: another record of %s/%s/%s seed %s is newer or completed",
            row["path"],
            row["dataset"],
            row["model"],
            row["loss"],
            row["seed"],
        )
    return runs.loc[sorted(keep.index)].reset_index(drop=True)


def load_runs(root: str | Path | Sequence[str | Path], dedupe: bool = True) -> pd.DataFrame:
    """Load every run record (``metrics.json``) below ``root`` into one frame, one row per run.

    Args:
        root: A results folder (e.g. ``results/runs/synthetic_grid``), a single record file, or
            a list of either.
        dedupe: Keep one row per (dataset, model, loss, seed) (see :func:`deduplicate`).

    Returns:
        The frame described in the module docstring (empty, with its key and metric columns,
        when no record is found). Failed runs are included with their ``status``.

    Raises:
        FileNotFoundError: If ``root`` does not exist.
        DataFormatError: If a record is not valid JSON or lacks a required field.
    """
    roots = [root] if isinstance(root, str | Path) else list(root)
    paths: list[Path] = []
    for entry in map(Path, roots):
        if entry.is_file():
            paths.append(entry)
        elif entry.is_dir():
            paths.extend(find_records(entry))
        else:
            raise FileNotFoundError(
                f"run folder '{entry}' not found; expected a paths.results_dir holding "
                "<dataset>/<model>/<loss>/seed<k>/metrics.json (e.g. results/runs/"
                "synthetic_grid, written by: python scripts/train.py -m experiment=synthetic_grid)"
            )
    frame = runs_frame(record_to_row(read_record(p)) for p in paths)
    return deduplicate(frame) if dedupe else frame
