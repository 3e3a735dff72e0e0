"""The training loop: plain PyTorch, one screen per step, no framework on top.

:class:`Trainer` receives built objects (model, objective, optimizer, loaders, metrics, logger)
and knows nothing of configs or of which model or dataset it trains; :func:`lossd.engine.run`
builds those objects from the Hydra config.

Stopping and resuming. ``last.ckpt`` is written after every epoch, every
``checkpoint_every_n_steps`` optimizer steps, and when the process receives one of
:data:`STOP_SIGNALS` (SIGTERM, SIGUSR1, SIGUSR2: what Slurm sends on a preemption, a
cancellation or, with ``sbatch --signal``, before the time limit; ``kill -USR1 <pid>`` from a
shell does the same). On such a signal the trainer finishes the step in progress, writes
``last.ckpt`` with its place in the epoch (batches done, the running loss sums, every random
state), hands the signal on to the handler that was installed before the trainer's (in a
submitit job: submitit's, which requeues the Slurm job) and raises
:class:`~lossd.errors.PreemptedError`. :meth:`Trainer.load_state` continues from that batch:
the sampler starts the epoch's order there (:class:`lossd.engine.loaders.ResumableSampler`) and
the dataset seeds each sample from ``(seed, epoch, index)``, so a resumed run ends with the
numbers of an uninterrupted one. Each resume is kept in ``TrainState.restarts``.
"""

import itertools
import logging
import math
import os
import shutil
import signal
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from lossd.data.transforms import denormalize
from lossd.engine.checkpoint import capture_rng_state, restore_rng_state, save_checkpoint
from lossd.engine.loggers import NullLogger, RunLogger
from lossd.engine.options import TrainerOptions
from lossd.engine.runtime import DistContext
from lossd.errors import NonFiniteLossError, PreemptedError
from lossd.io import atomic_path
from lossd.losses.objective import SegmentationObjective
from lossd.metrics import PerImageStats, SegmentationMetrics, metric_names, per_class_names

__all__ = ["STOP_SIGNALS", "TrainState", "Trainer"]

log = logging.getLogger(__name__)

STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGUSR1", "SIGUSR2") if hasattr(signal, name)
)
"""Signals on which :meth:`Trainer.fit` checkpoints its exact place and stops: SIGTERM (Slurm
preemption and ``scancel``), SIGUSR1 and SIGUSR2 (``sbatch --signal=<sig>@<seconds>`` before the
time limit; submitit asks for SIGUSR2, its ``SUBMITIT_PREEMPT_SIGNAL``)."""

_USER_SIGNALS = tuple(s for s in STOP_SIGNALS if s != getattr(signal, "SIGTERM", None))


class _StopRequested(Exception):
    """Internal: a stop signal arrived; unwinds the epoch to :meth:`Trainer.fit`."""


@dataclass
class TrainState:
    """What a checkpoint must restore besides module states.

    ``epoch_batches``, ``epoch_sums`` and ``epoch_seen`` locate a checkpoint written in the
    middle of epoch ``epoch`` (0-based; 0, ``{}``, 0 at an epoch boundary). ``restarts`` and
    ``requeues`` keep the interruptions of the run visible; see :meth:`Trainer.load_state` for
    the keys of a restart entry.
    """

    epoch: int = 0  # completed epochs
    global_step: int = 0
    best_score: float = -math.inf
    best_epoch: int = -1
    best_metrics: dict[str, Any] = field(default_factory=dict)
    last_metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    epoch_batches: int = 0  # batches of the epoch in progress already trained
    epoch_sums: dict[str, float] = field(default_factory=dict)  # their loss-term sums
    epoch_seen: int = 0  # finite batches among them (the divisor of the epoch means)
    checkpoint_time: float | None = None  # Unix time the checkpoint of this state was written
    stop: dict[str, Any] | None = None  # the signal that stopped the run (its last checkpoint)
    restarts: list[dict[str, Any]] = field(default_factory=list)  # one entry per resume
    requeues: int = 0  # times the run stopped on a signal after saving its place

    def to_dict(self) -> dict[str, Any]:
        """Plain containers for the checkpoint."""
        return dict(self.__dict__)


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


def _signal_name(signum: int | None) -> str | None:
    return None if signum is None else signal.Signals(signum).name


