"""A prepared split's ``meta.json``: reading it, its padding and whether its layout is current.

Light on purpose (JSON only): the Dataset reads these facts at start-up without importing the
preparation tools (rasterio, OpenCV workers).

- :func:`read_meta`: the split's ``meta.json`` written by :mod:`lossd.data.prepare`.
- :func:`stale_reason`: a split made by an older preparation whose patches this lossd no longer
  reads the same way (each dataset's :class:`DatasetInfo` says which versions of each split it
  reads); the message names the command that redoes it.
- :func:`source_boxes`: for every patch, the part of it that holds source pixels, from which
  the padding of GeoSeg's top/left padded tiles is known.
"""

import json
from pathlib import Path
from typing import Any

from lossd.data.info import DatasetInfo
from lossd.errors import DataFormatError

__all__ = ["META_FILE", "Box", "read_meta", "source_boxes", "stale_reason"]

META_FILE = "meta.json"

Box = tuple[int, int, int, int]
"""``(top, bottom, left, right)``: the rows and columns of a patch that hold source pixels."""


def read_meta(split_dir: Path) -> dict[str, Any] | None:
    """The split's ``meta.json``, or ``None`` if there is none.

    Raises:
        DataFormatError: If the file exists but is not a JSON object.
    """
    path = split_dir / META_FILE
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataFormatError(f"cannot read '{path}': {err}") from err
    if not isinstance(meta, dict):
        kind = "null" if meta is None else type(meta).__name__
        raise DataFormatError(f"'{path}' holds {kind}; expected a JSON object")
    return meta


def stale_reason(
    split_dir: Path, info: DatasetInfo, meta: dict[str, Any] | None = None
) -> str | None:
    """Why a prepared split of ``info``'s dataset must be prepared again, or None.

    A split is stale when its ``meta.json`` records a ``preparation_version`` (absent = 1)
    older than the oldest this lossd reads for that split (``info.readable_versions``).
    Folders without ``meta.json``, or of another dataset, are never stale.

    Args:
        split_dir: The split folder.
        info: The dataset the split should hold.
        meta: The split's ``meta.json`` if already read.

    Raises:
        DataFormatError: If ``meta.json`` exists but is not a JSON object.
    """
    meta = read_meta(split_dir) if meta is None else meta
    if meta is None or meta.get("dataset") != info.name:
        return None
    split = str(meta.get("split", split_dir.name))
    version = int(meta.get("preparation_version", 1))
    oldest = info.readable_versions.get(split, 1)
    if version >= oldest:
        return None
    src = meta.get("src", "RAW")
    return (
        f"'{split_dir}' holds {info.label} {split} patches of preparation version {version}; "
        f"this lossd reads version {oldest} or newer ({info.preparation_changes}), so results "
        f"would not be comparable. Delete '{split_dir}' and run: python scripts/prepare_data.py "
        f"{info.name} --src {src} --dst {split_dir.parent} --splits {split}"
    )


def source_boxes(meta: dict[str, Any]) -> dict[str, Box]:
    """Patch name -> the rows/columns of the patch that hold source pixels (the rest is padding).

    A patch at offset ``(row, col)`` of its source holding ``height × width`` source pixels has
    them at rows ``max(-row, 0) .. + height`` and columns ``max(-col, 0) .. + width``
    (:class:`lossd.data.prepare.PatchWindow`).
    """
    boxes: dict[str, Box] = {}
    for source in meta.get("sources", []):
        for patch in source.get("patches", []):
            top, left = max(-int(patch["row"]), 0), max(-int(patch["col"]), 0)
            boxes[str(patch["name"])] = (
                top,
                top + int(patch["height"]),
                left,
                left + int(patch["width"]),
            )
    return boxes
