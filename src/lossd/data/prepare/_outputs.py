"""Writing one source's output files: atomic, skipping finished files, undone on failure.

Every file goes to a temporary name in its folder and is renamed into place (``atomic_path``),
so an interrupted run never leaves a truncated file and a rerun can trust any file it finds.
If processing a source fails, the files written for it are removed again, so no source is left
half-prepared (issue 5: "no partial output is left behind by any failure").
"""

import hashlib
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from PIL import Image

from lossd.errors import DataFormatError
from lossd.io import atomic_path

__all__ = ["PatchOutputs", "SourceResult", "file_md5", "png_size"]

_CHUNK = 1 << 20


def file_md5(path: Path) -> str:
    """Hex md5 of a file, read in 1 MiB chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def png_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` from an image header, without decoding the pixels.

    Raises:
        DataFormatError: If the header cannot be read.
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, SyntaxError) as err:
        raise DataFormatError(f"cannot read image header of '{path}': {err}") from err
    return height, width


@dataclass
class SourceResult:
    """What processing one source produced, returned from a (possibly remote) worker.

    Attributes:
        record: The source's entry in ``meta.json`` (JSON-serialisable).
        written: Absolute paths of the files written by this run (for undo).
        skipped: Number of output files that already existed and were kept.
    """

    record: dict[str, Any]
    written: list[str] = field(default_factory=list)
    skipped: int = 0


class PatchOutputs:
    """The output files of one source below a split folder (context manager).

    Leaving the ``with`` block by an exception removes every file written inside it.

    Args:
        split_dir: The split folder (``<dst>/<split>``); file names are relative to it.
    """

    def __init__(self, split_dir: Path) -> None:
        self.split_dir = split_dir
        self.written: list[Path] = []
        self.skipped = 0

    def __enter__(self) -> "PatchOutputs":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.rollback()

    def exists(self, name: str) -> bool:
        """Whether output ``name`` (relative to the split folder) is already there."""
        return (self.split_dir / name).is_file()

    def all_exist(self, names: Iterable[str]) -> bool:
        """Whether every one of ``names`` is already there (a finished source)."""
        return all(self.exists(name) for name in names)

    def keep(self, names: Iterable[str]) -> None:
        """Count ``names`` as finished outputs kept from an earlier run."""
        self.skipped += sum(1 for _ in names)

    def write(self, name: str, writer: Callable[[Path], None]) -> None:
        """Call ``writer(path)`` (an atomic writer) unless the output already exists.

        The writer is only called when needed, so it may read its pixels lazily.
        """
        path = self.split_dir / name
        if path.is_file():
            self.skipped += 1
            return
        writer(path)
        self.written.append(path)

    def link(self, name: str, source: Path) -> None:
        """Hard-link ``source`` as output ``name`` (copy if linking is impossible)."""

        def _link(path: Path) -> None:
            with atomic_path(path) as tmp:
                tmp.unlink()
                try:
                    os.link(source, tmp)
                except OSError:  # other file system, or links not allowed: copy instead
                    shutil.copyfile(source, tmp)

        self.write(name, _link)

    def md5s(self, names: Iterable[str]) -> dict[str, str]:
        """``{name: md5}`` of finished outputs, for ``meta.json``."""
        return {name: file_md5(self.split_dir / name) for name in names}

    def rollback(self) -> None:
        """Remove the files written so far."""
        for path in reversed(self.written):
            path.unlink(missing_ok=True)
        self.written.clear()

    def result(self, record: dict[str, Any]) -> SourceResult:
        """Package ``record`` with the bookkeeping of this source."""
        return SourceResult(record, [str(p) for p in self.written], self.skipped)
