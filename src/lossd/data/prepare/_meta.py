"""``meta.json``: what a prepared split was made from and of, and the check against it.

One ``<dst>/<split>/meta.json`` per split records the tool and its version, the options, the
band order, the class table, every source (files, size, CRS and transform if georeferenced)
and every patch with the md5 of each of its files. It is written first with
``"complete": false`` and rewritten with ``"complete": true`` when the split is finished, so
an interrupted run is recognisable and a rerun with other options is refused.
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lossd.data.prepare._outputs import file_md5
from lossd.data.prepared import META_FILE, read_meta, stale_reason
from lossd.data.registry import DATASET_MODULES, get_info
from lossd.errors import DataFormatError, DatasetNotFoundError
from lossd.io import atomic_path

__all__ = [
    "COMPARED_KEYS",
    "FORMAT_VERSION",
    "META_FILE",
    "check_prepared",
    "read_meta",
    "write_meta",
]

FORMAT_VERSION = 1
COMPARED_KEYS = ("format", "dataset", "split", "options", "band_order", "folders")
"""Header keys that must match for a rerun to continue an existing split."""

_MAX_LISTED = 10


def write_meta(split_dir: Path, meta: dict[str, Any]) -> None:
    """Write ``meta.json`` atomically."""
    with atomic_path(split_dir / META_FILE) as tmp:
        tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def _check_split(split_dir: Path, meta: dict[str, Any]) -> tuple[int, list[str]]:
    problems: list[str] = []
    dataset = meta.get("dataset")
    stale = (
        stale_reason(split_dir, get_info(str(dataset)), meta)
        if dataset in DATASET_MODULES
        else None
    )
    if stale is not None:
        problems.append(stale)
    if not meta.get("complete"):
        problems.append("meta.json says the split is incomplete (interrupted run?); rerun prepare")
    expected: set[str] = set()
    patches = 0
    for source in meta.get("sources", []):
        for patch in source.get("patches", []):
            patches += 1
            for name, md5 in patch.get("files", {}).items():
                expected.add(name)
                path = split_dir / name
                if not path.is_file():
                    problems.append(f"missing {name}")
                elif file_md5(path) != md5:
                    problems.append(f"{name} differs from meta.json (md5; modified or corrupt)")
    for folder in meta.get("folders", {}):
        for path in sorted((split_dir / folder).glob("*")):
            name = f"{folder}/{path.name}"
            if name not in expected:
                problems.append(f"unexpected file {name} (not in meta.json)")
    if patches != meta.get("num_patches", patches):
        problems.append(f"meta.json lists {patches} patches but num_patches={meta['num_patches']}")
    return patches, problems


def check_prepared(root: str | Path, splits: Sequence[str] | None = None) -> dict[str, int]:
    """Verify prepared splits against their ``meta.json``.

    Checks that each split is complete, that every listed file exists with the recorded md5,
    and that the folders hold no other files (such as temporary files of a killed run).

    Args:
        root: The prepared folder (``--dst`` of the preparation).
        splits: Splits to check; default every sub-folder that has a ``meta.json``.

    Returns:
        ``{split: number of patches}``.

    Raises:
        DatasetNotFoundError: If ``root`` or a requested split's ``meta.json`` is missing.
        DataFormatError: If anything does not match (the message lists the problems).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(f"prepared folder '{root}' does not exist")
    if splits is None:
        splits = sorted(p.parent.name for p in root.glob(f"*/{META_FILE}"))
        if not splits:
            raise DatasetNotFoundError(
                f"no <split>/{META_FILE} under '{root}'; is it a folder made by "
                "scripts/prepare_data.py?"
            )
    counts: dict[str, int] = {}
    problems: list[str] = []
    for split in splits:
        meta = read_meta(root / split)
        if meta is None:
            raise DatasetNotFoundError(
                f"'{root / split / META_FILE}' not found; prepare the split first "
                f"(scripts/prepare_data.py ... --dst {root})"
            )
        counts[split], found = _check_split(root / split, meta)
        problems += [f"{split}/{problem}" for problem in found]
    if problems:
        listed = "; ".join(problems[:_MAX_LISTED])
        more = f" (and {len(problems) - _MAX_LISTED} more)" if len(problems) > _MAX_LISTED else ""
        raise DataFormatError(
            f"'{root}' does not match its meta.json: {listed}{more}. Delete the files named, "
            "if any, and rerun the preparation (it rewrites missing files), or prepare the "
            "split anew"
        )
    return counts
