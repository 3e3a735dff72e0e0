"""Lossd with its target maps from the data loader against cross-entropy (issue 22).

Usage::

    python bench/bench_loader_maps.py                    # CPU, batch 8, 7 classes, 512x512
    python bench/bench_loader_maps.py --device cuda --repeats 20
    python bench/bench_loader_maps.py --threads 1

The maps of Lossd depend on the ground truth only, so ``DistanceMapsTransform`` computes them
once per sample in the ``DataLoader`` workers, in parallel with the training step; the step
then runs ``DistanceLoss(...)(logits, target, maps)`` on the collated ``[B, C + 1, H, W]``
batch. Timed (forward + backward of the loss alone, the shapes and inputs of
bench/bench_losses.py, rounds interleaved, median): cross-entropy, Lossd computing its maps
inside, and Lossd with the loader's maps (their host-to-device copy included on CUDA). Also
printed: the cost of the transform per sample (paid by a worker, not by the step) and the
value check (the loader's maps give the value of maps computed inside).

Target of issue 22: Lossd with maps from the loader <= 1.1 x cross-entropy's fwd + bwd.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from bench_losses import MAX_ITER, Batch, LossStep, make_batch, print_header, time_rows, verdict

from lossd.losses import DistanceLoss, DistanceMapsTransform

TARGET_LOADER_MAPS_OVER_CE = 1.1


def loader_maps(batch: Batch) -> torch.Tensor:
    """The collated maps of a DataLoader whose workers ran the transform on each mask."""
    transform = DistanceMapsTransform(batch.num_classes, max_iter=MAX_ITER)
    masks = batch.target.cpu().numpy()
    return torch.stack([torch.from_numpy(transform(mask)) for mask in masks])


def rows(batch: Batch, maps: torch.Tensor) -> dict[str, Callable[[Batch], LossStep]]:
    loss = DistanceLoss(batch.num_classes, max_iter=MAX_ITER).to(batch.logits.device)
    sparse = DistanceLoss(batch.num_classes, max_iter=MAX_ITER, sparse=True)
    sparse = sparse.to(batch.logits.device)
    pinned = maps.pin_memory() if batch.logits.is_cuda else maps

    def cross_entropy() -> LossStep:
        return lambda: F.cross_entropy(batch.logits, batch.target)

    def inside() -> LossStep:
        return lambda: loss(batch.logits, batch.target)

    def from_loader(fn: DistanceLoss) -> LossStep:
        device = batch.logits.device
        return lambda: fn(batch.logits, batch.target, pinned.to(device, non_blocking=True))

    return {
        "cross_entropy": lambda _: cross_entropy(),
        "lossd_maps_inside": lambda _: inside(),
        "lossd_maps_from_loader": lambda _: from_loader(loss),
        "lossd_sparse_maps_from_loader": lambda _: from_loader(sparse),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--classes", type=int, default=7)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print_header(args, device)
    batch = make_batch(args.batch, args.classes, args.size, device)

    start = time.perf_counter()
    maps = loader_maps(batch)
    per_sample = (time.perf_counter() - start) / args.batch
    loss = DistanceLoss(args.classes, max_iter=MAX_ITER).to(device)
    inside_value = float(loss(batch.logits, batch.target).detach())
    loader_value = float(loss(batch.logits, batch.target, maps.to(device)).detach())
    print(
        f"check: maps inside {inside_value:.8f}, maps from the loader {loader_value:.8f}, "
        f"equal: {inside_value == loader_value}"
    )
    print(
        f"DistanceMapsTransform per {args.size}x{args.size} sample (a worker's cost): "
        f"{1e3 * per_sample:.1f} ms; maps {tuple(maps.shape)} {maps.dtype}"
    )
    seconds = time_rows(rows(batch, maps), batch, args.repeats, args.warmup)
    ce = seconds["cross_entropy"]
    print(f"\nforward + backward at {args.size}x{args.size} (median of {args.repeats}):")
    for name, value in seconds.items():
        print(f"  {name:28s} {1e3 * value:10.1f} ms   x{value / ce:6.2f} of cross_entropy")
    ratio = seconds["lossd_maps_from_loader"] / ce
    print(
        f"Lossd with maps from the loader / CE: {ratio:.2f}  "
        f"({verdict(ratio, TARGET_LOADER_MAPS_OVER_CE, True)})"
    )


if __name__ == "__main__":
    main()
