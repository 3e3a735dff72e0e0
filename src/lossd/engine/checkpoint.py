"""Training checkpoints: everything needed to continue a run exactly, written atomically.

A checkpoint holds the model, optimizer, scheduler and gradient-scaler states, the epoch and
step, the best score so far, the random states of Python, NumPy and torch (CPU and CUDA), and
one :class:`CheckpointMeta` block: what the network is and how it was trained (model, classes,
network arguments, normalisation), the config fingerprint that keeps ``trainer.resume=auto``
from continuing a run with different settings, and the W&B run id. It is written to a temporary
file and renamed: a process killed while writing leaves the previous checkpoint intact.
"""

import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from lossd.data.registry import get_info
from lossd.engine.components import training_normalization
from lossd.errors import CheckpointError
from lossd.io import atomic_path

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointMeta",
    "capture_rng_state",
    "load_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "lossd-checkpoint-v1"
"""Tag of the container (torch.save of a dict); what it holds is versioned by CheckpointMeta."""

_META_KEY = "meta"


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint's network is and how it was trained: written once, read everywhere.

    Written by the training run (:func:`lossd.engine.run.run`) into every checkpoint; read by
    :mod:`lossd.engine.model_io` (rebuilding the network), ``evaluate`` and ``predict``.

    Args:
        model_name: ``model.name`` (the ``build_model`` name).
        num_classes: Number of output classes.
        dataset: ``dataset.name`` it was trained on.
        class_names: Class names in index order (the dataset module's table).
        net: The ``model.net`` config node (``_target_`` and ``build_model`` arguments).
        mean: Normalisation mean per band (0..1 scale) of the training images.
        std: Normalisation std per band.
        fingerprint: Hash of the resolved config without volatile keys
            (:func:`lossd.engine.config.config_fingerprint`).
        config: The full resolved training config (portable paths).
        wandb_run_id: The W&B run to continue on resume (None without W&B).
        version: Layout version of this block; :data:`VERSION` when written.
    """

    VERSION: ClassVar[int] = 2

    model_name: str
    num_classes: int
    dataset: str
    class_names: tuple[str, ...]
    net: dict[str, Any]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    fingerprint: str
    config: dict[str, Any] = field(default_factory=dict)
    wandb_run_id: str | None = None
    version: int = VERSION

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], fingerprint: str, wandb_run_id: str | None = None
    ) -> "CheckpointMeta":
        """The block of a run from its resolved (portable) training config."""
        info = get_info(str(config["dataset"]["name"]))
        mean, std = training_normalization(config)
        return cls(
            model_name=str(config["model"]["name"]),
            num_classes=info.num_classes,
            dataset=info.name,
            class_names=info.classes,
            net=dict(config["model"]["net"]),
            mean=mean,
            std=std,
            fingerprint=fingerprint,
            config=dict(config),
            wandb_run_id=wandb_run_id,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain containers for ``torch.save`` (loadable with ``weights_only=True``)."""
        return asdict(self)

    @classmethod
    def from_checkpoint(cls, checkpoint: Mapping[str, Any], path: str | Path) -> "CheckpointMeta":
        """The block of a loaded checkpoint.

        Raises:
            CheckpointError: If the checkpoint has no block (an older lossd wrote it), a block
                of another version, or a block with missing or malformed entries.
        """
        block = checkpoint.get(_META_KEY)
        if block is None:
            raise CheckpointError(
                f"checkpoint '{path}' has no '{_META_KEY}' block: it was written by an older "
                f"lossd (checkpoint metadata version 1; this lossd reads version {cls.VERSION}). "
                "Retrain it with this version, or evaluate it with the lossd version that "
                "wrote it"
            )
        if not isinstance(block, Mapping) or block.get("version") != cls.VERSION:
            found = block.get("version") if isinstance(block, Mapping) else type(block).__name__
            raise CheckpointError(
                f"checkpoint '{path}' has metadata version {found}; this lossd reads version "
                f"{cls.VERSION}. Use the lossd version that wrote it, or retrain"
            )
        names = [f.name for f in fields(cls) if f.name not in block]
        if names:
            raise CheckpointError(
                f"checkpoint '{path}' lacks {names} in its '{_META_KEY}' block; expected a "
                "checkpoint written by scripts/train.py (checkpoints/best.ckpt or last.ckpt)"
            )
        net = block["net"]
        if not isinstance(net, Mapping) or "_target_" not in net:
            raise CheckpointError(
                f"checkpoint '{path}' has no network config with a _target_ in its "
                f"'{_META_KEY}' block; cannot rebuild its network"
            )
        return cls(
            model_name=str(block["model_name"]),
            num_classes=int(block["num_classes"]),
            dataset=str(block["dataset"]),
            class_names=tuple(str(c) for c in block["class_names"]),
            net=dict(net),
            mean=_floats(block["mean"]),
            std=_floats(block["std"]),
            fingerprint=str(block["fingerprint"]),
            config=dict(block["config"] or {}),
            wandb_run_id=block["wandb_run_id"],
        )

    def into(self, state: dict[str, Any]) -> dict[str, Any]:
        """``state`` with this block added under its key (what :func:`save_checkpoint` stores)."""
        return {**state, _META_KEY: self.to_dict()}


def _floats(values: Sequence[Any]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def capture_rng_state() -> dict[str, Any]:
    """Random states of every library the training loop draws from, as plain containers."""
    np_state: tuple[Any, ...] = tuple(np.random.get_state())
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    python_state = state["python"]
    random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["kind"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Save ``state`` (with the format tag added) to ``path`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a training checkpoint with ``weights_only=True`` (no code is unpickled).

    Raises:
        CheckpointError: If the file is missing, unreadable, or not a lossd checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: '{path}'")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or foreign files
        raise CheckpointError(
            f"cannot read checkpoint '{path}': {type(err).__name__}: {err}"
        ) from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"'{path}' is not a lossd training checkpoint (expected format "
            f"'{CHECKPOINT_FORMAT}'); to start from model weights use model.weights=<path>"
        )
    return state
