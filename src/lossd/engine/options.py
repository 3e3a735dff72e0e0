"""The options of training and evaluation, each declared once: ``trainer.*`` and ``metrics.*``.

These dataclasses are what the code uses and, through :func:`lossd.engine.schema.node_schema`,
the typed Hydra nodes the YAML merges into; each field's ``help`` is the option's one
description. (``inference.*`` is :class:`lossd.engine.inference.InferenceOptions`.) They import
nothing of the engine, so every engine module can use them.
"""

from dataclasses import dataclass, field
from typing import Any

from lossd.errors import InvalidOptionError

__all__ = ["MetricsOptions", "TrainerOptions"]


@dataclass
class TrainerOptions:
    """``trainer.*`` (conf/train.yaml): declared once, the typed config node and the options.

    Registered as Hydra's ``schema/trainer`` (:func:`lossd.engine.schema.register_schemas`), so a
    bad type fails when the config is composed; the run builds it once from the composed node
    (:func:`lossd.engine.run.run_options`), which checks the values. Each field's ``help`` is the
    option's one description. The trainer reads the loop options; ``device``, ``precision``,
    ``deterministic``, ``resume``, ``sync_batchnorm`` and ``channels_last`` are read by the run.

    Raises:
        InvalidOptionError: If a value is out of range.
    """

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

    def __post_init__(self) -> None:
        if self.max_epochs < 1:
            raise InvalidOptionError(f"trainer.max_epochs={self.max_epochs}; expected >= 1")
        every = self.checkpoint_every_n_steps
        if every is not None and (isinstance(every, bool) or every < 1):
            raise InvalidOptionError(
                f"trainer.checkpoint_every_n_steps={every}; expected a step count >= 1, or "
                "null to write last.ckpt once per epoch"
            )
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


@dataclass(frozen=True)
class MetricsOptions:
    """``metrics.*`` (conf/train.yaml, conf/eval.yaml): declared once, node and options.

    :func:`lossd.engine.schema.register_schemas` derives Hydra's typed node from these fields;
    :func:`build_metrics` turns them into the dataset protocol's accumulator.

    Raises:
        InvalidOptionError: If a ratio is not positive or the band width not a positive int.
    """

    boundary_ratio: float = field(
        default=0.02, metadata={"help": "Boundary IoU dilation ratio of the image diagonal"}
    )
    boundary_width: int | None = field(
        default=None, metadata={"help": "fixed Boundary IoU band width in pixels"}
    )
    bf_ratio: float = field(
        default=0.0075,
        metadata={
            "help": "Boundary F-score match tolerance, fraction of the image diagonal "
            "(0.0075: MATLAB bfscore, Csurka et al. 2013)"
        },
    )
    diagnostics: bool = field(
        default=False, metadata={"help": "over/under-segmentation histograms (costs time)"}
    )
    per_image: bool = field(
        default=True, metadata={"help": "per-image counts in per_image.npz beside the record"}
    )

    def __post_init__(self) -> None:
        for name in ("boundary_ratio", "bf_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise InvalidOptionError(f"metrics.{name}={value!r}; expected a number > 0")
        width = self.boundary_width
        bad_width = isinstance(width, bool) or not isinstance(width, int) or width < 1
        if width is not None and bad_width:
            raise InvalidOptionError(
                f"metrics.boundary_width={width!r}; expected a width in pixels >= 1, or null"
            )
