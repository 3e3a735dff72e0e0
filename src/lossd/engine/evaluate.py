"""Evaluate a training checkpoint on a dataset split and write its run record.

What ``scripts/evaluate.py`` calls (config: ``conf/eval.yaml``). The network is rebuilt from the
checkpoint's stored config (:mod:`lossd.engine.model_io`) and applied to every image of
``<dataset.root>/<split>/images`` (whole, or by sliding window, with test-time augmentation:
:mod:`lossd.engine.inference`), normalised as in training; the metrics follow the dataset's
protocol (:class:`lossd.metrics.SegmentationMetrics`, docs/design.md Conventions).

- Dataset: ``dataset=<name>`` takes ``conf/dataset/<name>.yaml``; without it, the dataset the
  checkpoint was trained on, with its stored settings but its root (and every stored path
  under that root) moved to ``${paths.data_dir}/<name>``, so data is looked up where the current
  paths say, not where the training machine had it.
- Labels: ``labels=eroded`` (default) reads ``<split>/masks``, which for the Potsdam test split
  are the ISPRS eroded-boundary labels (docs/datasets.md §3, the field's protocol);
  ``labels=full`` reads ``<split>/masks_full`` where the split has it (Potsdam test), else
  ``masks`` (which are then the only, full, labels).
- Record: ``<paths.output_dir>/metrics.json`` in the run-record schema of training
  (:mod:`lossd.records`) with ``config`` = the training config, plus ``split``,
  ``labels``, ``checkpoint``, ``inference`` and ``eval_config``; with ``metrics.per_image``
  (default) the per-image counts go to ``per_image.npz`` beside it (group ``eval``), equal to
  those of the training run's own evaluation of the same checkpoint and split.
- Under torchrun the images are sharded over the processes and the metric counts summed
  (:meth:`SegmentationMetrics.sync`); rank 0 writes the record.
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, cast

import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import Tensor
from torch.utils.data import Dataset, Subset
from tqdm import tqdm

from lossd.data.folder import SegmentationFolder
from lossd.data.info import DatasetInfo
from lossd.data.registry import get_info
from lossd.data.transforms import eval_transform
from lossd.engine.checkpoint import CheckpointMeta, load_checkpoint
from lossd.engine.components import build_metrics, prepare_dataset, print_metrics
from lossd.engine.config import register_resolvers, to_container
from lossd.engine.inference import InferenceOptions
from lossd.engine.inference_model import InferenceModel
from lossd.engine.loaders import eval_loader
from lossd.engine.options import MetricsOptions
from lossd.engine.runtime import DistContext, init_distributed, resolve_device
from lossd.errors import CheckpointError, DatasetNotFoundError, InvalidOptionError
from lossd.io import write_image
from lossd.io.colours import colorize
from lossd.metrics import PerImageStats
from lossd.records import provenance, write_record

__all__ = [
    "LABEL_CHOICES",
    "SplitResult",
    "dataset_config",
    "evaluate",
    "evaluate_split",
    "inference_options",
    "mask_folder",
]

LABEL_CHOICES: tuple[str, ...] = ("eroded", "full")
FULL_MASKS = "masks_full"
"""Folder of the full labels beside the eroded ``masks`` (Potsdam test, lossd.data.prepare)."""


def _rebase(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str) and (value == old or value.startswith(old.rstrip("/") + "/")):
        return new + value[len(old) :]
    if isinstance(value, Mapping):
        return {k: _rebase(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_rebase(v, old, new) for v in value]
    return value


def dataset_config(cfg: DictConfig, train_config: Mapping[str, Any]) -> DictConfig:
    """The dataset to evaluate on: ``cfg.dataset``, else the checkpoint's, rebased.

    Args:
        cfg: The evaluation config (``dataset`` may be None).
        train_config: The checkpoint's training config.

    Returns:
        A dataset node with ``name``, ``root``, ``eval_classes``, ... (``root`` from the current
        ``paths.data_dir`` when taken from the checkpoint).

    Raises:
        CheckpointError: If neither gives a dataset.
    """
    if cfg.get("dataset") is not None:
        # Evaluation never uses the training node, whose recipe values (conf/recipe/) are not
        # composed here (no model=): drop it so the node resolves.
        with open_dict(cfg):
            cfg.dataset.pop("train", None)
        return cast(DictConfig, cfg.dataset)
    stored = train_config.get("dataset")
    if not isinstance(stored, Mapping) or "name" not in stored:
        raise CheckpointError(
            f"checkpoint '{cfg.checkpoint}' names no dataset in its config; pass dataset=<name>"
        )
    name = str(stored["name"])
    new_root = f"{cfg.paths.data_dir}/{name}"
    old_root = stored.get("root")
    node = _rebase(dict(stored), str(old_root), new_root) if old_root else dict(stored)
    node["root"] = new_root
    return OmegaConf.create(node)


def mask_folder(root: Path, split: str, labels: str) -> str:
    """The masks folder of ``<root>/<split>`` for ``labels`` (``eroded`` or ``full``).

    Raises:
        InvalidOptionError: For another ``labels`` value.
        DatasetNotFoundError: If the split has no labels (LoveDA and UAVid test).
    """
    if labels not in LABEL_CHOICES:
        raise InvalidOptionError(f"labels={labels!r}; expected one of {list(LABEL_CHOICES)}")
    split_dir = root / split
    if labels == "full" and (split_dir / FULL_MASKS).is_dir():
        return FULL_MASKS
    if not (split_dir / "images").is_dir():
        raise DatasetNotFoundError(
            f"no prepared split '{split}' in dataset.root='{root}' (expected {split_dir}/images); "
            "run scripts/prepare_data.py, or choose split=val"
        )
    if not (split_dir / "masks").is_dir():
        raise DatasetNotFoundError(
            f"split '{split}' of '{root}' has no labels ({split_dir}/masks); test labels of "
            "LoveDA and UAVid are withheld: evaluate split=val, or make a submission with "
            "scripts/predict.py --submission {loveda,uavid}"
        )
    return "masks"


def inference_options(node: Mapping[str, Any]) -> InferenceOptions:
    """:class:`InferenceOptions` from an ``inference`` config node (lists become tuples).

    Raises:
        InvalidOptionError: For a bad value, or a key that is not an option.
    """
    values = dict(node)
    unknown = sorted(set(values) - {item.name for item in fields(InferenceOptions)})
    if unknown:
        raise InvalidOptionError(f"unknown inference option(s) {unknown}")
    return InferenceOptions(**values)  # its __post_init__ turns the sequences into tuples


def _checkpoint_summary(
    checkpoint: Mapping[str, Any], meta: CheckpointMeta, path: Path
) -> dict[str, Any]:
    trainer = checkpoint.get("trainer") or {}
    return {
        "path": str(path.resolve()),
        "model_name": meta.model_name,
        "num_classes": meta.num_classes,
        "epoch": trainer.get("epoch"),
        "best_epoch": trainer.get("best_epoch"),
        "fingerprint": meta.fingerprint,
    }


def _eval_set(
    dataset: DictConfig,
    info: DatasetInfo,
    split: str,
    labels: str,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    limit: int | None,
) -> tuple[SegmentationFolder, Dataset[dict[str, Any]], str]:
    """The folder, the images and labels to evaluate (normalised as in training), the masks."""
    root = Path(str(dataset.root))
    masks = mask_folder(root, split, labels)
    folder = SegmentationFolder(
        root,
        split,
        info,
        transform=eval_transform(mean, std),
        padding_label=dataset.get("padding_label"),
    )
    if masks != "masks":
        folder.samples = [
            (image, root / split / masks / f"{image.stem}.png") for image, _ in folder.samples
        ]
    if limit is None:
        return folder, folder, masks
    return folder, Subset(folder, range(min(int(limit), len(folder)))), masks


def _ignore_padding(target: Tensor, names: list[str], folder: SegmentationFolder) -> Tensor:
    """``target`` with the padding of every padded patch set to the ignore value."""
    out = target.clone()
    for i, name in enumerate(names):
        box = folder.source_box(name)
        if box is not None:
            top, bottom, left, right = box
            keep = torch.zeros(out.shape[-2:], dtype=torch.bool, device=out.device)
            keep[top:bottom, left:right] = True
            out[i][~keep] = folder.info.ignore_index
    return out


@dataclass(frozen=True)
class SplitResult:
    """The metrics of one evaluated split, with what was evaluated and per-image counts."""

    metrics: dict[str, Any]
    num_images: int
    labels: str
    per_image: PerImageStats | None = None
    without_padding: dict[str, Any] | None = None


def evaluate_split(
    inference: InferenceModel,
    dataset: Any,
    split: str,
    labels: str,
    metrics_options: MetricsOptions,
    ctx: DistContext,
    *,
    limit: int | None = None,
    num_workers: int = 0,
    mask_dir: Path | None = None,
    progress: bool = True,
    describe: str = "",
) -> SplitResult:
    """Metrics of ``inference`` on a prepared split, by the dataset's protocol.

    Shared by ``scripts/evaluate.py`` and the test evaluation that ends a training run. Under
    torchrun the images are sharded over the processes and the counts summed. Where the
    dataset node labels the padding of padded patches (``padding_label``, the ``original``
    protocol on GeoSeg's ISPRS tiles), the metrics count it as that class, as the original
    code did, and :attr:`SplitResult.without_padding` gives them with the padding ignored.

    Args:
        inference: The network with its normalisation, precision, TTA and windows.
        dataset: The dataset node (``name``, ``root``, ``eval_classes``, optional ``prepare``).
        split: Prepared split folder, e.g. ``test``.
        labels: ``eroded`` (``<split>/masks``) or ``full`` (``<split>/masks_full``).
        metrics_options: The metric options (``metrics.*``).
        ctx: Distributed context.
        limit: Evaluate only the first ``limit`` images.
        num_workers: Image-reading processes.
        mask_dir: Write colour masks of the predictions here (None: do not).
        progress: Show a progress bar (rank 0).
        describe: What is evaluated, for the first printed line.

    Raises:
        DatasetNotFoundError: If the split or its labels are missing.
    """
    info = get_info(str(dataset.name))
    folder, evaluated, masks = _eval_set(
        dataset, info, split, labels, inference.mean, inference.std, limit
    )
    device = inference.device
    loader = eval_loader(evaluated, 1, num_workers, ctx, device.type == "cuda")
    metrics = build_metrics(metrics_options, info, dataset.eval_classes)
    plain = None
    if folder.padding_label is not None:
        plain = build_metrics(metrics_options, info, dataset.eval_classes, per_image=False)
    total = len(cast(Any, evaluated))
    options = inference.options
    if ctx.is_main and describe:
        print(
            f"evaluating {describe} on {info.name} {split} ({total} images, "
            f"{dataset.root}/{split}/{masks}) on {device}, tta={options.tta} "
            f"({options.passes} pass(es)), patch_size={options.patch_size}",
            flush=True,
        )
    with torch.inference_mode():
        for batch in tqdm(
            loader,
            desc=f"evaluate {split}",
            unit="img",
            disable=not (progress and ctx.is_main),
            dynamic_ncols=True,
        ):
            image = batch["image"].to(device, non_blocking=True)
            target = batch["mask"].to(device, non_blocking=True)
            pred = inference.logits(image).argmax(dim=1)
            metrics.update(pred, target, batch["name"])
            if plain is not None:
                plain.update(pred, _ignore_padding(target, list(batch["name"]), folder))
            if mask_dir is not None:
                for name, one in zip(batch["name"], pred, strict=True):
                    picture = colorize(one.to(torch.uint8).cpu().numpy(), info.palette)
                    write_image(mask_dir / f"{name}.png", picture)
    metrics.sync()
    per_image = metrics.per_image_stats() if metrics.per_image else None
    without_padding = None
    if plain is not None:
        plain.sync()
        without_padding = plain.compute()
    return SplitResult(metrics.compute(), total, masks, per_image, without_padding)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``cfg.checkpoint`` on ``cfg.split`` and write the run record.

    Args:
        cfg: The composed ``conf/eval.yaml``.

    Returns:
        The run record (also written to ``<paths.output_dir>/metrics.json``; rank 0 sets
        ``path`` to that file).

    Raises:
        CheckpointError: If the checkpoint is unreadable, or holds another model or number of
            classes than asked (``expect_model=``, ``dataset=``).
        DatasetNotFoundError: If the split or its labels are missing.
        InvalidOptionError: For a bad option.
    """
    register_resolvers()
    started = time.time()
    if str(cfg.labels) not in LABEL_CHOICES:  # before any work (loading, data generation)
        raise InvalidOptionError(f"labels={cfg.labels!r}; expected one of {list(LABEL_CHOICES)}")
    ctx = init_distributed(str(cfg.device))
    device = resolve_device(str(cfg.device), ctx.local_rank)
    path = Path(str(cfg.checkpoint))
    checkpoint = load_checkpoint(path)
    meta = CheckpointMeta.from_checkpoint(checkpoint, path)
    train_config: dict[str, Any] = dict(meta.config)
    dataset = dataset_config(cfg, train_config)
    info = get_info(str(dataset.name))
    plain = to_container(cfg)  # the option nodes, typed once
    metrics = MetricsOptions(**plain["metrics"])
    inference = InferenceModel.from_loaded(
        checkpoint,
        path,
        inference_options(plain["inference"]),
        device,
        precision=str(cfg.precision),
        expect_model=cfg.get("expect_model"),
        expect_num_classes=info.num_classes,
    )

    prepare_dataset(dataset, ctx)
    split = str(cfg.split)
    output_dir = Path(str(cfg.paths.output_dir))
    mask_dir = output_dir / "masks"
    result = evaluate_split(
        inference,
        dataset,
        split,
        str(cfg.labels),
        metrics,
        ctx,
        limit=cfg.limit,
        num_workers=int(cfg.num_workers),
        mask_dir=mask_dir if cfg.save_masks else None,
        progress=bool(cfg.progress),
        describe=f"{meta.model_name} ('{path}')",
    )
    options = inference.options
    total, masks = result.num_images, result.labels

    record: dict[str, Any] = {
        "dataset": info.name,
        "model": meta.model_name,
        "loss": (train_config.get("loss") or {}).get("name"),
        "seed": train_config.get("seed"),
        "experiment": train_config.get("experiment_name"),
        "status": "completed",
        "error": None,
        "split": split,
        "labels": masks,
        "num_images": total,
        "checkpoint": _checkpoint_summary(checkpoint, meta, path),
        "inference": {**options.to_dict(), "precision": str(cfg.precision)},
        "metrics": result.metrics,
        "metrics_without_padding": result.without_padding,
        "class_names": list(info.classes),
        "eval_classes": list(dataset.eval_classes),
        "config": train_config,
        "eval_config": {
            **plain,
            "dataset": OmegaConf.to_container(dataset, resolve=True),
        },
        **provenance(started, device, ctx.world_size, output_dir),
    }
    if ctx.is_main:
        written = write_record(output_dir, record, {"eval": result.per_image})
        record["path"] = str(written)
        print_metrics(
            f"{split} metrics — {info.name} / {meta.model_name} / {record['loss']} "
            f"(tta={options.tta})",
            result.metrics,
            info,
            dataset.eval_classes,
            written,
            record["wall_time_s"],
        )
        if cfg.save_masks:
            print(f"colour masks: {mask_dir}")
    return record
