"""Run records: the ``metrics.json`` every run writes, the source of truth for tables.

A record carries (design.md, Conventions): dataset, model, loss, seed, the final metrics with
per-class lists, the full resolved config, git commit, package versions and wall time.
"""

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

from lossd.errors import DataFormatError
from lossd.io import atomic_path
from lossd.records.identity import RunIdentity

__all__ = [
    "RECORD_NAME",
    "SCHEMA_VERSION",
    "find_records",
    "git_commit",
    "package_versions",
    "portable_path",
    "provenance",
    "read_record",
    "record_dir",
    "write_record",
]

RECORD_NAME = "metrics.json"
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


def write_record(path: str | Path, record: Mapping[str, Any]) -> Path:
    """Write ``record`` as JSON to ``path`` (a file, or a folder to hold ``metrics.json``).

    Written to a temporary file and renamed, so a reader never sees half a record.

    Raises:
        DataFormatError: If a required field is missing.
    """
    missing = [f for f in REQUIRED_FIELDS if f not in record]
    if missing:
        raise DataFormatError(f"run record lacks required field(s) {missing}")
    path = Path(path)
    if path.suffix != ".json":
        path = path / RECORD_NAME
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


def find_records(root: str | Path) -> Iterator[Path]:
    """All ``metrics.json`` files below ``root``, sorted."""
    yield from sorted(Path(root).rglob(RECORD_NAME))