def _slurm_job() -> str | None:
    """The Slurm job of this process (``<array job>_<task>`` for an array), None outside Slurm."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID")


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
        self._signal: tuple[int, float] | None = None  # first stop signal and its Unix time
        self._previous_handlers: dict[int, Any] = {}
        self._checkpointed_at = time.time()  # last checkpoint, or the start of training
        self._resume_batches = 0  # batches of the first epoch trained before a resume
        # Per-image validation counts of the best epoch (metrics.per_image), checkpointed so
        # that a resumed run still writes them with its record.
        self.best_per_image: PerImageStats | None = None

    # ----------------------------------------------------------------- checkpoints
    def checkpoint_state(self) -> dict[str, Any]:
        """Everything :meth:`load_state` needs to continue exactly."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
            "trainer": self.state.to_dict(),
            "best_per_image": (
                None if self.best_per_image is None else self.best_per_image.to_checkpoint()
            ),
            "rng": capture_rng_state(),
            **self.extra_checkpoint,
        }

    def load_state(self, checkpoint: dict[str, Any]) -> None:
        """Restore a checkpoint written by :meth:`checkpoint_state`, and note the restart.

        A checkpoint written mid-epoch continues at its next batch. The restart is appended to
        ``state.restarts``, logged (the logger at ``global_step`` and its summary) and
        printed. Its keys: ``step`` (global step resumed from), ``epoch`` (completed epochs),
        ``batch`` (batches of the next epoch already trained), ``signal`` (name of the signal
        that stopped the previous process, None if it ended without one: killed, crashed),
        ``signal_time``, ``checkpoint_time`` and ``resume_time`` (Unix times),
        ``since_checkpoint_s`` (training time since the checkpoint before when the signal
        came: what stopping without the signal's checkpoint would have lost), ``lost_s``
        (training time redone after the resume: 0.0 after a signal's checkpoint, None when
        unknown), ``stop_s`` (signal to checkpoint: finishing the step), ``downtime_s``
        (checkpoint to resume: the requeue's wait and the start-up), ``slurm_job`` and
        ``slurm_restart_count`` (None outside Slurm).
        """
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scheduler is not None and checkpoint.get("scheduler") is not None:
            self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.scaler.load_state_dict(checkpoint["scaler"])
        self.state = TrainState(**checkpoint["trainer"])
        stored = checkpoint.get("best_per_image")
        self.best_per_image = None if stored is None else PerImageStats.from_checkpoint(stored)
        self._resume_batches = self.state.epoch_batches
        restore_rng_state(checkpoint["rng"])
        self._note_restart()

    def _note_restart(self) -> None:
        state = self.state
        stop = state.stop or {}
        now = time.time()
        signal_time = stop.get("signal_time")
        written = state.checkpoint_time
        restart_count = os.environ.get("SLURM_RESTART_COUNT")
        entry: dict[str, Any] = {
            "step": state.global_step,
            "epoch": state.epoch,
            "batch": state.epoch_batches,
            "signal": stop.get("signal"),
            "signal_time": signal_time,
            "checkpoint_time": written,
            "resume_time": now,
            "since_checkpoint_s": stop.get("since_checkpoint_s"),
            "lost_s": 0.0 if stop else None,
            "stop_s": None if signal_time is None or written is None else written - signal_time,
            "downtime_s": None if written is None else now - written,
            "slurm_job": _slurm_job(),
            "slurm_restart_count": None if restart_count is None else int(restart_count),
        }
        state.restarts.append(entry)
        state.stop = None
        where = (
            f"epoch {state.epoch + 1}, batch {state.epoch_batches}"
            if state.epoch_batches
            else f"after epoch {state.epoch}"
        )
        cause = f"stopped by {entry['signal']}" if entry["signal"] else "ended without a signal"
        if self.dist.is_main:
            tqdm.write(
                f"restart {len(state.restarts)}: resuming at step {state.global_step} ({where}); "
                f"the previous process {cause}"
            )
        numbers = {
            f"restart/{key}": float(entry[key])
            for key in ("step", "since_checkpoint_s", "lost_s", "stop_s", "downtime_s")
            if entry[key] is not None
        }
        counts = {"restarts": len(state.restarts), "requeues": state.requeues}
        # at the resumed step (W&B drops a step lower than one already logged)
        self.logger.log_metrics({**numbers, **counts}, step=state.global_step)
        self.logger.summary(counts)

    def _save(self, name: str, also_best: bool = False) -> None:
        if self.checkpoint_dir is None or not self.dist.is_main:
            return
        self.state.checkpoint_time = self._checkpointed_at = time.time()
        state = self.checkpoint_state()
        if not also_best:
            save_checkpoint(self.checkpoint_dir / name, state)
            return
        # best.ckpt first: a process killed in between resumes from the previous last.ckpt,
        # redoes this epoch and writes both again, and a last.ckpt never outlives its best.
        best = save_checkpoint(self.checkpoint_dir / "best.ckpt", state)
        with atomic_path(self.checkpoint_dir / name) as tmp:
            shutil.copyfile(best, tmp)

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
        """Train from the state's position to ``max_epochs``, validating and checkpointing.

        While it runs, :data:`STOP_SIGNALS` stop it cleanly (from the main thread; elsewhere
        signals keep their handlers). The exit path after such a signal:

        1. the step in progress finishes (a signal during validation stops it at the next
           batch; under DDP all processes agree on the step, and validation is finished);
        2. ``last.ckpt`` is written with the position in the epoch (rank 0), and
           ``state.requeues`` and ``state.stop`` record the signal;
        3. the signal handlers from before :meth:`fit` are restored, and the signal is handed
           to the previous Python handler of that signal, or for SIGUSR1/SIGUSR2 of either
           user signal: in a submitit job that is submitit's handler, which calls the
           launcher's ``checkpoint()``, requeues the Slurm job (``scontrol requeue``) and exits
           (or raises ``UncompletedJobError`` when the job timed out too often); its SIGTERM
           handler only logs (Slurm itself requeues a preempted job, and ``scancel`` means stop);
        4. :class:`~lossd.errors.PreemptedError` (a ``SystemExit``) is raised: the run's record
           is written with it, and it passes Hydra's and submitit's ``except Exception``, so
           the process ends without a job result and the requeued job (or the same command
           run again, ``trainer.resume=auto``) continues from the checkpoint.

        A signal after the last epoch's validation does not stop the run: only the final
        checkpoint and the record remain to be written.

        When it returns, ``last.ckpt`` and ``best.ckpt`` are on disk for every process.

        Raises:
            PreemptedError: After a stop signal, once ``last.ckpt`` holds the position.
        """
        opts = self.options
        self._checkpointed_at = time.time()
        with self._stop_signals():
            for epoch in range(self.state.epoch, opts.max_epochs):
                is_last = epoch + 1 == opts.max_epochs
                due = (epoch + 1) % opts.val_every_n_epochs == 0 or is_last
                try:
                    self._set_epoch(epoch)
                    train_terms = self.train_epoch(epoch)
                    metrics = self.validate(epoch) if due else None
                except _StopRequested:
                    stop_now = True
                else:
                    stop_now = False
                if stop_now:  # outside the except: PreemptedError chains to no _StopRequested
                    self._stop(also_best=False)
                # After validation, which does not read the learning rate: a run stopped in
                # validation resumes with the scheduler of the epoch it stopped in.
                if self.scheduler is not None:
                    with warnings.catch_warnings():
                        # A run resumed after its epoch's last step has not stepped the
                        # optimizer in this process, which torch takes for a wrong order.
                        warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step")
                        self.scheduler.step()
                entry: dict[str, float] = {"epoch": float(epoch + 1), **train_terms}
                improved = False
                if metrics is not None:
                    entry.update({k: v for k, v in metrics.items() if isinstance(v, float)})
                    self.state.last_metrics = metrics
                    score = float(metrics[opts.monitor])
                    if score > self.state.best_score or self.state.best_epoch < 0:
                        self.state.best_score, self.state.best_epoch = score, epoch + 1
                        self.state.best_metrics = metrics
                        self.best_per_image = (  # the rows of the validation just made
                            self.metrics.per_image_stats() if self.metrics.per_image else None
                        )
                        improved = True
                self.state.epoch = epoch + 1
                self.state.history.append(entry)
                self.state.epoch_batches, self.state.epoch_sums, self.state.epoch_seen = 0, {}, 0
                if not is_last and self._stop_agreed():
                    self._stop(also_best=improved)
                self._save("last.ckpt", also_best=improved)
        self.dist.barrier()  # every process may read the final checkpoints once fit returns
        return self.state

    # ----------------------------------------------------------------- stop signals
    @contextmanager
    def _stop_signals(self) -> Iterator[None]:
        """Catch :data:`STOP_SIGNALS` while training (Python allows it in the main thread)."""
        self._signal = None
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        self._previous_handlers = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_signal)
        try:
            yield
        finally:
            self._restore_handlers()
            self._signal = None  # a signal after the last validation stops nothing later

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only a flag: the loop checks it between steps (nothing here may print or lock).
        if self._signal is None:
            self._signal = (signum, time.time())
            return
        # A second signal while the first is pending (e.g. a hung step): its default action.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def _restore_handlers(self) -> dict[int, Any]:
        previous, self._previous_handlers = self._previous_handlers, {}
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        return previous

    def _stop_agreed(self) -> bool:
        """Whether a stop signal arrived (on any process: one tiny all-reduce under DDP)."""
        return self._agree(True)[1]

    def _agree(self, finite: bool) -> tuple[bool, bool]:
        """``(loss finite on every process, stop signal on any process)``.

        All processes must take the same decisions: a process that skips or stops while the
        others run backward would leave them waiting in DDP's gradient all-reduce forever. Under
        DDP both are one all-reduce (MAX) of ``[not finite, signal number]``, the only
        collective a step adds; a process that did not receive the signal takes its number.
        """
        here = self._signal[0] if self._signal is not None else 0
        if not self.dist.distributed:
            return finite, here != 0
        flags = torch.tensor([0.0 if finite else 1.0, float(here)], device=self.device)
        torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
        nonfinite, signum = (int(v) for v in flags.tolist())
        if signum and self._signal is None:
            self._signal = (signum, time.time())
        return not nonfinite, signum != 0

    def _stop(self, also_best: bool) -> NoReturn:
        """Write ``last.ckpt`` at the current position, pass the signal on, then stop."""
        signum, signal_time = self._signal if self._signal else (None, time.time())
        state = self.state
        state.requeues += 1
        state.stop = {
            "signal": _signal_name(signum),
            "signal_time": signal_time,
            "since_checkpoint_s": signal_time - self._checkpointed_at,
        }
        self._save("last.ckpt", also_best=also_best)
        self.dist.barrier()  # the others wait for rank 0's checkpoint before they exit
        previous = self._restore_handlers()
        where = (
            f"epoch {state.epoch + 1}, batch {state.epoch_batches}"
            if state.epoch_batches
            else f"after epoch {state.epoch}"
        )
        saved = (
            f"checkpoint '{self.checkpoint_dir / 'last.ckpt'}' written"
            if self.checkpoint_dir is not None
            else "no checkpoint folder, nothing written"
        )
        message = (
            f"stopped by {_signal_name(signum) or 'a signal to another process'} at step "
            f"{state.global_step} ({where}); {saved}; run the same command again "
            "(trainer.resume=auto) to continue from there"
        )
        if self.dist.is_main:
            tqdm.write(message)
        # Whoever handled the signal before the trainer acts on it now: submitit requeues.
        candidates: list[int] = []
        if signum is not None:
            candidates = [signum, *_USER_SIGNALS] if signum in _USER_SIGNALS else [signum]
        handler = next((previous[s] for s in candidates if callable(previous.get(s))), None)
        if signum is not None and handler is not None:
            try:
                handler(signum, None)
            except SystemExit as exit:  # submitit's way out after ``scontrol requeue``
                raise PreemptedError(f"{message}; the job was requeued") from exit
        raise PreemptedError(message)

    def _set_epoch(self, epoch: int) -> None:
        """Select epoch ``epoch``'s sample order and augmentation stream."""
        for owner in (self.train_loader.sampler, self.train_loader.dataset):
            set_epoch = getattr(owner, "set_epoch", None)
            if callable(set_epoch):
                set_epoch(epoch)

    def _epoch_batches(self, done: int, num_batches: int) -> Iterator[Any]:
        """Batches ``done..num_batches - 1`` of the epoch (``done`` > 0: a resumed epoch)."""
        loader = self.train_loader
        if done == 0:
            return _take(loader, num_batches)
        if done >= num_batches:
            return iter(())
        # The loader's iterator draws its workers' base seed from the global torch RNG; the
        # stopped run made that draw before its checkpoint, so it is undone here.
        rng = torch.get_rng_state()
        set_start = getattr(loader.sampler, "set_start", None)
        if callable(set_start) and loader.batch_size is not None:
            set_start(done * loader.batch_size)
            batches: Iterator[Any] = _take(iter(loader), num_batches - done)
        else:  # a sampler that cannot start mid-epoch: load and drop the batches trained
            batches = itertools.islice(iter(loader), done, num_batches)
        torch.set_rng_state(rng)
        return batches

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training batches; returns the mean of each loss term.

        The first call after :meth:`load_state` of a mid-epoch checkpoint continues at its
        batch, with its running sums; any other call trains the whole epoch. The position and
        the sums are kept in the state, so a checkpoint can be written after any step
        (``trainer.checkpoint_every_n_steps``, stop signals).
        """
        self.net.train()
        state = self.state
        num_batches = _num_batches(self.train_loader, self.options.limit_train_batches)
        done, self._resume_batches = min(self._resume_batches, num_batches), 0
        if done == 0:
            state.epoch_batches, state.epoch_sums, state.epoch_seen = 0, {}, 0
        every = self.options.checkpoint_every_n_steps
        bar = tqdm(
            self._epoch_batches(done, num_batches),
            total=num_batches,
            initial=done,
            desc=f"epoch {epoch + 1}/{self.options.max_epochs}",
            disable=not (self.options.progress and self.dist.is_main),
            dynamic_ncols=True,
            leave=False,
        )
        start = time.perf_counter()
        images_done = 0
        for step, batch in enumerate(bar, start=done):
            self.objective.set_progress(epoch + step / num_batches)
            images, target = self._to_device(batch)
            with self._autocast():
                outputs = self.net(images)
            total, terms = self.objective(outputs, target)
            # One host synchronisation per step for every logged term.
            values = dict(zip(terms, torch.stack(list(terms.values())).tolist(), strict=True))
            state.epoch_batches = step + 1
            go_on, stop = self._finite(values, epoch, step)
            if not go_on:
                if stop:
                    raise _StopRequested
                continue
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(total).backward()
            if self.options.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.options.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            state.global_step += 1
            for name, value in values.items():
                state.epoch_sums[name] = state.epoch_sums.get(name, 0.0) + value
            state.epoch_seen += 1
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
            # Under DDP the stop was agreed before backward, with the finiteness (no second
            # collective; a later signal stops after the next step); alone, the flag is read now.
            if stop or (self._signal is not None and not self.dist.distributed):
                bar.close()
                raise _StopRequested
            if every is not None and state.global_step % every == 0 and step + 1 < num_batches:
                self._save("last.ckpt")  # mid-epoch; the epoch's end writes its own
        bar.close()
        return {f"train_{k}": v / max(state.epoch_seen, 1) for k, v in state.epoch_sums.items()}

    def _finite(self, values: dict[str, float], epoch: int, step: int) -> tuple[bool, bool]:
        """``(step may go on, stop after it)``: the non-finite policy and the stop signal."""
        here = math.isfinite(values["total"])
        finite, stop = self._agree(here)
        if finite:
            return True, stop
        described = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        where = ""
        if self.dist.distributed:
            where = " on another process" if here else f" on rank {self.dist.rank}"
        message = f"non-finite loss{where} at epoch {epoch + 1}, step {step} ({described})"
        if self.options.nonfinite == "skip":
            log.warning("%s; batch skipped (trainer.nonfinite=skip)", message)
            self.optimizer.zero_grad(set_to_none=True)
            return False, stop
        raise NonFiniteLossError(
            f"{message}; the last good checkpoint is kept. Lower the learning rate, or set "
            "trainer.nonfinite=skip to skip such batches"
        )

    @torch.no_grad()
    def validate(self, epoch: int) -> dict[str, Any]:
        """Metrics on the validation batches (summed over processes when distributed).

        In :meth:`fit` of a single process, a stop signal ends it at the next batch (the
        resumed run validates again); under DDP the processes may hold different batch
        counts, so validation finishes first.
        """
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
            if self._signal is not None and not self.dist.distributed:
                raise _StopRequested
            images, target = self._to_device(batch)
            with self._autocast():
                logits = self.net(images)
            pred = logits.argmax(dim=1)
            self.metrics.update(pred, target, batch.get("name"))
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
        columns = per_class_names("main")  # the metric catalogue (lossd.metrics.METRICS)
        per_class = [
            [name, *(metrics[key][c] for key in columns)] for c, name in enumerate(self.class_names)
        ]
        self.logger.log_table("val/per_class", ["class", *columns], per_class, step)
        if shown:
            images, preds, targets = zip(*shown, strict=True)
            self.logger.log_segmentations(
                "val/examples", images, preds, targets, self.class_names, step
            )
        if self.dist.is_main:
            summary = ", ".join(
                f"{k} {metrics[k]:.4f}" for k in metric_names("main") if k in metrics
            )
            tqdm.write(f"epoch {epoch + 1}: {summary}")
