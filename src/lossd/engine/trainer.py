"""The training loop: plain PyTorch, one screen per step, no framework on top.

:class:`Trainer` receives built objects (model, objective, optimizer, loaders, metrics, logger)
and knows nothing of configs or of which model or dataset it trains; :func:`lossd.engine.run`
builds those objects from the Hydra config.
"""

import logging
import math
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from lossd.data.transforms import denormalize
from lossd.engine.checkpoint import capture_rng_state, restore_rng_state, save_checkpoint
from lossd.engine.loggers import NullLogger, RunLogger
from lossd.engine.runtime import DistContext
from lossd.errors import InvalidOptionError, NonFiniteLossError
from lossd.io import atomic_path
from lossd.losses.objective import SegmentationObjective
from lossd.metrics import SegmentationMetrics

__all__ = ["TrainState", "Trainer", "TrainerOptions"]

log = logging.getLogger(__name__)


@dataclass
class TrainState:
    """What a checkpoint must restore besides module states."""

    epoch: int = 0  # completed epochs
    global_step: int = 0
    best_score: float = -math.inf
    best_epoch: int = -1
    best_metrics: dict[str, Any] = field(default_factory=dict)
    last_metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain containers for the checkpoint."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class TrainerOptions:
    """The ``trainer.*`` settings the loop uses (see conf/train.yaml for each)."""

    max_epochs: int
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    val_every_n_epochs: int = 1
    log_every_n_steps: int = 10
    monitor: str = "mIoU"
    grad_clip: float | None = None
    nonfinite: str = "stop"
    num_log_images: int = 4
    progress: bool = True

    def __post_init__(self) -> None:
        if self.max_epochs < 1:
            raise InvalidOptionError(f"trainer.max_epochs={self.max_epochs}; expected >= 1")
        if self.nonfinite not in {"stop", "skip"}:
            raise InvalidOptionError(
                f"trainer.nonfinite={self.nonfinite!r}; expected 'stop' or 'skip'"
            )
        for name in ("limit_train_batches", "limit_val_batches"):
            value = getattr(self, name)
            if value is not None and (value <= 0 or (isinstance(value, float) and value > 1)):
                raise InvalidOptionError(
                    f"trainer.{name}={value}; expected a batch count >= 1 or a fraction in (0, 1]"
                )


def _num_batches(loader: DataLoader[Any], limit: int | float | None) -> int:
    total = len(loader)
    if limit is None:
        return total
    if isinstance(limit, float):
        return max(1, int(total * limit))
    return min(total, int(limit))


def _take(loader: Iterable[Any], count: int) -> Iterator[Any]:
    for index, batch in enumerate(loader):
        if index >= count:
            return
        yield batch


