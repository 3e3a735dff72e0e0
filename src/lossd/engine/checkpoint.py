"""Training checkpoints: everything needed to continue a run exactly, written atomically.

A checkpoint holds the model, optimizer, scheduler and gradient-scaler states, the epoch and
step, the best score so far, the random states of Python, NumPy and torch (CPU and CUDA), the
W&B run id, and a fingerprint of the config so that ``trainer.resume=auto`` never continues a
run with different settings. It is written to a temporary file and renamed: a process killed
while writing leaves the previous checkpoint intact.
"""

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lossd.errors import CheckpointError
from lossd.io import atomic_path

__all__ = [
    "CHECKPOINT_FORMAT",
    "capture_rng_state",
    "load_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "lossd-checkpoint-v1"


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
