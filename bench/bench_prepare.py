"""Throughput and peak memory of the dataset preparation, 1 vs 2 workers (issue 5).

Synthetic full-size inputs in the official formats: Potsdam tiles of 6000×6000 px (RGB GeoTIFF
+ colour label, one tile written once and linked under several tile ids) and UAVid frames of
2160×3840 and 2160×4096 px (PNG). Each configuration runs in a fresh Python process that
samples the resident (RSS) and unique (USS) memory of itself and its worker processes every
50 ms. Targets: peak memory below 1.5 GiB per worker; 2 workers at least 1.7× faster than 1.

    python bench/bench_prepare.py [--tiles 4] [--frames 4] [--workers 1 2]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import rasterio
from affine import Affine
from PIL import Image

from lossd.data import potsdam, uavid

TILE = 6000
FRAME_WIDTHS = (3840, 4096)
FRAME_HEIGHT = 2160
TILE_IDS = ("2_11", "2_12", "3_10", "3_11", "3_12", "4_10", "4_11", "4_12")


def scene(rng, height, width, palette):
    """Blocky class map (objects of 40-160 px) with palette colours + noise as the image."""
    block = 40
    blocks = rng.integers(0, len(palette), (height // block + 1, width // block + 1))
    classes = np.repeat(np.repeat(blocks, block, 0), block, 1)[:height, :width].astype(np.uint8)
    colours = np.asarray(palette, dtype=np.uint8)
    label = colours[classes]
    noise = rng.integers(0, 48, (height, width, 1), dtype=np.uint8)
    image = (label // 2 + noise).astype(np.uint8)
    return image, label


def write_inputs(root: Path, tiles: int, frames: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    image, label = scene(rng, TILE, TILE, potsdam.PALETTE)
    transform = Affine(0.05, 0.0, 366_000.0, 0.0, -0.05, 5_808_000.0)
    base = root / "potsdam_base"
    base.mkdir(parents=True)
    for name, array, georef in (("image.tif", image, True), ("label.tif", label, False)):
        profile = {"driver": "GTiff", "height": TILE, "width": TILE, "count": 3, "dtype": "uint8"}
        if georef:
            profile |= {"crs": "EPSG:32633", "transform": transform}
        with rasterio.open(base / name, "w", **profile) as dst:
            dst.write(np.moveaxis(array, -1, 0))
    raw = root / "potsdam"
    raw.mkdir()
    for tile in TILE_IDS[:tiles]:
        os.symlink(base / "image.tif", raw / potsdam.image_file(tile, "RGB"))
        os.symlink(base / "label.tif", raw / potsdam.label_file(tile))
    del image, label
    megapixels = {"potsdam": tiles * TILE * TILE / 1e6, "uavid": 0.0}
    for index in range(frames):
        width = FRAME_WIDTHS[index % 2]
        image, label = scene(rng, FRAME_HEIGHT, width, uavid.PALETTE)
        seq = root / "uavid" / "uavid_train" / f"seq{index + 1}"
        (seq / "Images").mkdir(parents=True)
        (seq / "Labels").mkdir()
        Image.fromarray(image).save(seq / "Images" / "000000.png", compress_level=1)
        Image.fromarray(label).save(seq / "Labels" / "000000.png", compress_level=1)
        megapixels["uavid"] += FRAME_HEIGHT * width / 1e6
    return megapixels


def child(dataset: str, src: str, dst: str, workers: int, tiles: int) -> None:
    """Run one preparation and print its time and peak memory as JSON."""
    import multiprocessing

    from lossd.data.prepare.potsdam import prepare_potsdam
    from lossd.data.prepare.uavid import prepare_uavid

    me = psutil.Process()
    import_rss = me.memory_info().rss  # after importing lossd (its data package pulls in torch)
    peaks: dict[int, tuple[int, int]] = {}
    cpu: dict[int, float] = {}  # last seen user+system seconds of each process
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for proc in [me, *me.children(recursive=True)]:
                try:
                    info = proc.memory_full_info()
                    times = proc.cpu_times()
                except psutil.Error:
                    continue
                cpu[proc.pid] = times.user + times.system
                rss, uss = peaks.get(proc.pid, (0, 0))
                peaks[proc.pid] = (max(rss, info.rss), max(uss, info.uss))
            time.sleep(0.05)

    start_up = 0.0
    if workers > 1:  # start the worker server (it imports lossd once) apart from the timing
        from concurrent.futures import ProcessPoolExecutor

        t0 = time.perf_counter()
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["lossd.data.prepare"])
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            pool.submit(int).result()
        start_up = time.perf_counter() - t0
    cpu_before = me.cpu_times().user + me.cpu_times().system
    cpu_base = {}  # the worker server's import is not part of the run
    for proc in me.children(recursive=True):
        times = proc.cpu_times()
        cpu_base[proc.pid] = times.user + times.system
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    if dataset == "potsdam":
        table = {"train": list(TILE_IDS[:tiles])}
        prepare_potsdam(src, dst, splits=["train"], tiles=table, workers=workers, progress=False)
    else:
        prepare_uavid(src, dst, splits=["train"], workers=workers, progress=False)
    seconds = time.perf_counter() - t0
    stop.set()
    thread.join()
    main_cpu = me.cpu_times().user + me.cpu_times().system - cpu_before
    worker_cpu = [
        c - cpu_base.get(pid, 0.0)
        for pid, c in cpu.items()
        if pid != me.pid and pid not in cpu_base
    ]
    main_rss, main_uss = peaks.pop(me.pid)
    # workers are the processes started during the run (not the fork server or resource tracker)
    workers_rss = sorted((v for pid, v in peaks.items() if pid not in cpu_base), reverse=True)
    print(json.dumps({
        "seconds": seconds,
        "start_up": start_up,
        "import_rss": import_rss,
        "cpu": main_cpu + sum(worker_cpu),
        "main_rss": main_rss,
        "main_uss": main_uss,
        "worker_rss": max((r for r, _ in workers_rss), default=0),
        "worker_uss": max((u for _, u in workers_rss), default=0),
    }))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiles", type=int, default=4, help="Potsdam tiles (6000²)")
    parser.add_argument("--frames", type=int, default=4, help="UAVid frames (2160×3840/4096)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        dataset, src, dst, workers, tiles = args.child
        child(dataset, src, dst, int(workers), int(tiles))
        return
    gib = 1 << 30
    print(f"cpus={os.cpu_count()} load={os.getloadavg()} python={sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="bench_prepare_") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        megapixels = write_inputs(root, args.tiles, args.frames)
        print(f"inputs: {megapixels} MP written in {time.perf_counter() - t0:.1f} s")
        print(
            "dataset  workers  seconds  MP/s   speed-up  start-up  cpu-s  "
            "peak RSS / USS per worker (GiB)  RSS after import"
        )
        for dataset in ("potsdam", "uavid"):
            base = None
            for workers in args.workers:
                dst = root / f"out_{dataset}_{workers}"
                command = [sys.executable, __file__, "--child", dataset, str(root / dataset),
                           str(dst), str(workers), str(args.tiles)]  # fmt: skip
                result = subprocess.run(command, check=True, capture_output=True, text=True)
                run = json.loads(result.stdout.strip().splitlines()[-1])
                base = base or run["seconds"]
                rss = run["main_rss"] if workers == 1 else run["worker_rss"]
                uss = run["main_uss"] if workers == 1 else run["worker_uss"]
                print(
                    f"{dataset:8s} {workers:7d} {run['seconds']:8.1f} "
                    f"{megapixels[dataset] / run['seconds']:6.1f} {base / run['seconds']:9.2f}x "
                    f"{run['start_up']:8.1f}  {run['cpu']:5.1f}  {rss / gib:.2f} / {uss / gib:.2f}"
                    f"{run['import_rss'] / gib:28.2f}"
                )
                subprocess.run(["rm", "-rf", str(dst)], check=True)
    print("start-up: one-off start of the worker server (imports lossd), not in 'seconds';")
    print("cpu-s: CPU seconds of the run and its workers (sampled: a lower bound for workers)")
    print("targets: peak memory < 1.5 GiB per worker; 2 workers >= 1.7x faster than 1")


if __name__ == "__main__":
    main()
