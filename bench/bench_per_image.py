"""Per-image counts: their cost in the metric update and the size of ``per_image.npz``.

Usage::

    python bench/bench_per_image.py                  # 1024², 7 classes (LoveDA), 100 images
    python bench/bench_per_image.py --images 1669    # the whole LoveDA validation size

Measures, on label maps shaped like LoveDA's (1024 x 1024, 7 classes, blocky regions, a
prediction with shifted borders and 5 % salt noise):

- the time of ``SegmentationMetrics.update`` per image with and without ``per_image`` (both
  with ``diagnostics``), median of repeats, and their ratio;
- the size of ``per_image.npz`` (counts and diagnostics of ``--images`` images) and that size
  scaled to LoveDA's 1,669 validation images (docs/datasets.md), against the target "a few MB
  at most" (issue 14).

Results go in docs/benchmarks.md.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lossd.metrics import PerImageStats, SegmentationMetrics
from lossd.records import write_record

LOVEDA_VAL_IMAGES = 1669


def label_pair(rng: np.random.Generator, size: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A blocky target and a prediction with shifted borders and 5 % salt noise."""
    block = 32
    coarse = rng.integers(0, classes, size=(size // block + 1, size // block + 1))
    target = np.kron(coarse, np.ones((block, block), np.int64))[:size, :size]
    pred = np.roll(target, 3, axis=1)
    noise = rng.random(target.shape) < 0.05
    pred[noise] = rng.integers(0, classes, size=int(noise.sum()))
    return pred, target


def time_updates(
    pairs: list[tuple[np.ndarray, np.ndarray]], classes: int, per_image: bool
) -> float:
    """Median seconds of one ``update`` (one image) over the pairs."""
    metrics = SegmentationMetrics(classes, diagnostics=True, per_image=per_image)
    times = []
    for i, (pred, target) in enumerate(pairs):
        p, t = torch.from_numpy(pred)[None], torch.from_numpy(target)[None]
        start = time.perf_counter()
        metrics.update(p, t, [f"image{i:05d}"] if per_image else None)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--classes", type=int, default=7)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    pairs = [label_pair(rng, args.size, args.classes) for _ in range(min(args.images, 12))]
    plain = time_updates(pairs, args.classes, per_image=False)
    kept = time_updates(pairs, args.classes, per_image=True)
    print(
        f"update per {args.size}² image, {args.classes} classes, diagnostics on, "
        f"{args.threads} thread(s):"
    )
    print(
        f"  without per_image {plain * 1e3:.1f} ms, with {kept * 1e3:.1f} ms: "
        f"ratio {kept / plain:.3f}"
    )

    metrics = SegmentationMetrics(args.classes, diagnostics=True, per_image=True)
    for i in range(args.images):
        pred, target = label_pair(rng, args.size, args.classes)
        metrics.update(pred, target, [f"image{i:05d}"])
    stats: PerImageStats | None = metrics.per_image_stats()
    assert stats is not None
    with tempfile.TemporaryDirectory() as folder:
        record = {"dataset": "loveda", "model": "m", "loss": "l", "seed": 0, "status": "completed"}
        write_record(Path(folder), {**record, "metrics": {}}, {"val": stats})
        size = (Path(folder) / "per_image.npz").stat().st_size
    per_image_bytes = size / args.images
    print(
        f"per_image.npz of {args.images} images: {size / 1e6:.2f} MB "
        f"({per_image_bytes / 1e3:.2f} kB per image)"
    )
    print(
        f"  scaled to LoveDA val ({LOVEDA_VAL_IMAGES} images): "
        f"{per_image_bytes * LOVEDA_VAL_IMAGES / 1e6:.2f} MB"
    )


if __name__ == "__main__":
    main()
