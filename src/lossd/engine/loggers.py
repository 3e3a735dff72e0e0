"""Experiment loggers: Weights & Biases (offline by default) and a no-op logger.

W&B is the experiment log, never a dependency of the results: run records are written
independently (docs/design.md, Conventions). A W&B failure (no network, bad key, server error) never
stops training: the logger falls back to offline mode, then to no logging, and says so once.
"""

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["NullLogger", "RunLogger", "WandbLogger"]

log = logging.getLogger(__name__)


class RunLogger:
    """Interface of the loggers; this base class logs nothing (``logger=none``)."""

    run_id: str | None = None
    run_dir: str | None = None

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Log scalars at a global step."""

    def log_table(
        self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], step: int
    ) -> None:
        """Log a small table (e.g. per-class metrics)."""

    def log_segmentations(
        self,
        name: str,
        images: Sequence[np.ndarray],
        predictions: Sequence[np.ndarray],
        targets: Sequence[np.ndarray],
        class_names: Sequence[str],
        step: int,
    ) -> None:
        """Log images with predicted and true masks overlaid (uint8 H×W×3, H×W, H×W)."""

    def summary(self, values: Mapping[str, Any]) -> None:
        """Set final summary values of the run."""

    def finish(self, exit_code: int = 0) -> None:
        """Close the run."""


class NullLogger(RunLogger):
    """Logs nothing (``logger=none``)."""

    def __init__(self, **_: Any) -> None:
        pass


class WandbLogger(RunLogger):
    """Weights & Biases logger; ``mode="offline"`` writes a local run folder to sync later.

    Args:
        dir: Folder that receives the ``wandb/`` run folder (the Hydra run folder).
        run_config: Resolved config, stored with the run.
        project: W&B project.
        entity: W&B entity (user or team); None = the default of the login.
        mode: ``offline`` (default, no network), ``online`` or ``disabled``.
        name: Run name shown in the UI.
        group: Run group (e.g. the experiment), for grouping seeds and grid cells.
        tags: Run tags.
        run_id: Id of a run to continue (resume), or None for a new run.
    """

    def __init__(
        self,
        dir: str | Path,
        run_config: Mapping[str, Any] | None = None,
        project: str = "lossd",
        entity: str | None = None,
        mode: str = "offline",
        name: str | None = None,
        group: str | None = None,
        tags: Sequence[str] = (),
        run_id: str | None = None,
    ) -> None:
        import wandb

        self._wandb = wandb
        Path(dir).mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {
            "project": project,
            "entity": entity,
            "name": name,
            "group": group,
            "tags": list(tags),
            "config": dict(run_config or {}),
            "dir": str(dir),
            "id": run_id,
            "resume": "allow" if run_id else None,
            "settings": wandb.Settings(silent=True, init_timeout=60),
        }
        self._run: Any = None
        for attempt in dict.fromkeys([mode, "offline"]):
            try:
                self._run = wandb.init(mode=attempt, **kwargs)  # type: ignore[arg-type]
                break
            except Exception as err:  # wandb raises many types; training must go on
                log.warning("W&B %s mode failed (%s); falling back", attempt, err)
        if self._run is None:
            log.warning("W&B unavailable: this run is not logged to W&B (run record still kept)")
            return
        self.run_id = self._run.id
        self.run_dir = str(Path(self._run.dir).parent)

    def _call(self, fn: str, *args: Any, **kwargs: Any) -> None:
        if self._run is None:
            return
        try:
            getattr(self._run, fn)(*args, **kwargs)
        except Exception as err:  # never let logging stop training
            log.warning("W&B %s failed (%s); disabling W&B for the rest of the run", fn, err)
            self._run = None

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Log scalars at a global step."""
        self._call("log", dict(metrics), step=step)

    def log_table(
        self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], step: int
    ) -> None:
        """Log a ``wandb.Table``."""
        table = self._wandb.Table(columns=list(columns), data=[list(r) for r in rows])
        self._call("log", {name: table}, step=step)

    def log_segmentations(
        self,
        name: str,
        images: Sequence[np.ndarray],
        predictions: Sequence[np.ndarray],
        targets: Sequence[np.ndarray],
        class_names: Sequence[str],
        step: int,
    ) -> None:
        """Log images with W&B's interactive mask overlays (prediction and ground truth)."""
        labels = {**dict(enumerate(class_names)), 255: "ignore"}
        items = [
            self._wandb.Image(
                image,
                masks={
                    "prediction": {"mask_data": pred, "class_labels": labels},
                    "ground_truth": {"mask_data": target, "class_labels": labels},
                },
            )
            for image, pred, target in zip(images, predictions, targets, strict=True)
        ]
        self._call("log", {name: items}, step=step)

    def summary(self, values: Mapping[str, Any]) -> None:
        """Set final summary values."""
        if self._run is not None:
            try:
                self._run.summary.update(dict(values))
            except Exception as err:
                log.warning("W&B summary update failed (%s)", err)

    def finish(self, exit_code: int = 0) -> None:
        """Close the run (flushes the offline run folder)."""
        if self._run is not None:
            self._call("finish", exit_code=exit_code)
            self._run = None
