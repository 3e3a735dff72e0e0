"""Loss speed and memory: Lossd against cross-entropy and the naive reference (issue 3).

Usage::

    python bench/bench_losses.py                         # CPU, batch 8, 7 classes, 512x512
    python bench/bench_losses.py --device cuda --repeats 20
    python bench/bench_losses.py --naive-sizes 256 512 --naive-repeats 1
    python bench/bench_losses.py --threads 1             # steadier on a loaded, shared CPU
    python bench/bench_losses.py --competitors --only abl boundary_dou hd_dt cldice

Every row of ``LOSSES`` is a named factory: it receives the batch (leaf logits, target) and
returns a zero-argument step that computes the scalar loss; the timed statement is the step's
forward plus ``backward()``. A competing loss or a whole training step is one more line in the
table. Each loss is timed with ``torch.utils.benchmark.Timer`` on the same inputs in one
process, after warm-up, CUDA synchronised, rounds interleaved across losses (so load changes on
a shared machine hit all rows alike), and the median of the rounds is reported.

Inputs: a blocky target (square regions of 32 px, random classes) and logits
``2 * one_hot(target) + N(0, 1)``, so that about a fifth of the pixels are misclassified,
both near and far from boundaries.

Targets of issue 3: Lossd / cross-entropy <= 10 with the target maps computed inside and <= 3
with precomputed maps; naive reference / Lossd >= 30; peak extra memory of Lossd over
cross-entropy <= 2x the logits. On CUDA the memory is ``max_memory_allocated`` after a reset;
on CPU it is the bytes of the tensors saved for backward (``saved_tensors_hooks``), the size of
the target maps, and the growth of the resident set (Linux VmHWM) over one step in a fresh
child process.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib.util
import math
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.benchmark import Timer

from lossd import losses
from lossd.losses import DistanceLoss, TargetDistanceMaps, target_distance_maps

NAIVE_PATH = Path(__file__).resolve().parents[1] / "tests" / "losses" / "_naive_lossd.py"
MAX_ITER = 50  # docs/lossd.md, Definition (default of the authors' code)

TARGET_LOSSD_OVER_CE = 10.0
TARGET_PRECOMPUTED_OVER_CE = 3.0
TARGET_NAIVE_OVER_LOSSD = 30.0
TARGET_EXTRA_MEMORY = 2.0


@dataclass
class Batch:
    """One benchmark batch: leaf logits (requires grad) and the target, on the device."""

    logits: Tensor
    target: Tensor

    @property
    def num_classes(self) -> int:
        """Number of classes C of the logits."""
        return self.logits.shape[1]


LossStep = Callable[[], Tensor]
LossFactory = Callable[[Batch], LossStep]


def load_naive() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_naive_lossd", NAIVE_PATH)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"naive reference not found at {NAIVE_PATH}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dense_autograd_lossd(logits: Tensor, target: Tensor, maps: TargetDistanceMaps) -> Tensor:
    """Lossd (all classes, mean) as a dense [B, C, H, W] chain of ops under torch autograd.

    The alternative to the custom backward of ``DistanceLoss``: same target maps, but the
    straight-through mask, signed maps and normaliser of docs/lossd.md steps 1-4 are built for
    every class, and autograd keeps them for backward. Only here to measure whether the custom
    backward pays; checked against ``DistanceLoss`` before timing.
    """
    num_classes = logits.shape[1]
    prob = torch.softmax(logits.float(), dim=1)
    pred = logits.detach().max(dim=1).indices
    hard = F.one_hot(pred, num_classes).permute(0, 3, 1, 2).float()
    mask = hard + (prob - prob.detach())
    is_true = F.one_hot(target, num_classes).permute(0, 3, 1, 2)
    pos = is_true * maps.depth.unsqueeze(1).float()
    full = pos - maps.outside.float()
    diff = (mask * full - pos).abs()
    per_class = (torch.log1p(diff + 1e-6) / math.log1p(maps.max_iter)).mean(dim=(0, 2, 3))
    taken = (hard.sum(dim=(0, 2, 3)) > 0) | (is_true.sum(dim=(0, 2, 3)) > 0)
    return (per_class * taken).sum() / taken.sum().clamp(min=1)


def cross_entropy(batch: Batch) -> LossStep:
    return lambda: F.cross_entropy(batch.logits, batch.target)


def lossd(batch: Batch) -> LossStep:
    loss = DistanceLoss(batch.num_classes, max_iter=MAX_ITER).to(batch.logits.device)
    return lambda: loss(batch.logits, batch.target)


def lossd_precomputed_maps(batch: Batch) -> LossStep:
    loss = DistanceLoss(batch.num_classes, max_iter=MAX_ITER).to(batch.logits.device)
    maps = target_distance_maps(batch.target, batch.num_classes, MAX_ITER)
    return lambda: loss(batch.logits, batch.target, maps)


def lossd_dense_autograd_precomputed_maps(batch: Batch) -> LossStep:
    maps = target_distance_maps(batch.target, batch.num_classes, MAX_ITER)
    return lambda: dense_autograd_lossd(batch.logits, batch.target, maps)


def naive_lossd(batch: Batch) -> LossStep:
    naive = load_naive()
    return lambda: naive.naive_lossd(batch.logits, batch.target, max_iter=MAX_ITER)


def module_loss(loss_class: type[torch.nn.Module], **kwargs: Any) -> LossFactory:
    """A row for any ``loss(logits, target)`` module, built with the config defaults."""

    def factory(batch: Batch) -> LossStep:
        loss = loss_class(**kwargs).to(batch.logits.device)
        return lambda: loss(batch.logits, batch.target)

    return factory


LOSSES: dict[str, LossFactory] = {
    "cross_entropy": cross_entropy,
    "lossd": lossd,
    "lossd_precomputed_maps": lossd_precomputed_maps,
    "lossd_dense_autograd_precomputed_maps": lossd_dense_autograd_precomputed_maps,
}
"""The timed rows at ``--size``; add a competing loss or a training step as one line."""

COMPETITORS: dict[str, LossFactory] = {
    "soft_ce_0.05": module_loss(losses.SoftCrossEntropyLoss, smooth_factor=0.05),
    "dice": module_loss(losses.DiceLoss, smooth=0.05),
    "boundary_kervadec": module_loss(losses.KervadecBoundaryLoss),
    "boundary_f1": module_loss(losses.BoundaryF1Loss, theta0=3, theta=5),
    "dtl": module_loss(losses.DistanceTransformLoss, dilate=5, power=0.5),
    "lovasz": module_loss(losses.LovaszSoftmaxLoss, classes="present"),
    "rmi": module_loss(losses.RMILoss, radius=3, pool_stride=3),
    "abl": module_loss(
        losses.ActiveBoundaryLoss, max_n_ratio=0.01, label_smoothing=0.2, max_clip_dist=20.0
    ),
    "boundary_dou": module_loss(losses.BoundaryDoULoss, smooth=1e-5, alpha_max=0.8),
    "hd_dt": module_loss(losses.HausdorffDTLoss, alpha=2.0),
    "cldice": module_loss(losses.ClDiceLoss, iterations=10, smooth=1.0, alpha=1.0),
}
"""Competing losses (conf/loss/*.yaml settings), timed with ``--competitors``."""

NAIVE_ROWS: dict[str, LossFactory] = {"lossd": lossd, "naive_lossd": naive_lossd}
"""The rows timed at each ``--naive-sizes`` (the naive reference is slow)."""


def make_batch(batch: int, num_classes: int, size: int, device: torch.device) -> Batch:
    generator = torch.Generator().manual_seed(0)
    block = 32
    cells = size // block + 1
    coarse = torch.randint(0, num_classes, (batch, cells, cells), generator=generator)
    target = coarse.repeat_interleave(block, 1).repeat_interleave(block, 2)[:, :size, :size]
    target = target.contiguous()
    logits = torch.randn((batch, num_classes, size, size), generator=generator)
    logits.scatter_add_(1, target.unsqueeze(1), torch.full_like(logits[:, :1], 2.0))
    return Batch(logits.to(device).requires_grad_(), target.to(device))


def time_rows(
    rows: dict[str, LossFactory], batch: Batch, repeats: int, warmup: int
) -> dict[str, float]:
    """Median seconds of forward + backward per row, rounds interleaved across rows."""
    timers = {}
    for name, factory in rows.items():
        env = {"step": factory(batch), "logits": batch.logits}
        timers[name] = Timer(stmt="step().backward(); logits.grad = None", globals=env)
    for timer in timers.values():
        timer.timeit(warmup)
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(repeats):
        for name, timer in timers.items():
            times[name].append(timer.timeit(1).median)
    return {name: statistics.median(values) for name, values in times.items()}


def saved_for_backward_bytes(step: LossStep, batch: Batch) -> int:
    """Bytes of the distinct storages autograd saves for backward, minus the logits' own."""
    storages: dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        value = step()
    value.backward()
    batch.logits.grad = None
    storages.pop(batch.logits.untyped_storage().data_ptr(), None)
    return sum(storages.values())


def cuda_peak_bytes(step: LossStep, batch: Batch) -> int:
    """Peak bytes allocated during forward + backward above what was allocated before."""
    torch.cuda.synchronize()
    batch.logits.grad = None
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step().backward()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    batch.logits.grad = None
    return peak


def rss_bytes(field: str = "VmRSS") -> int:
    """A memory figure of this process from /proc/self/status (Linux), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"{field} not in /proc/self/status")


def rss_child(args: argparse.Namespace) -> None:
    """In a fresh process: growth of the resident set over one forward + backward.

    glibc is told to serve every allocation >= 128 KiB by mmap (returned to the system when
    freed), free heap memory is trimmed, and the kernel's high-water mark (VmHWM) is reset
    just before the step (after a warm-up step), so the growth is the step's peak of live
    memory (plus the gradient of the logits, which every row allocates alike).
    """
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD: fixed, no dynamic raise
    batch = make_batch(args.batch, args.classes, args.size, torch.device("cpu"))
    step = {**LOSSES, **COMPETITORS}[args.rss_child](batch)
    step().backward()  # warm-up: one-time allocations (thread pools) are not the loss's
    batch.logits.grad = None
    gc.collect()
    libc.malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # reset VmHWM to the current resident set
    base = rss_bytes()
    step().backward()
    print(rss_bytes("VmHWM") - base)


def cpu_peak_rss_bytes(name: str, args: argparse.Namespace) -> int | None:
    command = [sys.executable, __file__, "--rss-child", name]
    command += ["--batch", str(args.batch), "--classes", str(args.classes)]
    command += ["--size", str(args.size)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1:]
        print(f"  (RSS child for {name} failed: {reason}; pass --no-rss off Linux)")
        return None
    return int(result.stdout.strip().splitlines()[-1])


def check_agreement(batch: Batch) -> None:
    """The rows must compute the same Lossd before their times mean anything."""
    with torch.no_grad():
        fast = DistanceLoss(batch.num_classes, max_iter=MAX_ITER).to(batch.logits.device)
        maps = target_distance_maps(batch.target, batch.num_classes, MAX_ITER)
        value = float(fast(batch.logits, batch.target))
        dense = float(dense_autograd_lossd(batch.logits, batch.target, maps))
    print(f"check: Lossd {value:.6f}, dense autograd {dense:.6f}, |diff| {abs(value - dense):.2e}")


def verdict(ratio: float, target: float, at_most: bool) -> str:
    ok = ratio <= target if at_most else ratio >= target
    return f"{'meets' if ok else 'MISSES'} target {'<=' if at_most else '>='} {target:g}"


def print_header(args: argparse.Namespace, device: torch.device) -> None:
    print(f"device: {device}", end="")
    if device.type == "cuda":
        print(f" ({torch.cuda.get_device_name(device)})", end="")
    else:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(
            f" ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"{torch.get_num_threads()} torch threads, load average {load})",
            end="",
        )
    print(f"\ntorch {torch.__version__}, python {platform.python_version()}")
    print(
        f"logits [{args.batch}, {args.classes}, {args.size}, {args.size}] float32, "
        f"target [{args.batch}, {args.size}, {args.size}] int64, max_iter {MAX_ITER}, "
        f"{args.repeats} rounds (median), {args.warmup} warm-up"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--classes", type=int, default=7)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--naive-sizes", type=int, nargs="*", default=[256])
    parser.add_argument("--naive-repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-rss", action="store_true", help="skip the CPU RSS children")
    parser.add_argument(
        "--competitors", action="store_true", help="also time the competing boundary losses"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=sorted(COMPETITORS),
        default=None,
        metavar="NAME",
        help="with --competitors: time only these competing losses (default: all)",
    )
    parser.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.rss_child is not None:
        rss_child(args)
        return

    device = torch.device(args.device)
    print_header(args, device)
    batch = make_batch(args.batch, args.classes, args.size, device)
    logits_bytes = batch.logits.numel() * batch.logits.element_size()
    check_agreement(batch)

    competitors = {
        name: factory
        for name, factory in COMPETITORS.items()
        if args.competitors and (args.only is None or name in args.only)
    }
    rows = {**LOSSES, **competitors}
    seconds = time_rows(rows, batch, args.repeats, args.warmup)
    ce = seconds["cross_entropy"]
    print(f"\nforward + backward at {args.size}x{args.size} (median):")
    for name, value in seconds.items():
        print(f"  {name:42s} {1e3 * value:10.1f} ms   x{value / ce:6.2f} of cross_entropy")
    ratio = seconds["lossd"] / ce
    print(
        f"Lossd / CE, maps inside:      {ratio:6.2f}  "
        f"({verdict(ratio, TARGET_LOSSD_OVER_CE, True)})"
    )
    ratio = seconds["lossd_precomputed_maps"] / ce
    print(
        f"Lossd / CE, precomputed maps: {ratio:6.2f}  "
        f"({verdict(ratio, TARGET_PRECOMPUTED_OVER_CE, True)})"
    )
    ratio = seconds["lossd_dense_autograd_precomputed_maps"] / seconds["lossd_precomputed_maps"]
    print(f"dense autograd / custom backward (both precomputed maps): {ratio:6.2f}")

    print(f"\nmemory, relative to the logits ({logits_bytes / 2**20:.1f} MiB):")
    maps = target_distance_maps(batch.target, args.classes, MAX_ITER)
    maps_bytes = sum(t.numel() * t.element_size() for t in (maps.depth, maps.outside))
    print(
        f"  target maps (outside {maps.outside.dtype}, depth {maps.depth.dtype}): "
        f"{maps_bytes / logits_bytes:.2f}x"
    )
    peaks: dict[str, float] = {}
    for name, factory in rows.items():
        step = factory(batch)
        saved = saved_for_backward_bytes(step, batch) / logits_bytes
        line = f"  {name:42s} saved for backward {saved:5.2f}x"
        if device.type == "cuda":
            peaks[name] = cuda_peak_bytes(step, batch) / logits_bytes
            line += f", peak allocated {peaks[name]:5.2f}x"
        elif not args.no_rss:
            rss = cpu_peak_rss_bytes(name, args)
            if rss is not None:
                peaks[name] = rss / logits_bytes
                line += f", RSS high-water growth {peaks[name]:5.2f}x"
        print(line)
    if "lossd" in peaks and "cross_entropy" in peaks:
        for name in ("lossd", "lossd_precomputed_maps"):
            extra = peaks[name] - peaks["cross_entropy"]
            print(
                f"peak extra memory of {name} over CE: {extra:5.2f}x logits "
                f"({verdict(extra, TARGET_EXTRA_MEMORY, True)})"
            )

    for size in args.naive_sizes:
        small = make_batch(args.batch, args.classes, size, device)
        seconds = time_rows(NAIVE_ROWS, small, args.naive_repeats, warmup=1)
        ratio = seconds["naive_lossd"] / seconds["lossd"]
        print(
            f"\nat {size}x{size}: naive {1e3 * seconds['naive_lossd']:.0f} ms, "
            f"Lossd {1e3 * seconds['lossd']:.1f} ms ({args.naive_repeats} rounds): "
            f"naive / Lossd {ratio:.0f}  ({verdict(ratio, TARGET_NAIVE_OVER_LOSSD, False)})"
        )


if __name__ == "__main__":
    main()
