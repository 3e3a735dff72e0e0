"""Build everything from a Hydra config, train, and write the run record.

What ``scripts/train.py`` calls. :func:`run` has three parts, each one function:

1. :func:`build_components`: instantiate each ``_target_`` of the config (dataset, model, loss,
   optimizer, scheduler, metrics, logger) and the :class:`~lossd.engine.trainer.Trainer`,
   resuming it from a checkpoint when ``trainer.resume`` asks;
2. ``trainer.fit()``: the training loop, then :func:`evaluate_test`: the protocol's checkpoint
   (``test.checkpoint``: best or last) on the test split, or the test-server archive where the
   test labels are withheld (``test.submission``);
3. :func:`write_run_record`: the record, in the Hydra folder and under ``paths.results_dir``,
   with its ``protocol``, a ``val`` block (the selected epoch's validation metrics; also kept as
   ``metrics``) and a ``test`` block.

They run inside ``try``/``finally``: whatever fails (data, model, logger, a non-finite loss,
Ctrl-C, a preemption signal) still leaves a record with ``status`` ``failed`` (or
``interrupted``, ``preempted``) that names the exception, and the W&B run is closed. The
engine never branches on a model's or dataset's name.
"""

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from lossd.data.info import DatasetInfo
from lossd.data.registry import get_info
from lossd.engine.checkpoint import CheckpointMeta, load_checkpoint
from lossd.engine.components import (
    build_metrics,
    prepare_dataset,
    print_metrics,
)
from lossd.engine.config import build, config_fingerprint, register_resolvers, to_container
from lossd.engine.evaluate import evaluate_split, inference_options
from lossd.engine.inference import InferenceOptions
from lossd.engine.inference_model import InferenceModel
from lossd.engine.loaders import eval_loader, train_loader
from lossd.engine.loggers import NullLogger, RunLogger
from lossd.engine.optim import build_optimizer
from lossd.engine.options import MetricsOptions, TrainerOptions
from lossd.engine.predict import Predictor, predict_submission
from lossd.engine.runtime import (
    DistContext,
    autocast_dtype,
    configure_determinism,
    init_distributed,
    resolve_device,
    seed_everything,
)
from lossd.engine.trainer import Trainer, TrainState
from lossd.errors import CheckpointError, InvalidOptionError, LossdError, PreemptedError
from lossd.metrics import PerImageStats
from lossd.records import (
    RECORD_NAME,
    RunIdentity,
    portable_path,
    provenance,
    read_record,
    write_record,
)

__all__ = [
    "RunComponents",
    "RunSetup",
    "build_components",
    "evaluate_test",
    "find_resume_checkpoint",
    "run",
    "run_identity",
    "write_run_record",
]

log = logging.getLogger(__name__)


def run_identity(cfg: DictConfig) -> RunIdentity:
    """The run's identity from its config (the same values as ``run_name`` in conf/train.yaml)."""
    study = cfg.get("experiment_name")
    return RunIdentity(
        None if study is None else str(study),
        str(cfg.dataset.name),
        str(cfg.model.name),
        str(cfg.loss.name),
        int(cfg.seed),
    )


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
    found = CheckpointMeta.from_checkpoint(checkpoint, last).fingerprint
    if found != fingerprint:
        raise CheckpointError(
            f"'{last}' belongs to a run with a different config (fingerprint "
            f"{found} != {fingerprint}); set trainer.resume=never to start "
            "over in this folder, or give the run another hydra.run.dir"
        )
    return checkpoint


@dataclass(frozen=True)
class RunOptions:
    """The typed options of a run, built once from the composed config (:func:`run_options`).

    Attributes:
        trainer: ``trainer.*``.
        metrics: ``metrics.*``.
        test_inference: ``test.inference.*``, the dataset's test-time rule.
    """

    trainer: TrainerOptions
    metrics: MetricsOptions
    test_inference: InferenceOptions


def run_options(cfg: DictConfig) -> RunOptions:
    """Turn the config's option nodes into :class:`RunOptions` (once per run).

    Raises:
        InvalidOptionError: For a value out of range (the types were checked at composition).
    """
    plain = to_container(cfg)
    test = plain.get("test") or {}
    return RunOptions(
        trainer=TrainerOptions(**plain["trainer"]),
        metrics=MetricsOptions(**plain["metrics"]),
        test_inference=inference_options(test.get("inference") or {}),
    )


