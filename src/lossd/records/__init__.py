"""Run records and run identity: the files every run writes and the names they live under.

The layer between the leaf packages (data, models, losses, metrics) and the engine: the engine
writes records with it and :mod:`lossd.results` reads them, and it imports neither.
"""

from lossd.records.identity import RunIdentity, run_name
from lossd.records.report import format_metrics_table
from lossd.records.store import (
    PER_IMAGE_NAME,
    RECORD_NAME,
    SCHEMA_VERSION,
    find_records,
    git_commit,
    package_versions,
    portable_path,
    provenance,
    read_per_image,
    read_record,
    record_dir,
    write_record,
)

__all__ = [
    "PER_IMAGE_NAME",
    "RECORD_NAME",
    "SCHEMA_VERSION",
    "RunIdentity",
    "find_records",
    "format_metrics_table",
    "git_commit",
    "package_versions",
    "portable_path",
    "provenance",
    "read_per_image",
    "read_record",
    "record_dir",
    "run_name",
    "write_record",
]
