"""Submission archives for the test servers of the datasets whose test labels are withheld.

Each such dataset module declares its server's format (:class:`lossd.data.SubmissionFormat`,
``INFO.submission``): the archive entry of a test image and the picture stored for a prediction
(docs/datasets.md, "Evaluation / submission"): LoveDA (:mod:`lossd.data.loveda`) one
single-channel PNG of class indices per test image, flat; UAVid (:mod:`lossd.data.uavid`)
colour label PNGs mirroring the test tree. This module is the same for every dataset.

Predictions of prepared patches (``<stem>_<row>_<col>.png``, docs/design.md Conventions) are
stitched back into their source image at those offsets and cropped to the source size, which
comes from the split's ``meta.json`` (written by ``scripts/prepare_data.py``); a source that is
a single patch at (0, 0), as LoveDA images prepared whole are, needs no ``meta.json``. Where
patches overlap, the later patch (in row-major order) wins.

Not verified (docs/datasets.md §6): whether the servers want the files at the zip's root or in a
folder; lossd writes them at the root (``<id>.png``, ``seqN/Labels/<frame>.png``).
"""

import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from lossd.data.info import DatasetInfo, SubmissionFormat
from lossd.data.prepare import parse_patch_name, read_meta
from lossd.data.registry import DATASET_NAMES, get_info
from lossd.errors import DataFormatError, InvalidOptionError, OutputExistsError
from lossd.io import atomic_path

__all__ = [
    "SubmissionSummary",
    "SubmissionWriter",
    "source_key",
    "submission_datasets",
    "submission_entry",
    "write_submission",
]


def submission_datasets() -> tuple[str, ...]:
    """The datasets with a test server (:attr:`DatasetInfo.submission`), in table order."""
    return tuple(name for name in DATASET_NAMES if get_info(name).submission is not None)


def _format(dataset: str) -> tuple[DatasetInfo, SubmissionFormat]:
    info = get_info(dataset)
    if info.submission is None:
        raise InvalidOptionError(
            f"submission for {dataset!r}; expected one of {list(submission_datasets())} (the "
            "datasets whose test labels are withheld)"
        )
    return info, info.submission


def _patch(path: Path) -> tuple[str, int, int] | None:
    """``(source stem, row, col)`` if ``path`` is a prepared patch, else None."""
    try:
        return parse_patch_name(path.stem)
    except InvalidOptionError:
        return None


def source_key(dataset: str, path: str | Path) -> str:
    """Name of the source image of an input file inside the submission (without suffix).

    The dataset's :attr:`SubmissionFormat.entry` of the file's source: a raw test image, or
    the source of a prepared patch ``<source stem>_<row>_<col>`` (e.g. LoveDA ``4191``, UAVid
    ``seq21/Labels/000000``).

    Raises:
        DataFormatError: If the name does not follow the dataset's layout.
        InvalidOptionError: If ``dataset`` has no test server.
    """
    _, fmt = _format(dataset)
    path = Path(path)
    patch = _patch(path)
    return fmt.entry(path, patch[0] if patch else path.stem, patch is not None)


def submission_entry(dataset: str, indices: np.ndarray) -> np.ndarray:
    """The image stored for one prediction (:attr:`SubmissionFormat.encode` of the indices).

    Args:
        dataset: A dataset with a test server.
        indices: H×W class indices of the source image.

    Returns:
        The picture: e.g. LoveDA H×W uint8 0..6, UAVid H×W×3 uint8 RGB label colours.

    Raises:
        DataFormatError: If ``indices`` is not 2-D or holds a value outside the classes.
    """
    info, fmt = _format(dataset)
    array = np.asarray(indices)
    count = info.num_classes
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
        raise DataFormatError(
            f"prediction has shape {array.shape} and dtype {array.dtype}; expected H×W class "
            "indices"
        )
    if array.size and (int(array.min()) < 0 or int(array.max()) >= count):
        raise DataFormatError(
            f"prediction holds {int(array.min())}..{int(array.max())}; a {dataset} submission "
            f"needs class indices 0..{count - 1}"
        )
    return fmt.encode(array.astype(np.uint8))


@dataclass
class SubmissionSummary:
    """What a submission archive holds.

    Attributes:
        path: The zip file.
        dataset: The dataset.
        entries: Names of the files in the archive, in writing order.
        expected: Number of images in the official test split.
    """

    path: Path
    dataset: str
    entries: list[str] = field(default_factory=list)
    expected: int = 0

    @property
    def complete(self) -> bool:
        """Whether the archive has one file per official test image."""
        return len(self.entries) == self.expected

    def describe(self) -> str:
        """One line for the console."""
        note = (
            ""
            if self.complete
            else f"; the official test split has {self.expected}: the server may reject it"
        )
        return f"{self.dataset} submission '{self.path}': {len(self.entries)} image(s){note}"


class _Canvas:
    """One source image being assembled from patch predictions."""

    def __init__(self, key: str, size: tuple[int, int]) -> None:
        self.key = key
        self.array = np.zeros(size, np.uint8)
        self.filled = np.zeros(size, bool)

    def paste(self, indices: np.ndarray, row: int, col: int, source: Path) -> None:
        height, width = self.array.shape
        if row >= height or col >= width:
            raise DataFormatError(
                f"patch '{source}' starts at ({row}, {col}), outside its {height}×{width} "
                "source image (meta.json); was the split prepared with other options?"
            )
        rows, cols = min(indices.shape[0], height - row), min(indices.shape[1], width - col)
        self.array[row : row + rows, col : col + cols] = indices[:rows, :cols]
        self.filled[row : row + rows, col : col + cols] = True


