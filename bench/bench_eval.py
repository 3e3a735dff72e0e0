"""Evaluation speed: metric update time per image (confusion matrix, Boundary IoU, BF, diagnostics).

Usage::

    python bench/bench_eval.py                       # 1024x1024, 8 classes, CPU
    python bench/bench_eval.py --size 512 --classes 6 --device cuda

Times ``SegmentationMetrics.update`` on one image (batch 1, int64 inputs as from ``argmax`` and
a long target) with blocky regions, a prediction with shifted borders and 5% salt noise, and 5%
ignore pixels; and its parts alone: input checks + confusion matrix only (the cost without
Boundary IoU), confusion + Boundary IoU counts on the compact labels, the Boundary F-score
counts (``bf_counts`` at the default tolerance, 0.75 % of the diagonal), diagnostics histograms;
and ``update()`` with the BF counts replaced by zeros (the update without BF), for the ratio
with / without BF. Median of repeats with ``torch.utils.benchmark.Timer`` after warm-up. Judged
against the target "all metrics including Boundary IoU <= 150 ms per 1024x1024 image with 8
classes on the 2-core CPU" (metrics issue), BF included.

Evaluation/prediction section (issue 6), ``--section forward`` and ``--section raster``:

- forward: the eval forward pass of a network (UNetFormer, random weights) on one
  ``--size``² image next to ``SegmentationMetrics.update`` on its prediction; target "all
  metrics incl. Boundary IoU add at most 50 % to the eval forward pass".
- raster: what ``scripts/predict.py`` does with a synthetic ``--raster-size``² 3-band GeoTIFF
  (``Predictor.predict_to``: sliding window with windowed reads and writes of the class
  GeoTIFF, then the colour and overlay PNGs), in a fresh process so that its peak RSS
  (``ru_maxrss``) is the prediction's alone; prints megapixels/s
  and peak RSS against the target "a 6000x6000 tile under 3 GiB peak memory on CPU". A full
  6000² run takes many minutes on a small CPU: ``--raster-size 2048`` for a quick look.

    python bench/bench_eval.py --section forward raster --raster-size 6000 --model unetformer
"""

import argparse
import multiprocessing
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.benchmark import Timer

import lossd.metrics.segmentation as segmentation
from lossd.metrics import (
    SegmentationMetrics,
    bf_counts,
    bf_tolerance,
    boundary_width,
    error_distance_histograms,
    joint_counts,
)

TARGET_MS = 150.0
ROUNDS = 7
"""Interleaved rounds of the with / without BF comparison."""


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


def median_ms(
    stmt: str, env: dict[str, object], device: torch.device, min_run_time: float = 2.0
) -> float:
    sync = "torch.cuda.synchronize()" if device.type == "cuda" else "pass"
    timer = Timer(stmt=f"{stmt}\n{sync}", globals=env)
    timer.timeit(2)  # warm-up
    return 1e3 * timer.blocked_autorange(min_run_time=min_run_time).median


def _no_bf(pred: torch.Tensor, target: torch.Tensor, num_classes: int, *_: object, **kw: object):
    """Zero BF counts of the right shape: ``update()`` as it was without the Boundary F-score."""
    shape = (pred.shape[0], 4, num_classes) if kw.get("per_image") else (4, num_classes)
    return torch.zeros(shape, dtype=torch.int64, device=pred.device)


