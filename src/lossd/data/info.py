"""The description every dataset module exports: classes, palette, evaluation subset.

A dataset module (``lossd/data/<name>.py``) owns every fact of its dataset in one
:class:`DatasetInfo`; tables keyed by dataset name elsewhere are derived from these (the
registry, :mod:`lossd.data.registry`): the preparation tool and its options, the test-server
format (:class:`SubmissionFormat`), the protocol facts.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lossd.conventions import IGNORE_INDEX

__all__ = ["IGNORE_INDEX", "DatasetInfo", "SubmissionFormat"]


@dataclass(frozen=True)
class SubmissionFormat:
    """What a test server takes from a dataset whose test labels are withheld.

    Args:
        server: The scoring server, for messages (e.g. ``Codabench competition 13030``).
        test_images: Images in the official test split (an archive with fewer is incomplete).
        entry: ``(input file, source stem, is a prepared patch) -> archive entry name`` without
            the ``.png`` suffix; raises :class:`lossd.errors.DataFormatError` for a file that
            does not follow the dataset's layout.
        encode: H×W class indices -> the stored picture (indices, or label colours).
    """

    server: str
    test_images: int
    entry: Callable[[Path, str, bool], str]
    encode: Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about one dataset, kept once in ``lossd/data/<name>.py``.

    Args:
        name: Short name, equal to the config option (``dataset=<name>``).
        classes: Class names in index order (index = value in prepared masks).
        palette: One RGB colour per class, in the same order.
        eval_classes: Indices averaged by the mean metrics (mIoU, mF1, mBIoU) of the
            dataset's evaluation protocol.
        ignore_index: Mask value that is ignored by losses and metrics.
        image_suffix: File extension of prepared images.
        mask_suffix: File extension of prepared masks.
        citation: Paper to cite for the dataset.
        label: Display name in tables and figures (e.g. ``LoveDA``); default: ``name``.
        headline_metric: The metric the dataset's papers report first (the main tables' column).
        prepare_hint: What to run when the prepared folder is missing; ``{name}`` and
            ``{root}`` are filled in by :meth:`how_to_prepare`.
        preparation_version: Version of the prepared layout this lossd writes (``meta.json``
            ``preparation_version``).
        readable_versions: Split -> the oldest preparation version whose patches of that split
            this lossd reads unchanged (absent: 1); older splits are refused.
        preparation_changes: What the versions changed, for the message that refuses a split.
        original_padding_label: The class the original preparation gives the padding of its
            patches (GeoSeg's ISPRS tiles: 0, impervious surfaces), applied under
            ``protocol=original``; None: the padding is ignored under every protocol.
        preparation: Module of the preparation tool from the official download
            (``lossd.data.prepare.<name>``: ``prepare``, ``SPLITS``, ``DEFAULT_PATCH_SIZE``,
            optional ``add_arguments``/``cli_options``), None if there is none.
        submission: The test server's format where the test labels are withheld, else None.
    """

    name: str
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    eval_classes: tuple[int, ...] = field(default=())
    ignore_index: int = IGNORE_INDEX
    image_suffix: str = ".png"
    mask_suffix: str = ".png"
    citation: str = ""
    prepare_hint: str = "run python scripts/prepare_data.py {name} --src RAW --dst {root}"
    label: str = ""
    headline_metric: str = "mIoU"
    preparation_version: int = 1
    readable_versions: Mapping[str, int] = field(default_factory=dict, hash=False)
    preparation_changes: str = ""
    original_padding_label: int | None = None
    preparation: str | None = None
    submission: SubmissionFormat | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if len(self.palette) != len(self.classes):
            raise ValueError(
                f"{self.name}: {len(self.classes)} classes but {len(self.palette)} palette colours"
            )
        if not self.label:
            object.__setattr__(self, "label", self.name)
        if not self.eval_classes:
            object.__setattr__(self, "eval_classes", tuple(range(len(self.classes))))
        bad = [c for c in self.eval_classes if not 0 <= c < len(self.classes)]
        if bad:
            raise ValueError(f"{self.name}: eval_classes {bad} outside 0..{len(self.classes) - 1}")

    def how_to_prepare(self, root: object) -> str:
        """The hint for creating the prepared folder ``root`` of this dataset."""
        return self.prepare_hint.format(name=self.name, root=root)

    @property
    def num_classes(self) -> int:
        """Number of classes (the ignore value is not a class)."""
        return len(self.classes)
