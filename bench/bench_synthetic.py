"""Speed and class balance of the synthetic tile generator, and its example figure.

Usage::

    python bench/bench_synthetic.py                      # 200 tiles of 256², timing + frequencies
    python bench/bench_synthetic.py --figure docs/images/synthetic_examples.png

Prints the median wall and CPU time per tile (generation only, no PNG writing, OpenCV on one
thread as in ``prepare_synthetic``), the time to encode one tile as two PNGs, and the pixel
frequency of each class over all tiles. Judged against the target "well under 50 ms per 256²
tile on this 2-core CPU" (issue 2). On a shared machine the wall time follows the load average
(printed); the CPU time much less so.
"""

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from PIL import Image

from lossd.data.synthetic import INFO, generate_tile
from lossd.data.synthetic.prepare import tile_rng
from lossd.io.colours import colorize


def bench(num_tiles: int, size: int) -> None:
    cv2.setNumThreads(1)  # as prepare_synthetic does
    generate_tile(np.random.default_rng(0), size)  # warm-up
    counts = np.zeros(INFO.num_classes, np.int64)
    wall, cpu = [], []
    for index in range(num_tiles):
        rng = tile_rng(0, "train", index)
        start, start_cpu = time.perf_counter(), time.thread_time()
        image, mask = generate_tile(rng, size)
        wall.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
        counts += np.bincount(mask.ravel(), minlength=INFO.num_classes)
    start = time.perf_counter()
    for _ in range(20):
        cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        cv2.imencode(".png", mask)
    encode = (time.perf_counter() - start) / 20
    median = statistics.median(wall)
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
        f"numpy {np.__version__}, OpenCV {cv2.__version__} (1 thread)"
    )
    print(
        f"{num_tiles} tiles of {size}x{size}: wall median {1e3 * median:.1f} ms "
        f"(min {1e3 * min(wall):.1f}), CPU median {1e3 * statistics.median(cpu):.1f} ms per tile; "
        f"target 50 ms -> ratio {median / 0.050:.2f}; PNG encoding of image + mask "
        f"{1e3 * encode:.1f} ms"
    )
    print("class frequencies (% of pixels):")
    for name, count in zip(INFO.classes, counts, strict=True):
        print(f"  {name:20s} {100 * count / counts.sum():5.1f}")


def figure(path: Path, size: int, num: int = 6) -> None:
    fig = Figure(figsize=(2.0 * num, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, num)
    for index in range(num):
        image, mask = generate_tile(tile_rng(0, "train", index), size)
        axes[0, index].imshow(image)
        axes[1, index].imshow(colorize(mask, INFO.palette), interpolation="nearest")
        axes[0, index].set_title(f"tile{index:05d}", fontsize=8)
        for ax in axes[:, index]:
            ax.set_axis_off()
    handles = [
        Patch(facecolor=(r / 255, g / 255, b / 255), edgecolor="0.3", label=name)
        for name, (r, g, b) in zip(INFO.classes, INFO.palette, strict=True)
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=9)
    # Quantise to 256 colours so the docs image stays well under 500 KB: 248 adaptive ones
    # for the photos plus the exact label colours, black and white.
    fig.set_dpi(120)
    fig.canvas.draw()
    rgb = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3])
    adaptive = rgb.quantize(colors=248, method=Image.Quantize.MEDIANCUT).getpalette() or []
    exact = [c for colour in (*INFO.palette, (0, 0, 0), (255, 255, 255)) for c in colour]
    palette = Image.new("P", (1, 1))
    palette.putpalette(adaptive[: 248 * 3] + exact)
    rgb.quantize(palette=palette, dither=Image.Dither.NONE).save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--figure", type=Path, default=None)
    args = parser.parse_args()
    if args.figure is not None:
        figure(args.figure, args.size)
    else:
        bench(args.tiles, args.size)


if __name__ == "__main__":
    main()