class Trainer:
    """Runs epochs of training and validation and keeps checkpoints.

    Args:
        model: The network (already on ``device``; wrapped in DDP by the trainer if distributed).
        objective: The loss recipe; receives the raw model output and the target.
        optimizer: Optimizer over the model's parameter groups.
        scheduler: Learning-rate scheduler stepped once per epoch (GeoSeg's recipes).
        train_loader: Training batches ``{"image", "mask", "name"}``.
        val_loader: Validation batches (whole prepared tiles).
        metrics: Metric accumulator for validation.
        options: Loop settings.
        device: Where the model lives.
        amp_dtype: Autocast dtype (None = float32).
        class_names: For tables and image overlays.
        checkpoint_dir: Where ``last.ckpt`` and ``best.ckpt`` go (None = no checkpoints).
        logger: Experiment logger (rank 0); others get a :class:`NullLogger`.
        dist_ctx: Distributed context.
        extra_checkpoint: Values stored in every checkpoint (config fingerprint, W&B id, ...).
    """

    def __init__(
        self,
        model: nn.Module,
        objective: SegmentationObjective,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None,
        train_loader: DataLoader[Any],
        val_loader: DataLoader[Any],
        metrics: SegmentationMetrics,
        options: TrainerOptions,
        device: torch.device,
        amp_dtype: torch.dtype | None = None,
        class_names: Sequence[str] = (),
        checkpoint_dir: Path | None = None,
        logger: RunLogger | None = None,
        dist_ctx: DistContext | None = None,
        extra_checkpoint: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.dist = dist_ctx or DistContext()
        self.net: nn.Module = (
            DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
            if self.dist.distributed
            else model
        )
        self.objective = objective
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.metrics = metrics
        self.options = options
        self.device = device
        self.amp_dtype = amp_dtype
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
        self.class_names = list(class_names)
        self.checkpoint_dir = checkpoint_dir
        self.logger = logger if (logger is not None and self.dist.is_main) else NullLogger()
        self.extra_checkpoint = dict(extra_checkpoint or {})
        self.state = TrainState()

    # ----------------------------------------------------------------- checkpoints
    def checkpoint_state(self) -> dict[str, Any]:
        """Everything :meth:`load_state` needs to continue exactly."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
            "trainer": self.state.to_dict(),
            "rng": capture_rng_state(),
            **self.extra_checkpoint,
        }

    def load_state(self, checkpoint: dict[str, Any]) -> None:
        """Restore a checkpoint written by :meth:`checkpoint_state`."""
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scheduler is not None and checkpoint.get("scheduler") is not None:
            self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.scaler.load_state_dict(checkpoint["scaler"])
        self.state = TrainState(**checkpoint["trainer"])
        restore_rng_state(checkpoint["rng"])

    def _save(self, name: str, also_best: bool = False) -> None:
        if self.checkpoint_dir is None or not self.dist.is_main:
            return
        path = save_checkpoint(self.checkpoint_dir / name, self.checkpoint_state())
        if also_best:
            with atomic_path(self.checkpoint_dir / "best.ckpt") as tmp:
                shutil.copyfile(path, tmp)

    # ----------------------------------------------------------------- loop
    def _autocast(self) -> Any:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _to_device(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        non_blocking = self.device.type == "cuda"
        images = batch["image"].to(self.device, non_blocking=non_blocking)
        target = batch["mask"].to(self.device, non_blocking=non_blocking)
        return images, target

    def fit(self) -> TrainState:
        """Train from ``state.epoch`` to ``max_epochs``, validating and checkpointing."""
        opts = self.options
        for epoch in range(self.state.epoch, opts.max_epochs):
            self._set_epoch(epoch)
            train_terms = self.train_epoch(epoch)
            if self.scheduler is not None:
                self.scheduler.step()
            entry: dict[str, float] = {"epoch": float(epoch + 1), **train_terms}
            is_last = epoch + 1 == opts.max_epochs
            improved = False
            if (epoch + 1) % opts.val_every_n_epochs == 0 or is_last:
                metrics = self.validate(epoch)
                entry.update({k: v for k, v in metrics.items() if isinstance(v, float)})
                self.state.last_metrics = metrics
                score = float(metrics[opts.monitor])
                if score > self.state.best_score or self.state.best_epoch < 0:
                    self.state.best_score, self.state.best_epoch = score, epoch + 1
                    self.state.best_metrics = metrics
                    improved = True
            self.state.epoch = epoch + 1
            self.state.history.append(entry)
            self._save("last.ckpt", also_best=improved)
        return self.state

    def _set_epoch(self, epoch: int) -> None:
        """Select epoch ``epoch``'s sample order and augmentation stream."""
        for owner in (self.train_loader.sampler, self.train_loader.dataset):
            set_epoch = getattr(owner, "set_epoch", None)
            if callable(set_epoch):
                set_epoch(epoch)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training batches; returns the mean of each loss term."""
        self.net.train()
        num_batches = _num_batches(self.train_loader, self.options.limit_train_batches)
        sums: dict[str, float] = {}
        seen = 0
        bar = tqdm(
            _take(self.train_loader, num_batches),
            total=num_batches,
            desc=f"epoch {epoch + 1}/{self.options.max_epochs}",
            disable=not (self.options.progress and self.dist.is_main),
            dynamic_ncols=True,
            leave=False,
        )
        start = time.perf_counter()
        images_done = 0
        for step, batch in enumerate(bar):
            self.objective.set_progress(epoch + step / num_batches)
            images, target = self._to_device(batch)
            with self._autocast():
                outputs = self.net(images)
            total, terms = self.objective(outputs, target)
            # One host synchronisation per step for every logged term.
            values = dict(zip(terms, torch.stack(list(terms.values())).tolist(), strict=True))
            if not self._finite(values, epoch, step):
                continue
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(total).backward()
            if self.options.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.options.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.state.global_step += 1
            for name, value in values.items():
                sums[name] = sums.get(name, 0.0) + value
            seen += 1
            images_done += images.shape[0]
            rate = images_done / max(time.perf_counter() - start, 1e-9)
            bar.set_postfix(loss=f"{values['total']:.4f}", img_s=f"{rate:.1f}")
            if self.state.global_step % self.options.log_every_n_steps == 0:
                lrs = {
                    f"lr/{g.get('name', i)}": g["lr"]
                    for i, g in enumerate(self.optimizer.param_groups)
                }
                self.logger.log_metrics(
                    {
                        **{f"train/{k}": v for k, v in values.items()},
                        **lrs,
                        "train/img_per_s": rate,
                    },
                    step=self.state.global_step,
                )
        bar.close()
        return {f"train_{k}": v / max(seen, 1) for k, v in sums.items()}

    def _all_finite(self, finite: bool) -> bool:
        """Whether the loss is finite on every process (one tiny all-reduce under DDP).

        All processes must take the same decision: a process that skips or stops while the
        others run backward would leave them waiting in DDP's gradient all-reduce forever.
        """
        if not self.dist.distributed:
            return finite
        flag = torch.tensor([0.0 if finite else 1.0], device=self.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return not bool(flag.item())

    def _finite(self, values: dict[str, float], epoch: int, step: int) -> bool:
        here = math.isfinite(values["total"])
        if self._all_finite(here):
            return True
        described = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        where = ""
        if self.dist.distributed:
            where = " on another process" if here else f" on rank {self.dist.rank}"
        message = f"non-finite loss{where} at epoch {epoch + 1}, step {step} ({described})"
        if self.options.nonfinite == "skip":
            log.warning("%s; batch skipped (trainer.nonfinite=skip)", message)
            self.optimizer.zero_grad(set_to_none=True)
            return False
        raise NonFiniteLossError(
            f"{message}; the last good checkpoint is kept. Lower the learning rate, or set "
            "trainer.nonfinite=skip to skip such batches"
        )

    @torch.no_grad()
    def validate(self, epoch: int) -> dict[str, Any]:
        """Metrics on the validation batches (summed over processes when distributed)."""
        self.net.eval()
        self.metrics.reset()
        num_batches = _num_batches(self.val_loader, self.options.limit_val_batches)
        shown: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        transform = getattr(self.val_loader.dataset, "transform", None)
        for batch in tqdm(
            _take(self.val_loader, num_batches),
            total=num_batches,
            desc="validate",
            disable=not (self.options.progress and self.dist.is_main),
            dynamic_ncols=True,
            leave=False,
        ):
            images, target = self._to_device(batch)
            with self._autocast():
                logits = self.net(images)
            pred = logits.argmax(dim=1)
            self.metrics.update(pred, target)
            for i in range(min(images.shape[0], self.options.num_log_images - len(shown))):
                shown.append(
                    (
                        denormalize(images[i], transform),
                        pred[i].to(torch.uint8).cpu().numpy(),
                        target[i].to(torch.uint8).cpu().numpy(),
                    )
                )
        self.metrics.sync()
        metrics = self.metrics.compute()
        self._log_validation(metrics, shown, epoch)
        return metrics

    def _log_validation(
        self,
        metrics: dict[str, Any],
        shown: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
        epoch: int,
    ) -> None:
        step = self.state.global_step
        scalars = {f"val/{k}": v for k, v in metrics.items() if isinstance(v, float)}
        self.logger.log_metrics({**scalars, "epoch": epoch + 1}, step=step)
        per_class = [
            [name, *(metrics[key][c] for key in ("IoU", "F1", "BIoU"))]
            for c, name in enumerate(self.class_names)
        ]
        self.logger.log_table("val/per_class", ["class", "IoU", "F1", "BIoU"], per_class, step)
        if shown:
            images, preds, targets = zip(*shown, strict=True)
            self.logger.log_segmentations(
                "val/examples", images, preds, targets, self.class_names, step
            )
        if self.dist.is_main:
            summary = ", ".join(
                f"{k} {metrics[k]:.4f}" for k in ("mIoU", "mF1", "OA", "mBIoU") if k in metrics
            )
            tqdm.write(f"epoch {epoch + 1}: {summary}")
