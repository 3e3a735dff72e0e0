"""Run records: the ``metrics.json`` every run writes, the source of truth for tables.

A record carries (docs/design.md, Conventions): dataset, model, loss, seed, the final metrics with
per-class lists, the full resolved config, git commit, package versions and wall time. Beside it,
``per_image.npz`` holds the per-image counts of its evaluations
(:class:`lossd.metrics.PerImageStats`, one group per record block: ``val`` and ``test`` for a
training run, ``eval`` for ``scripts/evaluate.py``); the record names the file, its groups and
its SHA-256, so a file that no longer belongs to its record is detected.
"""

import hashlib
import json
import math
import platform
import subprocess
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from lossd.errors import DataFormatError, DatasetNotFoundError
from lossd.io import atomic_path, read_arrays, write_arrays
from lossd.metrics import PerImageStats
from lossd.records.identity import RunIdentity

__all__ = [
    "PER_IMAGE_NAME",
    "RECORD_NAME",
    "SCHEMA_VERSION",
    "find_records",
    "git_commit",
    "package_versions",
    "portable_path",
    "provenance",
    "read_per_image",
    "read_record",
    "record_dir",
    "write_record",
]

RECORD_NAME = "metrics.json"
PER_IMAGE_NAME = "per_image.npz"
SCHEMA_VERSION = 1
REQUIRED_FIELDS = ("dataset", "model", "loss", "seed", "metrics", "status")
TRACKED_PACKAGES = (
    "lossd",
    "torch",
    "torchvision",
    "timm",
    "hydra-core",
    "albumentations",
    "numpy",
    "wandb",
)


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The commit of the working tree (suffixed ``-dirty`` if modified), or None outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def package_versions() -> dict[str, str]:
    """Versions of the packages that decide a run's numbers, plus Python's."""
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def portable_path(path: str | Path | None, base_dir: str | Path | None = None) -> str | None:
    """``path`` relative to ``base_dir`` (default: the current folder) when it lies inside it.

    Records keep the folders of a run this way (``outputs/<run_name>``), so that records
    committed to a repository hold no path of the machine that trained them and stay valid in
    any clone; a path outside ``base_dir`` stays absolute.
    """
    if path is None:
        return None
    resolved = Path(path).resolve()
    base = Path(base_dir if base_dir is not None else Path.cwd()).resolve()
    try:
        return str(resolved.relative_to(base))
    except ValueError:
        return str(resolved)


def provenance(
    started: float, device: object, world_size: int, output_dir: str | Path
) -> dict[str, Any]:
    """Where, with what and how long a run or an evaluation ran: the shared record fields.

    ``git_commit``, ``versions``, ``device``, ``world_size``, ``wall_time_s`` (since
    ``started``, a ``time.time()``), ``finished_at`` (UTC) and ``output_dir`` (portable).
    """
    return {
        "git_commit": git_commit(),
        "versions": package_versions(),
        "device": str(device),
        "world_size": world_size,
        "wall_time_s": round(time.time() - started, 2),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "output_dir": portable_path(output_dir),
    }


def record_dir(results_dir: str | Path, dataset: str, model: str, loss: str, seed: int) -> Path:
    """``<results_dir>/<dataset>/<model>/<loss>/seed<k>``: a cell's folder inside a study folder.

    The same layout as :meth:`lossd.records.RunIdentity.record_dir` for a run without a study.
    """
    return RunIdentity(None, dataset, model, loss, seed).record_dir(results_dir)


def _json_safe(value: Any) -> Any:
    """NaN/inf -> None so the file is strict JSON; tuples -> lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_per_image(folder: Path, groups: Mapping[str, PerImageStats]) -> dict[str, Any]:
    """``<folder>/per_image.npz`` (keys ``<group>.<field>``); the record's ``per_image`` entry."""
    arrays: dict[str, Any] = {}
    for group, stats in groups.items():
        arrays.update(stats.to_arrays(prefix=f"{group}."))
    path = write_arrays(folder / PER_IMAGE_NAME, arrays)
    return {
        "file": PER_IMAGE_NAME,
        "groups": {group: stats.num_images for group, stats in groups.items()},
        "sha256": _sha256(path),
    }


def write_record(
    path: str | Path,
    record: Mapping[str, Any],
    per_image: Mapping[str, PerImageStats | None] | None = None,
) -> Path:
    """Write ``record`` as JSON to ``path`` (a file, or a folder to hold ``metrics.json``).

    Written to a temporary file and renamed, so a reader never sees half a record. With
    ``per_image``, the groups that are not None go to ``per_image.npz`` in the same folder first
    (also atomically, byte-identical for equal counts) and the record's ``per_image`` entry
    names the file, its groups (image counts) and its SHA-256.

    Raises:
        DataFormatError: If a required field is missing.
    """
    missing = [f for f in REQUIRED_FIELDS if f not in record]
    if missing:
        raise DataFormatError(f"run record lacks required field(s) {missing}")
    path = Path(path)
    if path.suffix != ".json":
        path = path / RECORD_NAME
    record = dict(record)
    groups = {k: v for k, v in (per_image or {}).items() if v is not None}
    if groups:
        record["per_image"] = _write_per_image(path.parent, groups)
    payload = {"schema_version": SCHEMA_VERSION, **_json_safe(record)}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def read_record(path: str | Path) -> dict[str, Any]:
    """Read a run record; ``None`` metric values come back as NaN.

    Raises:
        DataFormatError: If the file is not JSON or lacks a required field.
    """
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataFormatError(f"run record '{path}' is not valid JSON: {err}") from err
    missing = [f for f in REQUIRED_FIELDS if f not in record]
    if missing:
        raise DataFormatError(f"run record '{path}' lacks required field(s) {missing}")

    def nan_for_none(value: Any) -> Any:
        if value is None:
            return math.nan
        if isinstance(value, list):
            return [nan_for_none(v) for v in value]
        return value

    record["metrics"] = {k: nan_for_none(v) for k, v in record["metrics"].items()}
    record["path"] = str(path)
    return dict(record)


def read_per_image(record: Mapping[str, Any]) -> dict[str, PerImageStats]:
    """The per-image counts written with a record (:func:`write_record`), by group.

    Args:
        record: A record from :func:`read_record` (its ``path`` locates the file).

    Raises:
        DatasetNotFoundError: If the record has no per-image counts (written before they
            existed, or with ``metrics.per_image=false``) or the file is missing.
        DataFormatError: If the file is not the one the record was written with.
    """
    entry = record.get("per_image")
    where = record.get("path", "the run record")
    if not entry:
        raise DatasetNotFoundError(
            f"run record '{where}' has no per-image counts (written by an older lossd or with "
            "metrics.per_image=false); evaluate its checkpoint with scripts/evaluate.py"
        )
    folder = Path(str(record.get("path", "."))).parent
    path = folder / str(entry["file"])
    if not path.is_file():
        raise DatasetNotFoundError(f"per-image counts '{path}' of run record '{where}' are missing")
    if _sha256(path) != entry["sha256"]:
        raise DataFormatError(
            f"per-image counts '{path}' do not belong to run record '{where}' (SHA-256 differs); "
            "a later run or evaluation wrote to the same folder"
        )
    arrays = read_arrays(path)
    groups = entry["groups"]
    return {group: PerImageStats.from_arrays(arrays, prefix=f"{group}.") for group in groups}


def find_records(root: str | Path) -> Iterator[Path]:
    """All ``metrics.json`` files below ``root``, sorted."""
    yield from sorted(Path(root).rglob(RECORD_NAME))
