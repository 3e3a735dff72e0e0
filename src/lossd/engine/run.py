"""Build everything from a Hydra config, train, and write the run record.

This is what ``scripts/train.py`` calls. It instantiates each ``_target_`` of the config (dataset,
model, loss, optimizer, scheduler, logger) and never branches on a model's or dataset's name.
"""

import logging
import math
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from lossd.data.registry import get_info
from lossd.engine.checkpoint import load_checkpoint
from lossd.engine.config import build, config_fingerprint, register_resolvers, to_container
from lossd.engine.loaders import eval_loader, train_loader
from lossd.engine.loggers import NullLogger, RunLogger
from lossd.engine.optim import build_optimizer
from lossd.engine.runtime import (
    DistContext,
    autocast_dtype,
    configure_determinism,
    init_distributed,
    resolve_device,
    seed_everything,
)
from lossd.engine.trainer import Trainer, TrainerOptions, TrainState
from lossd.errors import CheckpointError, NonFiniteLossError
from lossd.metrics import SegmentationMetrics
from lossd.results.records import (
    RECORD_NAME,
    portable_path,
    provenance,
    read_record,
    record_dir,
    write_record,
)
from lossd.results.report import format_metrics_table

__all__ = ["find_resume_checkpoint", "run"]

log = logging.getLogger(__name__)


def find_resume_checkpoint(
    resume: str, checkpoint_dir: Path, fingerprint: str
) -> dict[str, Any] | None:
    """The checkpoint ``trainer.resume`` asks for, or None to start fresh.

    ``never``: None. ``auto``: ``<checkpoint_dir>/last.ckpt`` if it exists and was written with
    the same config fingerprint. Any other value is a path, loaded whatever its fingerprint.

    Raises:
        CheckpointError: If ``auto`` finds a checkpoint of a different config, or the path is bad.
    """
    if resume == "never":
        return None
    if resume != "auto":
        return load_checkpoint(resume)
    last = checkpoint_dir / "last.ckpt"
    if not last.is_file():
        return None
    checkpoint = load_checkpoint(last)
    if checkpoint.get("fingerprint") != fingerprint:
        raise CheckpointError(
            f"'{last}' belongs to a run with a different config (fingerprint "
            f"{checkpoint.get('fingerprint')} != {fingerprint}); set trainer.resume=never to start "
            "over in this folder, or give the run another hydra.run.dir"
        )
    return checkpoint


def _print(ctx: DistContext, text: str) -> None:
    if ctx.is_main:
        print(text, flush=True)


def _build_logger(
    cfg: DictConfig, ctx: DistContext, output_dir: Path, run_id: str | None
) -> RunLogger:
    if not ctx.is_main or cfg.get("logger") is None:
        return NullLogger()
    # Runtime values go to the partial, not to instantiate (which would recurse into the config).
    factory = build(cfg.logger, _partial_=True)
    logger: RunLogger = factory(dir=str(output_dir), run_config=to_container(cfg), run_id=run_id)
    return logger