def bench_metrics(size: int, num_classes: int, device: torch.device) -> None:
    pred, target = make_inputs(size, num_classes, device)
    width = boundary_width(size, size, 0.02)
    tolerance = bf_tolerance(size, size, 0.0075)
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
        "theta": tolerance,
        "bf_counts": bf_counts,
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
        (f"BF counts alone (theta={tolerance:.2f} px)", "bf_counts(pred8, target8, C, theta)"),
        ("diagnostics histograms alone", "error_distance_histograms(pred8, target8, C)"),
        ("update(): all metrics incl. BIoU and BF", "plain.update(pred, target)"),
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
    # with / without BF in interleaved rounds, so that the load of the machine cancels out
    with_bf, no_bf = [], []
    for _ in range(ROUNDS):
        with_bf.append(median_ms("plain.update(pred, target)", env, device, 0.5))
        segmentation.bf_counts = _no_bf  # type: ignore[assignment]
        try:
            no_bf.append(median_ms("plain.update(pred, target)", env, device, 0.5))
        finally:
            segmentation.bf_counts = bf_counts
    label = "update() without BF (BF counts stubbed)"
    times[label] = statistics.median(no_bf)
    full = statistics.median(with_bf)
    print(f"  {ROUNDS} interleaved rounds, median of the round medians:")
    print(f"  {'update(): all metrics incl. BIoU and BF':44s} {full:8.1f} ms")
    print(f"  {label:44s} {times[label]:8.1f} ms")
    base = times["checks + confusion matrix only (no BIoU)"]
    without_bf = times[label]
    with_diag = times["update(): ... + diagnostics"]
    ratio = statistics.median(w / n for w, n in zip(with_bf, no_bf, strict=True))
    print(
        f"update with BIoU / without: {without_bf / base:.2f}x; with BF / without: "
        f"{ratio:.2f}x (median of the rounds' ratios); with diagnostics / without: "
        f"{with_diag / full:.2f}x"
    )
    setting = "" if (size, num_classes, device.type) == (1024, 8, "cpu") else " (other setting)"
    verdict = "meets" if full <= TARGET_MS else "MISSES"
    print(
        f"target: all metrics incl. BIoU and BF <= {TARGET_MS:.0f} ms per 1024² image, "
        f"8 classes, 2-core CPU -> {full:.1f} ms {verdict} it{setting}"
    )


FORWARD_TARGET = 0.5
"""Metric update time / eval forward time (issue 6: metrics add at most 50 % to the forward)."""
RSS_TARGET_GIB = 3.0
"""Peak memory of predicting a 6000x6000 tile on CPU (issue 6)."""


def bench_forward(size: int, num_classes: int, model_name: str, device: torch.device) -> None:
    from lossd.models import build_model

    model = build_model(model_name, num_classes, pretrained=False).eval().to(device)
    image = torch.randn(1, 3, size, size, device=device)
    pred, target = make_inputs(size, num_classes, device)
    metrics = SegmentationMetrics(num_classes)
    env = {
        "torch": torch,
        "model": model,
        "image": image,
        "pred": pred,
        "target": target,
        "metrics": metrics,
    }
    forward = median_ms("with torch.inference_mode(): model(image).argmax(1)", env, device)
    update = median_ms("metrics.update(pred, target)", env, device)
    ratio = update / forward
    verdict = "meets" if ratio <= FORWARD_TARGET else "MISSES"
    print(
        f"eval forward of {model_name} on [1, 3, {size}, {size}] ({num_classes} classes), "
        f"device {device}, threads {torch.get_num_threads()}"
    )
    print(f"  forward + argmax                              {forward:8.1f} ms")
    print(f"  update(): all metrics incl. BIoU              {update:8.1f} ms")
    print(f"metrics / forward: {ratio:.3f} -> target <= {FORWARD_TARGET:.2f}: {verdict} it")