@dataclass
class RunSetup:
    """What every part of a run needs before anything is built (cheap, cannot fail on data)."""

    identity: RunIdentity
    options: RunOptions
    ctx: DistContext
    device: torch.device
    output_dir: Path
    record_dir: Path
    started: float
    logger: RunLogger = field(default_factory=NullLogger)
    """The run's logger, set as soon as it is built (so a later failure still closes it)."""


@dataclass
class RunComponents:
    """The built objects of a run; :meth:`Trainer.fit` runs them."""

    info: DatasetInfo
    trainer: Trainer
    num_train: int
    num_val: int
    resumed_epoch: int | None


def _portable_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config for records and checkpoints, its run folder relative to the launch."""
    config = to_container(cfg)
    paths = config.get("paths") or {}
    if paths.get("output_dir"):
        paths["output_dir"] = portable_path(paths["output_dir"])
    return config


def _build_logger(
    cfg: DictConfig, ctx: DistContext, output_dir: Path, run_id: str | None
) -> RunLogger:
    if not ctx.is_main or cfg.get("logger") is None:
        return NullLogger()
    # Runtime values go to the partial, not to instantiate (which would recurse into the config).
    factory = build(cfg.logger, _partial_=True)
    logger: RunLogger = factory(dir=str(output_dir), run_config=to_container(cfg), run_id=run_id)
    return logger


def build_components(cfg: DictConfig, setup: RunSetup) -> RunComponents:
    """Part 1: data, model, loss, optimizer, scheduler, metrics, logger and the trainer.

    Raises:
        LossdError: For missing data, bad options, or a checkpoint of another config.
    """
    ctx, device, options = setup.ctx, setup.device, setup.options.trainer
    fingerprint = config_fingerprint(cfg)
    checkpoint_dir = setup.output_dir / "checkpoints"
    checkpoint = find_resume_checkpoint(options.resume, checkpoint_dir, fingerprint)
    run_id = (
        CheckpointMeta.from_checkpoint(checkpoint, checkpoint_dir).wandb_run_id
        if checkpoint
        else None
    )
    logger = setup.logger = _build_logger(cfg, ctx, setup.output_dir, run_id)
    seed_everything(int(cfg.seed))
    configure_determinism(options.deterministic)
    info = get_info(cfg.dataset.name)
    prepare_dataset(cfg.dataset, ctx)
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
    if ctx.distributed and options.sync_batchnorm:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[no-untyped-call]
    if device.type == "cuda" and options.channels_last:
        model = model.to(memory_format=torch.channels_last)
    objective = build(cfg.loss.objective).to(device)
    optimizer = build_optimizer(
        model,
        build(cfg.optimizer),
        cfg.model.get("backbone_lr"),
        bool(cfg.model.get("no_bias_decay", False)),
    )
    scheduler = build(cfg.scheduler)(optimizer) if cfg.get("scheduler") else None
    metrics = build_metrics(setup.options.metrics, info, cfg.dataset.eval_classes)

    meta = CheckpointMeta.from_config(_portable_config(cfg), fingerprint, logger.run_id)
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
        amp_dtype=autocast_dtype(options.precision, device),
        class_names=info.classes,
        checkpoint_dir=checkpoint_dir,
        logger=logger,
        dist_ctx=ctx,
        extra_checkpoint=meta.into({}),
    )
    resumed = None
    if checkpoint is not None:
        trainer.load_state(checkpoint)
        resumed = trainer.state.epoch
    return RunComponents(info, trainer, len(train_set), len(val_set), resumed)


TEST_CHECKPOINTS = ("best", "last")


def evaluate_test(
    cfg: DictConfig, setup: RunSetup, info: DatasetInfo
) -> tuple[dict[str, Any] | None, PerImageStats | None]:
    """Part 2b: the protocol's checkpoint on the test split, once, after training.

    With ``test.submission`` (LoveDA, UAVid: test labels withheld) the predictions are packed
    as the test server's archive ``<output_dir>/submission_<dataset>.zip`` instead. A missing
    test split does not fail the finished run: the block then holds the error.

    Returns:
        The record's ``test`` block (None when ``test.split`` is null) and the per-image
        counts of the evaluation (None without ``metrics.per_image`` or labels).

    """
    split = cfg.test.get("split")
    if not split:
        return None, None
    which = str(cfg.test.checkpoint)
    path = setup.output_dir / "checkpoints" / f"{which}.ckpt"
    options = setup.options.test_inference
    progress = setup.options.trainer.progress
    checkpoint = load_checkpoint(path)
    block: dict[str, Any] = {
        "split": str(split),
        "checkpoint": which,
        "epoch": (checkpoint.get("trainer") or {}).get("epoch"),
        "inference": options.to_dict(),
    }
    inference = InferenceModel.from_loaded(checkpoint, path, options, setup.device)
    try:
        submission = cfg.test.get("submission")
        if submission:
            archive = setup.output_dir / f"submission_{submission}.zip"
            if setup.ctx.is_main:
                predictor = Predictor(inference, info, progress=progress)
                images = Path(str(cfg.dataset.root)) / str(split) / "images"
                summary = predict_submission(predictor, [images], str(submission), archive, True)
                block["submission"] = portable_path(archive)
                block["submission_summary"] = summary.describe()
            setup.ctx.barrier()
            return block, None
        result = evaluate_split(
            inference,
            cfg.dataset,
            str(split),
            str(cfg.test.labels),
            setup.options.metrics,
            setup.ctx,
            num_workers=int(cfg.dataset.num_workers),
            progress=progress,
        )
    except LossdError as err:
        log.warning("test evaluation skipped: %s", err)
        block["error"] = f"{type(err).__name__}: {err}"
        return block, None
    block.update(labels=result.labels, num_images=result.num_images, metrics=result.metrics)
    if result.without_padding is not None:
        block["metrics_without_padding"] = result.without_padding
    return block, result.per_image


def _labels(cfg: DictConfig, info: DatasetInfo) -> dict[str, str]:
    """Display names of the run's dataset, model and loss (tables, plots)."""
    return {
        "dataset": info.label,
        "model": str(cfg.model.get("label") or cfg.model.name),
        "loss": str(cfg.loss.get("label") or cfg.loss.name),
    }


