"""DataLoaders for single- and multi-process runs.

``dataset.batch_size`` is the global batch (as in the recipes, which used one GPU); each of N
processes loads ``batch_size / N`` samples, so a recipe gives the same optimisation at any N.
Training shuffles with a seeded :class:`DistributedSampler` (the order of epoch ``e`` depends only
on the seed and ``e``, so a resumed run replays it exactly; :class:`ResumableSampler` can start
that order at any sample, so a run stopped mid-epoch continues where it stopped). Evaluation
shards the samples without padding (rank ``r`` takes ``r, r + N, ...``) so that summed metrics
equal the single-process ones.
"""

import itertools
from collections.abc import Iterator, Sized
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from lossd.engine.runtime import DistContext
from lossd.errors import InvalidOptionError

__all__ = ["ResumableSampler", "ShardSampler", "eval_loader", "train_loader"]


class ResumableSampler(DistributedSampler[Any]):
    """A seeded :class:`DistributedSampler` whose epoch can start at any of its samples.

    The order of epoch ``e`` on a rank is that of :class:`DistributedSampler` (a permutation
    seeded by ``seed + e``); :meth:`set_start` skips its first ``start`` samples, so an epoch
    stopped after ``k`` batches of ``b`` samples continues with ``set_start(k * b)`` and sees
    exactly the samples it had not seen yet, in the same order. :meth:`set_epoch` resets the
    start to 0. ``len()`` stays the whole epoch's sample count (the batch count of an epoch
    does not change when it is resumed).
    """

    start: int = 0

    def set_epoch(self, epoch: int) -> None:
        """Select epoch ``epoch``'s order, from its first sample."""
        super().set_epoch(epoch)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Begin the current epoch at sample ``start`` of this rank's order.

        Raises:
            InvalidOptionError: If ``start`` is negative or past the epoch's end.
        """
        if not 0 <= start <= self.num_samples:
            raise InvalidOptionError(
                f"cannot start an epoch of {self.num_samples} samples at sample {start}"
            )
        self.start = start

    def __iter__(self) -> Iterator[Any]:
        return itertools.islice(super().__iter__(), self.start, None)


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
    """Shuffled training batches; the last incomplete batch is dropped when the set is large.

    The sampler is a :class:`ResumableSampler`: the trainer starts a resumed epoch mid-way.
    """
    per_process = _per_process_batch(batch_size, ctx)
    sampler = ResumableSampler(
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