def _portable_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config for the record, its run folder relative to the launch folder."""
    config = to_container(cfg)
    paths = config.get("paths") or {}
    if paths.get("output_dir"):
        paths["output_dir"] = portable_path(paths["output_dir"])
    return config


def _record(
    cfg: DictConfig,
    state: TrainState,
    status: str,
    started: float,
    device: torch.device,
    ctx: DistContext,
    logger: RunLogger,
    error: str | None = None,
) -> dict[str, Any]:
    info = get_info(cfg.dataset.name)
    return {
        "dataset": cfg.dataset.name,
        "model": cfg.model.name,
        "loss": cfg.loss.name,
        "seed": int(cfg.seed),
        "experiment": cfg.get("experiment_name"),
        "status": status,
        "error": error,
        "monitor": cfg.trainer.monitor,
        "metrics": state.best_metrics,
        "best_epoch": state.best_epoch,
        "last_metrics": state.last_metrics,
        "epochs": state.epoch,
        "steps": state.global_step,
        "history": state.history,
        "class_names": list(info.classes),
        "eval_classes": list(cfg.dataset.eval_classes),
        "config": _portable_config(cfg),
        **provenance(started, device, ctx.world_size, cfg.paths.output_dir),
        "wandb": {"run_id": logger.run_id, "dir": portable_path(logger.run_dir)},
    }


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train one configuration end to end; returns its run record.

    Writes ``metrics.json`` into ``paths.output_dir`` (the Hydra run folder) and into
    ``<paths.results_dir>/<dataset>/<model>/<loss>/seed<k>/``; with ``skip_done=true`` a
    configuration whose record exists and is complete is not trained again.
    """
    register_resolvers()
    started = time.time()
    ctx = init_distributed(cfg.trainer.device)
    device = resolve_device(cfg.trainer.device, ctx.local_rank)
    output_dir = Path(cfg.paths.output_dir)
    results_path = record_dir(
        cfg.paths.results_dir, cfg.dataset.name, cfg.model.name, cfg.loss.name, cfg.seed
    )
    done = results_path / RECORD_NAME
    if cfg.get("skip_done") and done.is_file() and read_record(done)["status"] == "completed":
        _print(ctx, f"skip_done: '{done}' exists; not training this configuration again")
        record = read_record(done)
        record["score"] = float(record["metrics"].get(cfg.trainer.monitor, math.nan))
        return record

    seed_everything(int(cfg.seed))
    configure_determinism(bool(cfg.trainer.deterministic))
    info = get_info(cfg.dataset.name)
    if cfg.dataset.get("prepare") is not None:
        if ctx.is_main:
            build(cfg.dataset.prepare)
        ctx.barrier()
    train_set = build(cfg.dataset.train, seed=int(cfg.seed))
    val_set = build(cfg.dataset.val)
    pin = device.type == "cuda"
    loaders = (
        train_loader(
            train_set, cfg.dataset.batch_size, cfg.dataset.num_workers, int(cfg.seed), ctx, pin
        ),
        eval_loader(val_set, cfg.dataset.batch_size, cfg.dataset.num_workers, ctx, pin),
    )

    model = build(cfg.model.net).to(device)
    if ctx.distributed and cfg.trainer.sync_batchnorm:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[no-untyped-call]
    if device.type == "cuda" and cfg.trainer.channels_last:
        model = model.to(memory_format=torch.channels_last)
    objective = build(cfg.loss.objective).to(device)
    optimizer = build_optimizer(model, build(cfg.optimizer), cfg.model.get("backbone_lr"))
    scheduler = build(cfg.scheduler)(optimizer) if cfg.get("scheduler") else None
    metrics = SegmentationMetrics(
        num_classes=info.num_classes,
        ignore_index=info.ignore_index,
        eval_classes=list(cfg.dataset.eval_classes),
        boundary_ratio=cfg.metrics.boundary_ratio,
        boundary_width=cfg.metrics.boundary_width,
        diagnostics=cfg.metrics.diagnostics,
    )

    fingerprint = config_fingerprint(cfg)
    checkpoint_dir = output_dir / "checkpoints"
    checkpoint = find_resume_checkpoint(str(cfg.trainer.resume), checkpoint_dir, fingerprint)
    logger = _build_logger(
        cfg, ctx, output_dir, checkpoint.get("wandb_run_id") if checkpoint else None
    )
    trainer_cfg = to_container(cfg)["trainer"]
    options = TrainerOptions(
        **{f.name: trainer_cfg[f.name] for f in fields(TrainerOptions) if f.name in trainer_cfg}
    )
    trainer = Trainer(
        model=model,
        objective=objective,
        optimizer=optimizer,
        scheduler=scheduler,
        train_loader=loaders[0],
        val_loader=loaders[1],
        metrics=metrics,
        options=options,
        device=device,
        amp_dtype=autocast_dtype(str(cfg.trainer.precision), device),
        class_names=info.classes,
        checkpoint_dir=checkpoint_dir,
        logger=logger,
        dist_ctx=ctx,
        extra_checkpoint={
            "fingerprint": fingerprint,
            "wandb_run_id": logger.run_id,
            "model_name": cfg.model.name,
            "num_classes": info.num_classes,
            "config": _portable_config(cfg),
        },
    )
    if checkpoint is not None:
        trainer.load_state(checkpoint)
        _print(ctx, f"resumed from '{checkpoint_dir}' after epoch {trainer.state.epoch}")
    _print(
        ctx,
        f"training {cfg.model.name} with loss={cfg.loss.name} on {cfg.dataset.name} "
        f"({len(train_set)} train / {len(val_set)} val images) on {device}, "
        f"world size {ctx.world_size}; output: {output_dir}",
    )
    try:
        state = trainer.fit()
    except NonFiniteLossError as err:
        if ctx.is_main:
            failed = _record(cfg, trainer.state, "failed", started, device, ctx, logger, str(err))
            write_record(output_dir, failed)
            write_record(results_path, failed)
        logger.finish(exit_code=1)
        raise
    record = _record(cfg, state, "completed", started, device, ctx, logger)
    if ctx.is_main:
        logger.summary(
            {f"best/{k}": v for k, v in state.best_metrics.items() if isinstance(v, float)}
        )
        logger.finish()
        write_record(output_dir, record)
        written = write_record(results_path, record)
        best = state.best_metrics
        print(
            f"\nvalidation metrics of the best epoch ({state.best_epoch}/{state.epoch}, by "
            f"{cfg.trainer.monitor}) — {cfg.dataset.name} / {cfg.model.name} / {cfg.loss.name}"
        )
        print(format_metrics_table(best, info.classes, list(cfg.dataset.eval_classes)))
        wall = record["wall_time_s"]
        print(f"run record: {written}  (wall time {wall:.0f} s)")
        if logger.run_dir:
            print(f"W&B run folder: {logger.run_dir}")
    score = state.best_metrics.get(cfg.trainer.monitor, math.nan)
    record["score"] = float(score)
    return record
