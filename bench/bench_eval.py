"""Evaluation speed: metric update time per image (confusion matrix, Boundary IoU, diagnostics).

Usage::

    python bench/bench_eval.py                       # 1024x1024, 8 classes, CPU
    python bench/bench_eval.py --size 512 --classes 6 --device cuda

Times ``SegmentationMetrics.update`` on one image (batch 1, int64 inputs as from ``argmax`` and
a long target) with blocky regions, a prediction with shifted borders and 5% salt noise, and 5%
ignore pixels; and its parts alone: input checks + confusion matrix only (the cost without
Boundary IoU), confusion + Boundary IoU counts on the compact labels, diagnostics histograms.
Median of repeats with ``torch.utils.benchmark.Timer`` after warm-up. Judged against the target
"all metrics including Boundary IoU <= 150 ms per 1024x1024 image with 8 classes on the 2-core
CPU" (metrics issue).
"""

import argparse
import platform

import numpy as np
import torch
from torch.utils.benchmark import Timer

from lossd.metrics import (
    SegmentationMetrics,
    boundary_width,
    error_distance_histograms,
    joint_counts,
)

TARGET_MS = 150.0


def make_inputs(size: int, num_classes: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    rng = np.random.default_rng(0)
    block = 64
    coarse = rng.integers(0, num_classes, size=(size // block + 1, size // block + 1))
    target = np.kron(coarse, np.ones((block, block), np.int64))[:size, :size]
    pred = np.roll(target, shift=(3, -2), axis=(0, 1))
    salt = rng.random(target.shape) < 0.05
    pred = np.where(salt, rng.integers(0, num_classes, target.shape), pred)
    target[rng.random(target.shape) < 0.05] = 255
    pred_t = torch.from_numpy(pred).unsqueeze(0).to(device)
    target_t = torch.from_numpy(target).unsqueeze(0).to(device)
    return pred_t, target_t


def median_ms(stmt: str, env: dict[str, object], device: torch.device) -> float:
    sync = "torch.cuda.synchronize()" if device.type == "cuda" else "pass"
    timer = Timer(stmt=f"{stmt}\n{sync}", globals=env)
    timer.timeit(2)  # warm-up
    return 1e3 * timer.blocked_autorange(min_run_time=2.0).median


def bench_metrics(size: int, num_classes: int, device: torch.device) -> None:
    pred, target = make_inputs(size, num_classes, device)
    width = boundary_width(size, size, 0.02)
    plain = SegmentationMetrics(num_classes)
    diagnostic = SegmentationMetrics(num_classes, diagnostics=True)
    pred8, target8 = plain._encode(pred, target)  # compact labels, num_classes marks ignore
    env = {
        "torch": torch,
        "pred": pred,
        "target": target,
        "pred8": pred8,
        "target8": target8,
        "C": num_classes,
        "d": width,
        "plain": plain,
        "diagnostic": diagnostic,
        "joint_counts": joint_counts,
        "error_distance_histograms": error_distance_histograms,
    }
    confusion_only = (
        "p, t = plain._encode(pred, target); "
        "torch.bincount((t.to(torch.int16) * (C + 1) + p).view(-1), minlength=(C + 1) ** 2)"
    )
    rows = [
        ("checks + confusion matrix only (no BIoU)", confusion_only),
        (f"confusion + Boundary IoU counts (d={width})", "joint_counts(pred8, target8, C, d)"),
        ("diagnostics histograms alone", "error_distance_histograms(pred8, target8, C)"),
        ("update(): all metrics incl. BIoU", "plain.update(pred, target)"),
        ("update(): ... + diagnostics", "diagnostic.update(pred, target)"),
    ]
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"device {device}, threads {torch.get_num_threads()}"
    )
    print(f"one image [1, {size}, {size}] int64, {num_classes} classes, 5% ignore")
    times = {}
    for label, stmt in rows:
        times[label] = median_ms(stmt, env, device)
        print(f"  {label:44s} {times[label]:8.1f} ms")
    full = times["update(): all metrics incl. BIoU"]
    base = times["checks + confusion matrix only (no BIoU)"]
    with_diag = times["update(): ... + diagnostics"]
    print(
        f"update with BIoU / without: {full / base:.2f}x; "
        f"with diagnostics / without: {with_diag / full:.2f}x"
    )
    setting = "" if (size, num_classes, device.type) == (1024, 8, "cpu") else " (other setting)"
    verdict = "meets" if full <= TARGET_MS else "MISSES"
    print(
        f"target: all metrics incl. BIoU <= {TARGET_MS:.0f} ms per 1024² image, 8 classes, "
        f"2-core CPU -> {full:.1f} ms {verdict} it{setting}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    bench_metrics(args.size, args.classes, torch.device(args.device))


if __name__ == "__main__":
    main()
