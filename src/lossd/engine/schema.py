"""Typed config nodes: Hydra checks ``trainer``, ``metrics`` and ``inference`` when composing.

The dataclasses are registered in Hydra's ConfigStore (:func:`register_schemas`) and named
first in the defaults lists of ``conf/train.yaml``, ``conf/eval.yaml`` and
``conf/inference/*.yaml``, so the YAML values merge into typed nodes: ``trainer.max_epochs=abc``
or ``metrics.diagnostics=maybe`` fails before anything is built, naming the key. Each field's
``help`` is the one description of the option (``scripts/predict.py`` builds its flags from
:class:`InferenceConfig`).
"""

from dataclasses import dataclass, field, fields
from typing import Any

from hydra.core.config_store import ConfigStore

__all__ = ["InferenceConfig", "MetricsConfig", "TrainerConfig", "option_help", "register_schemas"]


@dataclass
class TrainerConfig:
    """``trainer.*`` (conf/train.yaml)."""

    max_epochs: int = field(
        default=1, metadata={"help": "training epochs (default: the dataset recipe's)"}
    )
    limit_train_batches: Any = field(
        default=None, metadata={"help": "int: batches per epoch; float in (0, 1]: fraction"}
    )
    limit_val_batches: Any = field(
        default=None, metadata={"help": "int: validation batches; float in (0, 1]: fraction"}
    )
    val_every_n_epochs: int = field(
        default=1, metadata={"help": "validate every n epochs (and after the last)"}
    )
    log_every_n_steps: int = field(default=10, metadata={"help": "logger step interval"})
    monitor: str = field(
        default="mIoU", metadata={"help": "validation metric that selects the best checkpoint"}
    )
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda"})
    precision: str = field(
        default="auto", metadata={"help": "auto (autocast on CUDA, fp32 on CPU) | 32 | bf16 | fp16"}
    )
    deterministic: bool = field(
        default=True, metadata={"help": "deterministic algorithms (cudnn, torch)"}
    )
    resume: str = field(default="auto", metadata={"help": "auto | never | <checkpoint path>"})
    checkpoint_every_n_steps: int | None = field(
        default=None, metadata={"help": "also write last.ckpt every n steps (None: per epoch)"}
    )
    grad_clip: float | None = field(
        default=None, metadata={"help": "gradient-norm clipping (None: off)"}
    )
    nonfinite: str = field(
        default="stop", metadata={"help": "stop | skip: what a NaN/inf loss does"}
    )
    sync_batchnorm: bool = field(default=False, metadata={"help": "SyncBatchNorm under DDP"})
    channels_last: bool = field(
        default=True, metadata={"help": "channels-last memory format on CUDA"}
    )
    num_log_images: int = field(
        default=4, metadata={"help": "validation images logged with their masks"}
    )
    progress: bool = field(default=True, metadata={"help": "progress bars"})


@dataclass
class MetricsConfig:
    """``metrics.*`` (conf/train.yaml, conf/eval.yaml)."""

    boundary_ratio: float = field(
        default=0.02, metadata={"help": "Boundary IoU dilation ratio of the image diagonal"}
    )
    boundary_width: int | None = field(
        default=None, metadata={"help": "fixed Boundary IoU band width in pixels"}
    )
    diagnostics: bool = field(
        default=False, metadata={"help": "over/under-segmentation histograms (costs time)"}
    )
    per_image: bool = field(
        default=True, metadata={"help": "per-image counts in per_image.npz beside the record"}
    )


@dataclass
class InferenceConfig:
    """``inference.*`` (conf/inference/*.yaml): :class:`lossd.engine.inference.InferenceOptions`."""

    tta: str = field(
        default="none", metadata={"help": "none | hflip | flip (GeoSeg 'lr') | d4 (flips x scales)"}
    )
    scales: list[float] | None = field(
        default=None, metadata={"help": "TTA scales (None: the mode's default)"}
    )
    patch_size: Any = field(
        default=None, metadata={"help": "sliding-window size n or [h, w] (None: whole images)"}
    )
    overlap: float = field(
        default=0.0, metadata={"help": "window overlap, fraction of the window in [0, 1)"}
    )
    batch_size: int = field(default=4, metadata={"help": "windows per forward pass"})
    blend: str = field(
        default="gaussian", metadata={"help": "gaussian (nnU-Net) | uniform (mmseg slide)"}
    )
    rotations: list[int] | None = field(
        default=None, metadata={"help": "TTA rotations in degrees, multiples of 90 (None: none)"}
    )
    interpolation: str = field(
        default="bicubic",
        metadata={"help": "bicubic | bilinear | nearest: TTA rescale of the image and back"},
    )
    pad: str = field(
        default="none",
        metadata={"help": "none | top_left: pad to a multiple of the window (GeoSeg UAVid)"},
    )


def option_help(schema: type, name: str) -> str:
    """The ``help`` of a schema field."""
    for item in fields(schema):
        if item.name == name:
            return str(item.metadata.get("help", ""))
    raise KeyError(name)


def register_schemas() -> None:
    """Register the schemas in Hydra's ConfigStore (idempotent)."""
    store = ConfigStore.instance()
    store.store(group="schema", name="trainer", node=TrainerConfig, package="trainer")
    store.store(group="schema", name="metrics", node=MetricsConfig, package="metrics")
    store.store(group="schema", name="inference", node=InferenceConfig, package="inference")
