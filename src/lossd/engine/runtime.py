"""Process set-up: seeds, deterministic mode, device, mixed precision and torch.distributed."""

import os
import random
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from lossd.errors import InvalidOptionError

__all__ = [
    "DistContext",
    "autocast_dtype",
    "configure_determinism",
    "init_distributed",
    "resolve_device",
    "seed_everything",
]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure_determinism(deterministic: bool) -> None:
    """Deterministic kernels where torch has them (warn, not fail, where it has none).

    Determinism makes CPU runs bit-reproducible; on CUDA a few ops (e.g. bilinear upsampling
    backward) have no deterministic kernel, so GPU runs are reproducible only up to them.
    """
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error.

    Raises:
        InvalidOptionError: For an unknown name or ``cuda`` on a machine without CUDA.
    """
    if name not in {"auto", "cpu", "cuda"}:
        raise InvalidOptionError(f"trainer.device={name!r}; expected one of auto, cpu, cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise InvalidOptionError("trainer.device=cuda but no CUDA device is available")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``trainer.precision`` (None = full float32).

    ``auto``: bf16 on GPUs that support it, else fp16 (with a gradient scaler); float32 on CPU.

    Raises:
        InvalidOptionError: For an unknown precision, or bf16/fp16 asked for on the CPU.
    """
    choices = {"auto", "32", "bf16", "fp16"}
    if precision not in choices:
        raise InvalidOptionError(
            f"trainer.precision={precision!r}; expected one of {sorted(choices)}"
        )
    if device.type != "cuda":
        if precision in {"bf16", "fp16"}:
            raise InvalidOptionError(f"trainer.precision={precision} needs a CUDA device")
        return None
    if precision == "32":
        return None
    if precision == "fp16" or (precision == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, checkpoints and writes run records."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when launched by torchrun with more than one process."""
        return self.world_size > 1

    def barrier(self) -> None:
        """Wait for every process (no-op when not distributed)."""
        if self.distributed and dist.is_initialized():
            dist.barrier()


def init_distributed(device_name: str) -> DistContext:
    """Join the process group torchrun describes in the environment (NCCL on GPU, gloo on CPU).

    Without ``WORLD_SIZE`` > 1 in the environment this is a single-process context.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=30))
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank)