def write_run_record(
    cfg: DictConfig,
    setup: RunSetup,
    state: TrainState,
    logger: RunLogger,
    status: str,
    error: str | None = None,
    test: dict[str, Any] | None = None,
    per_image: Mapping[str, PerImageStats | None] | None = None,
) -> dict[str, Any]:
    """Part 3: the run record, written (rank 0) to the Hydra folder and the record folder.

    ``per_image`` (groups ``val``: the selected epoch's validation, ``test``) goes to
    ``per_image.npz`` beside each copy of the record (:func:`lossd.records.write_record`).

    A failed run never replaces a completed record in the record folder (a broken rerun of a
    finished cell keeps its result); its record is then only in the Hydra folder.

    Returns:
        The record, with ``path`` set to the record file it was written to last.
    """
    info = get_info(cfg.dataset.name)
    record: dict[str, Any] = {
        "dataset": cfg.dataset.name,
        "model": cfg.model.name,
        "loss": cfg.loss.name,
        "seed": int(cfg.seed),
        "experiment": cfg.get("experiment_name"),
        "run_name": setup.identity.name,
        "labels": _labels(cfg, info),
        "headline_metric": info.headline_metric,
        "status": status,
        "error": error,
        "protocol": cfg.get("protocol"),
        "monitor": setup.options.trainer.monitor,
        "metrics": state.best_metrics,
        "val": {
            "split": cfg.dataset.val.get("split"),
            "epoch": state.best_epoch,
            "metrics": state.best_metrics,
        },
        "test": test,
        "best_epoch": state.best_epoch,
        "last_metrics": state.last_metrics,
        "epochs": state.epoch,
        "steps": state.global_step,
        # preemptions: one entry per resume (step, signal, time lost, Slurm job); docs/cluster.md
        "requeues": state.requeues,
        "restarts": state.restarts,
        "history": state.history,
        "class_names": list(info.classes),
        "eval_classes": list(cfg.dataset.eval_classes),
        "config": _portable_config(cfg),
        **provenance(setup.started, setup.device, setup.ctx.world_size, cfg.paths.output_dir),
        "wandb": {"run_id": logger.run_id, "dir": portable_path(logger.run_dir)},
    }
    if setup.ctx.is_main:
        # the file's own path is added to the returned record only: a record written with the
        # path of the machine that trained it would not be portable (lossd.records.portable_path)
        written = write_record(setup.output_dir, record, per_image)
        existing = setup.record_dir / RECORD_NAME
        keep = status != "completed" and existing.is_file()
        if keep and read_record(existing)["status"] == "completed":
            log.warning("run failed; the completed record '%s' is kept", existing)
        else:
            written = write_record(setup.record_dir, record, per_image)
        record["path"] = str(written)
    return record


def _check_test_options(cfg: DictConfig) -> None:
    """``test.checkpoint`` is checked before training, not after hours of it."""
    test = cfg.get("test") or {}
    which = test.get("checkpoint", "best")
    if test.get("split") and str(which) not in TEST_CHECKPOINTS:
        raise InvalidOptionError(
            f"test.checkpoint={which!r}; expected one of {list(TEST_CHECKPOINTS)}"
        )


