"""Run records and table generation."""

from lossd.results.records import (
    RECORD_NAME,
    find_records,
    git_commit,
    package_versions,
    read_record,
    record_dir,
    write_record,
)

__all__ = [
    "RECORD_NAME",
    "find_records",
    "git_commit",
    "package_versions",
    "read_record",
    "record_dir",
    "write_record",
]
