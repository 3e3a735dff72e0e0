"""DataLoaders for single- and multi-process runs.

``dataset.batch_size`` is the global batch (as in the recipes, which used one GPU); each of N
processes loads ``batch_size / N`` samples, so a recipe gives the same optimisation at any N.
Training shuffles with a seeded :class:`DistributedSampler` (the order of epoch ``e`` depends only
on the seed and ``e``, so a resumed run replays it exactly). Evaluation shards the samples without
padding (rank ``r`` takes ``r, r + N, ...``) so that summed metrics equal the single-process ones.
"""

from collections.abc import Iterator, Sized
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from lossd.engine.runtime import DistContext
from lossd.errors import InvalidOptionError

__all__ = ["ShardSampler", "eval_loader", "train_loader"]


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world_size, ...`` in order, without padding or duplicates."""

    def __init__(self, dataset: Sized, rank: int = 0, world_size: int = 1) -> None:
        self.indices = list(range(rank, len(dataset), world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _per_process_batch(batch_size: int, ctx: DistContext) -> int:
    if batch_size < 1 or batch_size % ctx.world_size:
        raise InvalidOptionError(
            f"dataset.batch_size={batch_size} must be a positive multiple of the number of "
            f"processes ({ctx.world_size}): it is the global batch size"
        )
    return batch_size // ctx.world_size


def train_loader(
    dataset: Dataset[Any],
    batch_size: int,
    num_workers: int,
    seed: int,
    ctx: DistContext,
    pin_memory: bool = False,
) -> DataLoader[Any]:
    """Shuffled training batches; the last incomplete batch is dropped when the set is large."""
    per_process = _per_process_batch(batch_size, ctx)
    sampler: DistributedSampler[Any] = DistributedSampler(
        dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed
    )
    return DataLoader(
        dataset,
        batch_size=per_process,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=len(sampler) >= 2 * per_process,
    )


def eval_loader(
    dataset: Dataset[Any],
    batch_size: int,
    num_workers: int,
    ctx: DistContext,
    pin_memory: bool = False,
) -> DataLoader[Any]:
    """Every sample exactly once across the processes, in order."""
    sized: Any = dataset
    return DataLoader(
        dataset,
        batch_size=max(1, batch_size // ctx.world_size),
        sampler=ShardSampler(sized, ctx.rank, ctx.world_size),
        num_workers=num_workers,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(0),
    )
