"""Atomic file writes: a temporary file in the target folder, renamed into place on success.

An interrupted process never leaves a truncated checkpoint, record, patch or table behind
(docs/design.md, Rules of the house).
"""

import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["atomic_path", "read_arrays", "write_arrays", "write_json"]

_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | Path, data: Any, indent: int | None = 2) -> Path:
    """Write ``data`` as UTF-8 JSON (keys in insertion order, trailing newline), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=indent) + "\n", encoding="utf-8")
    return path


def write_arrays(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``arrays`` as a compressed ``.npz`` (``numpy.load`` reads it), atomically.

    Unlike ``numpy.savez_compressed``, entries carry a fixed time stamp, so equal arrays give
    byte-identical files (committed evidence regenerates exactly). Object arrays are refused.

    Raises:
        ValueError: If an array has dtype object.
    """
    path = Path(path)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for key, value in arrays.items():
            array = np.asarray(value)
            if array.dtype == object:
                raise ValueError(f"array '{key}' has dtype object; expected numbers or strings")
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as entry:
                np.lib.format.write_array(entry, array, allow_pickle=False)
    return path


def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` file (no pickled objects), loaded into memory."""
    with np.load(Path(path), allow_pickle=False) as data:
        return {key: data[key] for key in data.files}