def _setup(cfg: DictConfig) -> RunSetup:
    register_resolvers()
    _check_test_options(cfg)
    started = time.time()
    options = run_options(cfg)
    ctx = init_distributed(options.trainer.device)
    device = resolve_device(options.trainer.device, ctx.local_rank)
    identity = run_identity(cfg)
    return RunSetup(
        identity=identity,
        options=options,
        ctx=ctx,
        device=device,
        output_dir=Path(cfg.paths.output_dir),
        record_dir=identity.record_dir(cfg.paths.results_dir),
        started=started,
    )


def _print(ctx: DistContext, text: str) -> None:
    if ctx.is_main:
        print(text, flush=True)


def _describe(error: BaseException) -> tuple[str, str]:
    if isinstance(error, PreemptedError):
        status = "preempted"  # last.ckpt holds its place; the same command resumes it
    elif isinstance(error, KeyboardInterrupt):
        status = "interrupted"
    else:
        status = "failed"
    return status, f"{type(error).__name__}: {error}"


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train one configuration end to end; returns its run record (with ``score``).

    Writes ``metrics.json`` into ``paths.output_dir`` (the Hydra run folder) and into
    ``<paths.results_dir>/<run_name>/`` (:class:`~lossd.records.RunIdentity`); with
    ``skip_done=true`` a configuration whose record exists and is complete is not trained
    again. Any exception still writes a record naming it (``status`` ``failed``) and closes the
    logger, then propagates.
    """
    setup = _setup(cfg)
    done = setup.record_dir / RECORD_NAME
    if cfg.get("skip_done") and done.is_file() and read_record(done)["status"] == "completed":
        _print(setup.ctx, f"skip_done: '{done}' exists; not training this configuration again")
        record = read_record(done)
        record["score"] = float(record["metrics"].get(setup.options.trainer.monitor, math.nan))
        return record

    components: RunComponents | None = None
    state = TrainState()
    status, error, test = "failed", None, None
    test_per_image: PerImageStats | None = None
    try:
        components = build_components(cfg, setup)
        if components.resumed_epoch is not None:
            _print(setup.ctx, f"resumed from '{setup.output_dir / 'checkpoints'}'")
        _print(
            setup.ctx,
            f"training {cfg.model.name} with loss={cfg.loss.name} on {cfg.dataset.name} "
            f"({components.num_train} train / {components.num_val} val images) on "
            f"{setup.device}, world size {setup.ctx.world_size}; output: {setup.output_dir}",
        )
        state = components.trainer.fit()
        test, test_per_image = evaluate_test(cfg, setup, components.info)
        status = "completed"
    except BaseException as err:
        status, error = _describe(err)
        if components is not None:
            state = components.trainer.state
        raise
    finally:
        logger = setup.logger
        try:
            per_image = {
                "val": None if components is None else components.trainer.best_per_image,
                "test": test_per_image,
            }
            record = write_run_record(cfg, setup, state, logger, status, error, test, per_image)
        finally:
            if status == "completed":
                summary = {f"best/{k}": v for k, v in state.best_metrics.items()}
                if test and test.get("metrics"):
                    summary.update({f"test/{k}": v for k, v in test["metrics"].items()})
                logger.summary({k: v for k, v in summary.items() if isinstance(v, float)})
            logger.finish(exit_code=0 if status == "completed" else 1)
    if setup.ctx.is_main:
        info = components.info
        print_metrics(
            f"validation metrics of the best epoch ({state.best_epoch}/{state.epoch}, by "
            f"{setup.options.trainer.monitor}) — {cfg.dataset.name} / {cfg.model.name} / "
            f"{cfg.loss.name}",
            state.best_metrics,
            info,
            cfg.dataset.eval_classes,
            Path(record["path"]),
            record["wall_time_s"],
        )
        if test and test.get("metrics"):
            print_metrics(
                f"{test['split']} metrics of the {test['checkpoint']} checkpoint (epoch "
                f"{test['epoch']}, protocol {cfg.protocol}, tta={test['inference']['tta']})",
                test["metrics"],
                info,
                cfg.dataset.eval_classes,
                Path(record["path"]),
                record["wall_time_s"],
            )
        elif test and test.get("submission"):
            print(f"test-server archive: {test['submission']} ({test['submission_summary']})")
        if logger.run_dir:
            print(f"W&B run folder: {logger.run_dir}")
    record["score"] = float(state.best_metrics.get(setup.options.trainer.monitor, math.nan))
    return record