class SubmissionWriter:
    """Writes a test server's submission zip, one prediction at a time (context manager).

    Predictions of whole source images are stored at once; predictions of prepared patches
    are pasted into their source image, which is stored when a patch of another source comes
    (so pass the patches of a source together, as sorted file names are). The archive is
    written to a temporary file and renamed on a clean exit; an error leaves no archive.

    Args:
        dataset: A dataset with a test server (:func:`submission_datasets`).
        path: The zip file to write.
        overwrite: Replace an existing file.

    Raises:
        InvalidOptionError: If ``dataset`` has no test server or ``path`` is not a ``.zip``.
        OutputExistsError: If ``path`` exists and ``overwrite`` is False.
    """

    def __init__(self, dataset: str, path: str | Path, overwrite: bool = False) -> None:
        _, fmt = _format(dataset)
        self.dataset = dataset
        self.path = Path(path)
        if self.path.suffix.lower() != ".zip":
            raise InvalidOptionError(
                f"submission file '{self.path}' must end in .zip (it is the archive to upload)"
            )
        if self.path.exists() and not overwrite:
            raise OutputExistsError(
                f"submission '{self.path}' exists; pass --overwrite to replace it"
            )
        self.summary = SubmissionSummary(self.path, dataset, expected=fmt.test_images)
        self._written: set[str] = set()
        self._canvas: _Canvas | None = None
        self._sizes: dict[Path, Mapping[str, tuple[int, int]]] = {}
        self._atomic = atomic_path(self.path)
        self._zip: zipfile.ZipFile | None = None

    def __enter__(self) -> "SubmissionWriter":
        tmp = self._atomic.__enter__()
        self._zip = zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        failure = error
        if failure is None:
            try:
                self._flush()
            except Exception as err:  # the last image is bad: no archive either
                failure = err
        if self._zip is not None:
            self._zip.close()
        if failure is None:
            self._atomic.__exit__(None, None, None)
            return
        self._atomic.__exit__(type(failure), failure, failure.__traceback__)  # removes the file
        if error is None:
            raise failure

    def _store(self, key: str, indices: np.ndarray, source: Path) -> None:
        name = f"{key}.png"
        if name in self._written:
            raise DataFormatError(
                f"'{source}' gives '{name}' again: two inputs (or non-adjacent patches) map to "
                "the same test image"
            )
        picture = submission_entry(self.dataset, indices)
        if picture.ndim == 3:
            picture = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
        ok, encoded = cv2.imencode(".png", picture)
        if not ok:
            raise DataFormatError(f"OpenCV could not encode the prediction of '{source}'")
        assert self._zip is not None, "use SubmissionWriter as a context manager"
        self._zip.writestr(name, encoded.tobytes())
        self._written.add(name)
        self.summary.entries.append(name)

    def _flush(self) -> None:
        if self._canvas is not None:
            canvas, self._canvas = self._canvas, None
            if not canvas.filled.all():
                missing = int((~canvas.filled).sum())
                raise DataFormatError(
                    f"the patches of '{canvas.key}' leave {missing} pixel(s) of its source "
                    "image uncovered; pass every patch of the split"
                )
            self._store(canvas.key, canvas.array, Path(canvas.key))

    def _source_size(self, path: Path, stem: str) -> tuple[int, int] | None:
        split_dir = path.parent.parent
        if split_dir not in self._sizes:
            meta = read_meta(split_dir)
            sizes = {}
            for source in (meta or {}).get("sources", []):
                sizes[str(source["stem"])] = (int(source["height"]), int(source["width"]))
            self._sizes[split_dir] = sizes
        return self._sizes[split_dir].get(stem)

    def add(self, path: str | Path, indices: np.ndarray) -> None:
        """Add the prediction of one input file (a whole test image or a prepared patch).

        Args:
            path: The input image the prediction was made from (its name gives the target).
            indices: Its H×W class indices.

        Raises:
            DataFormatError: If the name does not follow the dataset layout, a patch's source
                size is unknown, or the prediction is malformed.
        """
        path = Path(path)
        key = source_key(self.dataset, path)
        patch = _patch(path)
        if patch is None:
            self._flush()
            self._store(key, indices, path)
            return
        stem, row, col = patch
        if self._canvas is None or self._canvas.key != key:
            self._flush()
            size = self._source_size(path, stem)
            if size is None:
                if (row, col) != (0, 0):
                    raise DataFormatError(
                        f"'{path}' is a patch of '{stem}' but '{path.parent.parent}/meta.json' "
                        "does not give that source's size; predict the prepared split with its "
                        "meta.json, or predict the raw test images whole"
                    )
                size = (int(indices.shape[0]), int(indices.shape[1]))
            self._canvas = _Canvas(key, size)
        self._canvas.paste(np.asarray(indices), row, col, path)


def write_submission(
    dataset: str,
    predictions: Iterable[tuple[Path, np.ndarray]],
    path: str | Path,
    overwrite: bool = False,
) -> SubmissionSummary:
    """Write ``(input file, class indices)`` pairs into a submission zip.

    Args:
        dataset: A dataset with a test server.
        predictions: Pairs in input order (the patches of a source together).
        path: The zip to write.
        overwrite: Replace an existing file.

    Returns:
        What the archive holds.
    """
    with SubmissionWriter(dataset, path, overwrite) as writer:
        for source, indices in predictions:
            writer.add(source, indices)
    return writer.summary