def _write_synthetic_geotiff(path: Path, size: int) -> None:
    """A blocky 3-band uint8 GeoTIFF written in bands of rows (never held whole)."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (16, 3), dtype=np.uint8)
    profile = {
        "driver": "GTiff",
        "height": size,
        "width": size,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": Affine(0.05, 0, 368000, 0, -0.05, 5810000),
    }
    with rasterio.open(path, "w", **profile) as dst:
        for top in range(0, size, 512):
            rows = min(512, size - top)
            yy, xx = np.mgrid[top : top + rows, 0:size]
            block = colours[((yy // 97) * 7 + (xx // 131)) % 16]
            noise = rng.integers(0, 24, block.shape, dtype=np.uint8)
            band = np.moveaxis(block + noise, -1, 0)
            dst.write(band, window=Window(0, top, size, rows))


def _raster_worker(args: dict, queue: "multiprocessing.Queue[dict]") -> None:
    from lossd.data.potsdam import INFO
    from lossd.engine.inference import InferenceOptions
    from lossd.engine.inference_model import InferenceModel
    from lossd.engine.predict import FORMATS, Predictor, output_paths
    from lossd.models import build_model

    torch.set_num_threads(args["threads"])
    model = build_model(args["model"], INFO.num_classes, pretrained=False).eval()
    options = InferenceOptions(
        patch_size=args["patch_size"],
        overlap=args["overlap"],
        batch_size=args["batch_size"],
        tta=args["tta"],
    )
    inference = InferenceModel(
        model=model,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        options=options,
        device=torch.device("cpu"),
    )
    predictor = Predictor(inference=inference, info=INFO, progress=True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    src = Path(args["src"])
    outputs = output_paths(src, Path(args["out"]), FORMATS)  # class GeoTIFF, colour, overlay
    predictor.predict_to(src, outputs)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    queue.put({"seconds": seconds, "peak_kib": peak, "before_kib": before})


def bench_raster(
    size: int, model_name: str, patch_size: int, overlap: float, batch_size: int, tta: str
) -> None:
    from lossd.engine.inference import WindowGrid

    with tempfile.TemporaryDirectory(prefix="lossd-bench-") as folder:
        src, out = Path(folder) / "tile.tif", Path(folder) / "out"
        _write_synthetic_geotiff(src, size)
        args = {
            "src": str(src),
            "out": str(out),
            "model": model_name,
            "patch_size": patch_size,
            "overlap": overlap,
            "batch_size": batch_size,
            "tta": tta,
            "threads": torch.get_num_threads(),
        }
        context = multiprocessing.get_context("spawn")  # a fresh process: its own peak RSS
        queue = context.Queue()
        worker = context.Process(target=_raster_worker, args=(args, queue))
        worker.start()
        worker.join()
        if worker.exitcode != 0:
            raise SystemExit(f"the prediction process failed (exit code {worker.exitcode})")
        result = queue.get(timeout=60)
        import rasterio

        with rasterio.open(out / "tile.tif") as pred:
            assert (pred.height, pred.width, pred.count) == (size, size, 1)
        assert (out / "tile_colour.png").is_file() and (out / "tile_overlay.png").is_file()
    grid = WindowGrid.build(size, size, patch_size, overlap)
    megapixels = size * size / 1e6
    peak_gib = result["peak_kib"] / 2**20
    print(
        f"sliding-window prediction of a {size}x{size} 3-band GeoTIFF, {model_name} (random "
        f"weights), CPU, {args['threads']} threads, patch {patch_size}, overlap {overlap}, "
        f"{len(grid)} windows x {batch_size} per batch, tta={tta}"
    )
    print(
        f"  time {result['seconds']:.1f} s -> {megapixels / result['seconds']:.3f} MP/s "
        f"({result['seconds'] / len(grid):.2f} s per window)"
    )
    print(
        f"  peak RSS {peak_gib:.2f} GiB (after building the model: "
        f"{result['before_kib'] / 2**20:.2f} GiB)"
    )
    setting = "" if size == 6000 else f" (ran {size}², not 6000²)"
    verdict = "meets" if peak_gib < RSS_TARGET_GIB else "MISSES"
    print(f"target: 6000² tile under {RSS_TARGET_GIB:.0f} GiB peak on CPU -> {verdict} it{setting}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--section",
        nargs="+",
        default=["metrics"],
        choices=["metrics", "forward", "raster"],
        help="metrics (default), forward (vs metrics), raster (6000² GeoTIFF)",
    )
    parser.add_argument("--model", default="unetformer", help="network of forward/raster")
    parser.add_argument("--raster-size", type=int, default=6000)
    parser.add_argument("--patch-size", type=int, default=1024)
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--tta", default="none")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if "metrics" in args.section:
        bench_metrics(args.size, args.classes, device)
    if "forward" in args.section:
        bench_forward(args.size, args.classes, args.model, device)
    if "raster" in args.section:
        bench_raster(
            args.raster_size, args.model, args.patch_size, args.overlap, args.batch_size, args.tta
        )


if __name__ == "__main__":
    main()
