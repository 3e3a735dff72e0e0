"""Writing the dataset folder: splits of tiles, ``meta.json``, idempotent regeneration.

The tiles are written into a temporary sibling folder that is renamed into place at the end;
``meta.json`` is read with :func:`lossd.data.prepare.read_meta` and written with
:func:`lossd.io.write_json`.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from lossd.data.prepare import META_FILE, read_meta
from lossd.data.synthetic._tile import MIN_TILE_SIZE, check_int, generate_tile
from lossd.errors import DataFormatError, OutputExistsError
from lossd.io import write_image, write_json, write_mask

__all__ = ["GENERATOR_VERSION", "SPLITS", "prepare_synthetic", "tile_rng"]


GENERATOR_VERSION = 2
"""Bumped whenever :func:`generate_tile` changes its output; prepared data is then rebuilt."""

SPLITS: tuple[str, ...] = ("train", "val", "test")
"""Split folder names, in the order used to derive each tile's random stream."""


_GENERATOR_ID = "lossd.data.synthetic"


def tile_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Independent random stream of one tile, fixed by (seed, split, index) only.

    ``generate_tile(tile_rng(seed, split, i), tile_size)`` is tile ``i`` of ``split``, as
    :func:`prepare_synthetic` writes it.
    """
    return np.random.default_rng([seed, SPLITS.index(split), index])


def _tile_stem(index: int) -> str:
    return f"tile{index:05d}_0_0"


def _read_meta(root: Path) -> dict[str, Any] | None:
    """The parsed meta.json of a synthetic dataset at ``root``, or None if there is none."""
    try:
        meta = read_meta(root)
    except DataFormatError:  # not JSON, or not an object
        return None
    if meta is None or meta.get("generator") != _GENERATOR_ID:
        return None
    return meta


def _write_split(
    folder: Path, split: str, count: int, seed: int, tile_size: int, bar: "tqdm[Any]"
) -> None:
    (folder / split / "images").mkdir(parents=True)
    (folder / split / "masks").mkdir(parents=True)
    for index in range(count):
        image, mask = generate_tile(tile_rng(seed, split, index), tile_size)
        stem = _tile_stem(index)
        write_image(folder / split / "images" / f"{stem}.png", image)
        write_mask(folder / split / "masks" / f"{stem}.png", mask)
        bar.update(1)


@contextmanager
def _single_threaded_opencv() -> Iterator[None]:
    """Run OpenCV on one thread inside the block, then restore the previous setting.

    Its thread pool only slows small tiles down, badly so on a busy machine.
    """
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def _move_into_place(new: Path, root: Path) -> None:
    """Rename ``new`` to ``root``; an older dataset there is moved aside first, then deleted."""
    old = None
    if root.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
        os.replace(root, old / root.name)
    os.replace(new, root)
    if old is not None:
        shutil.rmtree(old)


def prepare_synthetic(
    root: str | Path,
    tile_size: int = 256,
    num_train: int = 256,
    num_val: int = 64,
    num_test: int = 32,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Generate the synthetic dataset at ``root`` unless the same one is already there.

    The tiles are written into a temporary sibling folder and renamed into place at the end,
    so ``root`` always holds either a complete dataset (the old or the new one) or nothing.
    Tile ``i`` of a split depends only on ``(seed, split, i)`` and ``tile_size``: changing a
    count adds or drops tiles but does not change the others. Call it from one process only
    (rank 0 under DDP, then a barrier).

    Args:
        root: Dataset folder (created; its parent must be writable).
        tile_size: Tile side in pixels (>= 64).
        num_train: Number of training tiles (>= 1).
        num_val: Number of validation tiles (>= 0).
        num_test: Number of test tiles (>= 0).
        seed: Non-negative base seed.
        progress: Show a tqdm progress bar.

    Returns:
        ``root`` as a Path.

    Raises:
        InvalidOptionError: If a size, count or the seed is out of range.
        OutputExistsError: If ``root`` exists, is not empty and is not a synthetic dataset.
    """
    root = Path(root)
    params = {
        "tile_size": check_int(tile_size, "tile_size", MIN_TILE_SIZE),
        "num_train": check_int(num_train, "num_train", 1),
        "num_val": check_int(num_val, "num_val", 0),
        "num_test": check_int(num_test, "num_test", 0),
        "seed": check_int(seed, "seed", 0),
    }
    meta = {"generator": _GENERATOR_ID, "generator_version": GENERATOR_VERSION, **params}
    existing = _read_meta(root)
    if existing == meta:
        return root
    if existing is None and (root.is_file() or (root.is_dir() and any(root.iterdir()))):
        raise OutputExistsError(
            f"dataset.root='{root}' exists and is not a synthetic dataset (no valid "
            f"{META_FILE}); choose an empty or new folder, or delete it"
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    counts = {"train": params["num_train"], "val": params["num_val"], "test": params["num_test"]}
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        with (
            _single_threaded_opencv(),
            tqdm(
                total=sum(counts.values()),
                desc=f"synthetic -> {root}",
                unit="tile",
                disable=not progress,
            ) as bar,
        ):
            for split in SPLITS:
                _write_split(tmp, split, counts[split], params["seed"], params["tile_size"], bar)
        write_json(tmp / META_FILE, dict(sorted(meta.items())))  # keys sorted, as ever
        _move_into_place(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return root
