"""Runs of a W&B project as the frame of :func:`lossd.results.load_runs`.

The run records are the source of truth (docs/design.md, Conventions); this reader is for teams that
train on several machines and collect the runs in one W&B project. Each W&B run of
:class:`lossd.engine.loggers.WandbLogger` carries the resolved config (``dataset.name``,
``model.name``, ``loss.name``, ``seed``, ``experiment_name``) and, once finished, the summary
``best/<metric>`` of the best epoch (what a record's ``metrics`` holds) and ``test/<metric>``
of the test evaluation (a record's ``test`` block) when the run has them. Per-class values are
read from ``best/<metric>/<class>`` summary keys when a run has them; the logger of this
version stores per-class values only as a W&B table, so such columns are usually absent, and
the per-class tables need the run records.
"""

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from lossd.errors import InvalidOptionError
from lossd.metrics import metric_names, per_class_names
from lossd.results.runs import deduplicate, record_to_row, runs_frame

__all__ = ["WANDB_STATES", "load_wandb_runs", "wandb_run_to_row"]

log = logging.getLogger(__name__)

WANDB_STATES = {
    "finished": "completed",
    "failed": "failed",
    "crashed": "failed",
    "killed": "failed",
    "running": "running",
    "pending": "running",
}
"""W&B run state -> record ``status``."""


def _unwrap(value: Any) -> Any:
    """W&B config values may come as ``{"value": v, "desc": ...}``."""
    if isinstance(value, Mapping) and "value" in value and set(value) <= {"value", "desc"}:
        return value["value"]
    return value


def _lookup(config: Mapping[str, Any], dotted: str) -> Any:
    """``config["a"]["b"]`` or a flat ``config["a.b"]`` for ``dotted="a.b"``; None if absent."""
    if dotted in config:
        return _unwrap(config[dotted])
    node: Any = config
    for part in dotted.split("."):
        node = _unwrap(node)
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return _unwrap(node)


def _class_names(dataset: str) -> list[str]:
    from lossd.data import DATASET_MODULES, get_info

    return list(get_info(dataset).classes) if dataset in DATASET_MODULES else []


def _summary_metrics(summary: Mapping[str, Any], prefix: str, names: list[str]) -> dict[str, Any]:
    """``<prefix>/<metric>`` and ``<prefix>/<metric>/<class>`` summary values as record metrics."""
    metrics: dict[str, Any] = {m: summary.get(f"{prefix}/{m}") for m in metric_names()}
    for metric in per_class_names():
        values = [summary.get(f"{prefix}/{metric}/{c}") for c in names]
        if any(v is not None for v in values):
            metrics[metric] = values
    return metrics


def wandb_run_to_row(run: Any) -> dict[str, Any] | None:
    """One W&B run (``wandb.apis.public.Run`` or an object with the same attributes) as a row.

    Reads ``run.config``, ``run.summary_metrics``, ``run.state``, ``run.path`` and
    ``run.created_at``. Returns None for a run without ``dataset.name``, ``model.name``,
    ``loss.name`` and ``seed`` in its config (not a lossd training run).
    """
    config: Mapping[str, Any] = dict(run.config or {})
    summary: Mapping[str, Any] = dict(run.summary_metrics or {})
    keys = {k: _lookup(config, f"{k}.name") for k in ("dataset", "model", "loss")}
    seed = _lookup(config, "seed")
    if any(v is None for v in keys.values()) or seed is None:
        return None
    dataset = str(keys["dataset"])
    names = _class_names(dataset)
    eval_classes = _lookup(config, "dataset.eval_classes")
    path = getattr(run, "path", None)
    metrics = _summary_metrics(summary, "best", names)
    tested = _summary_metrics(summary, "test", names)
    test = None
    if any(v is not None for v in tested.values()):
        test = {"split": _lookup(config, "test.split") or "test", "metrics": tested}
    return {
        **keys,
        "seed": int(seed),
        "experiment": _lookup(config, "experiment_name"),
        "status": WANDB_STATES.get(str(getattr(run, "state", "")), str(getattr(run, "state", ""))),
        "best_epoch": None,
        "epochs": summary.get("epoch"),
        "wall_time_s": summary.get("_runtime"),
        "finished_at": getattr(run, "created_at", None),
        "git_commit": None,
        "path": "wandb:" + "/".join(map(str, path)) if path else None,
        "output_dir": None,
        "metrics": metrics,
        "protocol": _lookup(config, "protocol"),
        "val": {"split": _lookup(config, "dataset.val.split") or "val"},
        "test": test,
        "class_names": names,
        "eval_classes": list(eval_classes) if eval_classes else None,
    }


def _rows(runs: Iterable[Any]) -> Iterable[dict[str, Any]]:
    for run in runs:
        row = wandb_run_to_row(run)
        if row is None:
            log.warning("W&B run %s skipped: its config has no dataset/model/loss/seed", run)
            continue
        yield record_to_row(row)


def load_wandb_runs(path: str, api: Any | None = None, dedupe: bool = True) -> pd.DataFrame:
    """Runs of the W&B project ``ENTITY/PROJECT`` as the frame of :func:`load_runs`.

    Args:
        path: ``ENTITY/PROJECT``.
        api: A ``wandb.Api``-like object (``api.runs(path)`` iterates runs); default a new
            ``wandb.Api()`` (needs ``wandb login`` and the network).
        dedupe: Keep one row per (dataset, model, loss, seed) (completed first, then newest).

    Returns:
        One row per lossd run of the project; runs that are not lossd training runs are skipped.

    Raises:
        InvalidOptionError: If ``path`` is not ``ENTITY/PROJECT``.
        ConnectionError: If W&B cannot be reached or the project cannot be read.
    """
    parts = path.split("/")
    if len(parts) != 2 or not all(parts):
        raise InvalidOptionError(f"--wandb {path!r}: expected ENTITY/PROJECT, e.g. my-team/lossd")
    try:
        if api is None:
            import wandb

            api = wandb.Api(timeout=30)
        frame = runs_frame(_rows(api.runs(path)))
    except Exception as err:
        # Failures of the W&B client or the network become one message; others are bugs.
        module = type(err).__module__
        if not (isinstance(err, OSError) or module.startswith(("wandb", "requests", "urllib3"))):
            raise
        raise ConnectionError(
            f"cannot read W&B project '{path}' ({type(err).__name__}: {err}); check the name, "
            "run `wandb login`, and the network, or tabulate the run records instead (--runs)"
        ) from err
    return deduplicate(frame) if dedupe else frame
