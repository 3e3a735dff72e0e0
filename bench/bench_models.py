"""Model zoo cost: parameters, MACs, eval and training-step time, peak memory (issue 4).

Usage::

    python bench/bench_models.py                          # all models, CPU, 512x512
    python bench/bench_models.py --device cuda --repeats 20
    python bench/bench_models.py --models unetformer sfanet --threads 1 --macs-size 0

Per network (random weights, ``num_classes`` 6, no download):

* parameters, and MACs of one eval forward at 1x3x1024^2 counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (MACs = FLOPs / 2; convolutions and matrix
  products, as in the reference measurement);
* eval forward time at batch 1 and training-step time at batch 2 (AdamW, cross-entropy on the
  main and every auxiliary output, backward, step) at ``--size``; ``torch.utils.benchmark.Timer``
  after one warm-up call, CUDA synchronised, median of ``--repeats``, rounds interleaved across
  models so that load changes on a shared machine hit all rows alike;
* peak memory of the first training step (so AdamW's state, 8 bytes per parameter, is
  included): CUDA ``max_memory_allocated`` after a reset, minus the memory allocated before;
  on CPU the growth of the resident set's high-water mark (Linux VmHWM, reset through
  ``/proc/self/clear_refs``) over that step in a fresh child process.

Published numbers printed beside (docs/reference.md, "Model fidelity targets": measured on the
original GeoSeg / SFA-Net code with timm 1.0.31; the reference CPU timings come from another
run on the shared CPU, so compare them loosely).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.benchmark import Timer
from torch.utils.flop_counter import FlopCounterMode

from lossd.models import MODEL_NAMES, build_model

NUM_CLASSES = 6
# docs/reference.md, "Model fidelity targets" (nc = 6; None = not published / not measured)
REFERENCE = {
    "unetformer": {"params": 11_724_894, "gmacs": 46.8, "eval_s": 0.13, "train_s": 0.82},
    "abcnet": {"params": 13_666_563, "gmacs": 62.4, "eval_s": 0.17, "train_s": 1.07},
    "sfanet": {"params": 10_700_121, "gmacs": None, "eval_s": None, "train_s": None},
    # torchvision fcn_resnet50 (dilated, OS 8), "for scale only": not the same network
    "fcn": {"params": 32_949_318, "gmacs": 553.0, "eval_s": 1.0, "train_s": 8.2},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--size", type=int, default=512, help="side of the timed images")
    parser.add_argument("--macs-size", type=int, default=1024, help="0 skips the MAC count")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--child-memory", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def train_step(
    model: torch.nn.Module,
    images: torch.Tensor,
    target: torch.Tensor,
    optimizer: torch.optim.Optimizer,
) -> Callable[[], None]:
    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        outputs = model(images)
        loss = sum(F.cross_entropy(out, target) for out in outputs)
        loss.backward()
        optimizer.step()

    return step


def make_inputs(size: int, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, size, size, generator=generator).to(device)
    target = torch.randint(0, NUM_CLASSES, (batch, size, size), generator=generator).to(device)
    return images, target


def count_gmacs(name: str, size: int) -> float:
    model = build_model(name, NUM_CLASSES).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 3, size, size))
    return counter.get_total_flops() / 2 / 1e9


def read_hwm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def child_memory(name: str, size: int) -> None:
    """Run in a fresh process: print the VmHWM growth of one training step at batch 2."""
    model = build_model(name, NUM_CLASSES).train()
    images, target = make_inputs(size, 2, torch.device("cpu"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the RSS
    before = read_hwm_bytes()
    train_step(model, images, target, optimizer)()
    print(read_hwm_bytes() - before)


def cpu_peak_memory(name: str, size: int, threads: int) -> int:
    command = [
        sys.executable,
        __file__,
        "--child-memory",
        name,
        "--size",
        str(size),
        "--threads",
        str(threads),
    ]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return int(result.stdout.strip().splitlines()[-1])


def cuda_peak_memory(step: Callable[[], None], device: torch.device) -> int:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    baseline = torch.cuda.memory_allocated(device)
    step()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - baseline


def median_seconds(fn: Callable[[], None], repeats: int) -> float:
    timer = Timer(stmt="fn()", globals={"fn": fn})
    return statistics.median(timer.timeit(1).median for _ in range(repeats))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child_memory:
        child_memory(args.child_memory, args.size)
        return
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        hardware = (
            f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
        )
    print(
        f"torch {torch.__version__}, device {device} ({hardware}), eval batch 1 / train batch 2"
        f" at {args.size}^2, {NUM_CLASSES} classes, median of {args.repeats}"
    )

    rows: dict[str, dict[str, float | int | None]] = {}
    eval_fns: dict[str, Callable[[], None]] = {}
    train_fns: dict[str, Callable[[], None]] = {}
    eval_images, _ = make_inputs(args.size, 1, device)
    train_images, train_target = make_inputs(args.size, 2, device)
    for name in args.models:
        eval_model = build_model(name, NUM_CLASSES).to(device).eval()
        train_model = build_model(name, NUM_CLASSES).to(device).train()
        optimizer = torch.optim.AdamW(train_model.parameters(), lr=1e-4)

        def evaluate(model: torch.nn.Module = eval_model) -> None:
            with torch.no_grad():
                model(eval_images)

        eval_fns[name] = evaluate
        train_fns[name] = train_step(train_model, train_images, train_target, optimizer)
        rows[name] = {"params": sum(p.numel() for p in train_model.parameters())}
        evaluate()  # warm-up
        if device.type == "cuda":
            rows[name]["peak_mem_mib"] = cuda_peak_memory(train_fns[name], device) / 2**20
        else:
            train_fns[name]()  # warm-up
            rows[name]["peak_mem_mib"] = cpu_peak_memory(name, args.size, args.threads) / 2**20

    eval_times: dict[str, list[float]] = {name: [] for name in args.models}
    train_times: dict[str, list[float]] = {name: [] for name in args.models}
    for _ in range(args.repeats):  # interleaved rounds
        for name in args.models:
            eval_times[name].append(median_seconds(eval_fns[name], 1))
            train_times[name].append(median_seconds(train_fns[name], 1))
    for name in args.models:
        rows[name]["eval_s"] = statistics.median(eval_times[name])
        rows[name]["train_s"] = statistics.median(train_times[name])
        rows[name]["gmacs"] = count_gmacs(name, args.macs_size) if args.macs_size else None

    def cell(value: float | int | None, width: int, spec: str) -> str:
        return ("-" if value is None else format(value, spec)).rjust(width)

    columns = [  # (title, width, format, row or reference key)
        ("params", 11, ",", "params"),
        ("ref params", 11, ",", "ref:params"),
        (f"GMACs@{args.macs_size}", 12, ".1f", "gmacs"),
        ("ref GMACs", 9, ".1f", "ref:gmacs"),
        ("eval s", 7, ".3f", "eval_s"),
        ("ref", 5, ".2f", "ref:eval_s"),
        ("train s", 8, ".3f", "train_s"),
        ("ref", 5, ".2f", "ref:train_s"),
        ("peak MiB", 9, ".0f", "peak_mem_mib"),
    ]
    print(f"{'model':<11}" + "".join(" " + title.rjust(width) for title, width, _, _ in columns))
    for name in args.models:
        values = {**rows[name], **{f"ref:{k}": v for k, v in REFERENCE[name].items()}}
        print(
            f"{name:<11}"
            + "".join(" " + cell(values[key], width, spec) for _, width, spec, key in columns)
        )
    print(
        "ref: docs/reference.md 'Model fidelity targets' (original code, another run; FCN ref ="
        " torchvision fcn_resnet50, dilated OS 8, for scale only). Peak memory: first training"
        " step, AdamW state (8 bytes per parameter) included."
    )
    if args.json:
        args.json.write_text(json.dumps({"device": str(device), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
