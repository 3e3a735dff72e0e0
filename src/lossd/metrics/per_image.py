"""Per-image counts of an evaluation: what paired statistics and error profiles are made of.

For every evaluated image, per class: true positives, false positives and false negatives of the
confusion matrix, and the Boundary IoU band intersection and union (Cheng et al., CVPR 2021;
:mod:`lossd.metrics.boundary`); with diagnostics also the over/under-segmentation histograms and
the signed distance profile (:mod:`lossd.metrics.diagnostics`). Every score of
:class:`~lossd.metrics.SegmentationMetrics` is a function of the *sums* of these counts, so a
subset or a resample of the images is scored exactly as the whole set is
(:func:`scores_from_counts`): by recomputing from summed counts, never by averaging per-image
scores.
"""

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lossd.errors import DataFormatError

__all__ = ["COUNT_FIELDS", "DIAGNOSTIC_FIELDS", "PerImageStats", "scores_from_counts"]

COUNT_FIELDS: tuple[str, ...] = ("tp", "fp", "fn", "band_intersection", "band_union")
"""Per-image ``[N, C]`` counts every evaluation keeps."""

DIAGNOSTIC_FIELDS: tuple[str, ...] = (
    "fp_distance_hist",
    "fn_depth_hist",
    "profile_pixels",
    "profile_errors",
)
"""Per-image ``[N, C, bins]`` counts kept with ``metrics.diagnostics=true``."""


def _nan_mean(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis skipping NaN; NaN where every entry is NaN (no warning)."""
    finite = ~np.isnan(values)
    count = finite.sum(axis=-1)
    total = np.where(finite, values, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1), np.nan)


def scores_from_counts(
    counts: Mapping[str, np.ndarray], eval_classes: Sequence[int]
) -> dict[str, np.ndarray]:
    """``mIoU``, ``mF1``, ``mBIoU`` and ``OA`` from summed counts, over any leading axes.

    The formulas of :func:`lossd.metrics.scores_from_confusion` and
    :meth:`~lossd.metrics.SegmentationMetrics.compute`: IoU = TP / (TP + FP + FN),
    F1 = 2 TP / (2 TP + FP + FN), both NaN for a class with TP + FP + FN = 0; BIoU = I / U, NaN
    where U = 0; means over ``eval_classes`` skipping NaN; OA = ΣTP / (ΣTP + ΣFP) over all
    classes (every valid wrong pixel is one false positive).

    Args:
        counts: ``tp``, ``fp``, ``fn``, ``band_intersection``, ``band_union``: arrays
            ``[..., C]`` (e.g. ``[C]`` for a total, ``[B, S, C]`` for resamples).
        eval_classes: Classes the means run over.

    Returns:
        Arrays of the leading shape, values in 0..1.
    """
    classes = list(eval_classes)
    tp, fp, fn = (np.asarray(counts[k], dtype=np.float64) for k in ("tp", "fp", "fn"))
    inter = np.asarray(counts["band_intersection"], dtype=np.float64)
    union = np.asarray(counts["band_union"], dtype=np.float64)
    support = tp + fp + fn
    iou = _ratio(tp, support)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    biou = _ratio(inter, union)
    correct, valid = tp.sum(axis=-1), (tp + fp).sum(axis=-1)
    return {
        "mIoU": _nan_mean(iou[..., classes]),
        "mF1": _nan_mean(f1[..., classes]),
        "mBIoU": _nan_mean(biou[..., classes]),
        "OA": _ratio(correct, valid),
    }


def _as_counts(value: Any, name: str) -> np.ndarray:
    array = value.detach().cpu().numpy() if isinstance(value, Tensor) else np.asarray(value)
    if not np.issubdtype(array.dtype, np.integer):
        raise DataFormatError(
            f"per-image field '{name}' must hold integer counts, got {array.dtype}"
        )
    return array.astype(np.int64, copy=False)


@dataclass(frozen=True)
class PerImageStats:
    """Counts of every evaluated image, one row per image (module docstring).

    Attributes:
        names: Image names (file stems), one per row.
        tp, fp, fn: ``[N, C]`` confusion counts per image and class.
        band_intersection, band_union: ``[N, C]`` Boundary IoU counts per image and class.
        fp_distance_hist, fn_depth_hist: ``[N, C, 6]`` error histograms
            (:data:`lossd.metrics.DIAGNOSTIC_BINS`), or None without diagnostics.
        profile_pixels, profile_errors: ``[N, C, 64]`` pixels and errors by signed distance
            (:data:`lossd.metrics.PROFILE_DISTANCES`), or None without diagnostics.
    """

    names: tuple[str, ...]
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    band_intersection: np.ndarray
    band_union: np.ndarray
    fp_distance_hist: np.ndarray | None = None
    fn_depth_hist: np.ndarray | None = None
    profile_pixels: np.ndarray | None = None
    profile_errors: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.names)
        shape = np.shape(self.tp)
        if len(shape) != 2 or shape[0] != n:
            raise DataFormatError(f"per-image 'tp' has shape {shape}, expected [{n}, C]")
        for name in COUNT_FIELDS:
            got = np.shape(getattr(self, name))
            if got != shape:
                raise DataFormatError(f"per-image '{name}' has shape {got}, expected {shape}")
        present = [getattr(self, name) is not None for name in DIAGNOSTIC_FIELDS]
        if any(present) and not all(present):
            raise DataFormatError(f"per-image diagnostics need all of {list(DIAGNOSTIC_FIELDS)}")
        for name in DIAGNOSTIC_FIELDS:
            value = getattr(self, name)
            if value is not None and np.shape(value)[:2] != shape:
                raise DataFormatError(
                    f"per-image '{name}' has shape {np.shape(value)}, expected {shape} + [bins]"
                )

    @property
    def num_images(self) -> int:
        """Number of rows N."""
        return len(self.names)

    @property
    def num_classes(self) -> int:
        """Number of classes C."""
        return int(np.shape(self.tp)[1])

    @property
    def has_diagnostics(self) -> bool:
        """Whether the histograms and the signed distance profile are present."""
        return self.profile_pixels is not None

    @classmethod
    def from_batch(
        cls,
        names: Sequence[str],
        joint: Tensor,
        histograms: Tensor | None = None,
        profile: Tensor | None = None,
    ) -> "PerImageStats":
        """Rows of one batch from per-image joint counts and diagnostics.

        Args:
            names: One name per image.
            joint: ``[B, 4, C+1, C+1]`` (:func:`lossd.metrics.joint_counts` with ``per_image``).
            histograms: ``[B, 2, C, 6]`` or None (:func:`lossd.metrics.error_diagnostics`).
            profile: ``[B, 2, C, 64]`` or None.
        """
        from lossd.metrics.boundary import band_counts

        joint = joint.detach().cpu()
        c = joint.shape[-1] - 1
        confusion = joint.sum(dim=1)[:, :c, :c]
        tp = confusion.diagonal(dim1=-2, dim2=-1)
        inter, target_band, pred_band = band_counts(joint)
        diagnostics: dict[str, Any] = {}
        if histograms is not None and profile is not None:
            diagnostics = {
                "fp_distance_hist": _as_counts(histograms[:, 0], "fp_distance_hist"),
                "fn_depth_hist": _as_counts(histograms[:, 1], "fn_depth_hist"),
                "profile_pixels": _as_counts(profile[:, 0], "profile_pixels"),
                "profile_errors": _as_counts(profile[:, 1], "profile_errors"),
            }
        return cls(
            names=tuple(str(n) for n in names),
            tp=_as_counts(tp, "tp"),
            fp=_as_counts(confusion.sum(dim=1) - tp, "fp"),
            fn=_as_counts(confusion.sum(dim=2) - tp, "fn"),
            band_intersection=_as_counts(inter, "band_intersection"),
            band_union=_as_counts(target_band + pred_band - inter, "band_union"),
            **diagnostics,
        )

    @classmethod
    def concat(cls, parts: Sequence["PerImageStats"]) -> "PerImageStats":
        """All rows of ``parts`` in order (at least one part)."""
        if not parts:
            raise DataFormatError("no per-image rows to concatenate")
        values: dict[str, Any] = {"names": tuple(n for p in parts for n in p.names)}
        for name in COUNT_FIELDS + DIAGNOSTIC_FIELDS:
            arrays = [getattr(p, name) for p in parts]
            values[name] = None if arrays[0] is None else np.concatenate(arrays)
        return cls(**values)

    def take(self, indices: Sequence[int] | np.ndarray) -> "PerImageStats":
        """The rows at ``indices`` (in that order)."""
        index = np.asarray(indices, dtype=np.int64)
        values: dict[str, Any] = {"names": tuple(self.names[i] for i in index.tolist())}
        for name in COUNT_FIELDS + DIAGNOSTIC_FIELDS:
            array = getattr(self, name)
            values[name] = None if array is None else array[index]
        return type(self)(**values)

    def sorted_by_name(self) -> "PerImageStats":
        """Rows ordered by name, whatever the order of evaluation (processes, workers).

        Raises:
            DataFormatError: If two rows share a name.
        """
        order = sorted(range(self.num_images), key=lambda i: self.names[i])
        for a, b in itertools.pairwise(order):
            if self.names[a] == self.names[b]:
                raise DataFormatError(f"image '{self.names[a]}' was evaluated twice")
        return self.take(order)

    def totals(self) -> dict[str, np.ndarray]:
        """Every count field summed over the images (``[C]`` or ``[C, bins]``)."""
        return {
            name: getattr(self, name).sum(axis=0)
            for name in COUNT_FIELDS + DIAGNOSTIC_FIELDS
            if getattr(self, name) is not None
        }

    def scores(self, eval_classes: Sequence[int]) -> dict[str, float]:
        """``mIoU``, ``mF1``, ``mBIoU``, ``OA`` of all the images together."""
        return {k: float(v) for k, v in scores_from_counts(self.totals(), eval_classes).items()}

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Plain arrays keyed ``<prefix><field>`` (names as a unicode array), for ``.npz``."""
        arrays = {f"{prefix}names": np.asarray(self.names, dtype=np.str_)}
        for name in COUNT_FIELDS + DIAGNOSTIC_FIELDS:
            value = getattr(self, name)
            if value is not None:
                arrays[f"{prefix}{name}"] = np.ascontiguousarray(value, dtype=np.int64)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str = "") -> "PerImageStats":
        """The inverse of :meth:`to_arrays`.

        Raises:
            DataFormatError: If a required array is missing or shapes disagree.
        """
        missing = [k for k in ("names", *COUNT_FIELDS) if f"{prefix}{k}" not in arrays]
        if missing:
            raise DataFormatError(f"per-image arrays lack {[prefix + k for k in missing]}")
        values: dict[str, Any] = {"names": tuple(str(n) for n in arrays[f"{prefix}names"])}
        for name in COUNT_FIELDS + DIAGNOSTIC_FIELDS:
            key = f"{prefix}{name}"
            values[name] = _as_counts(arrays[key], key) if key in arrays else None
        return cls(**values)

    def to_checkpoint(self) -> dict[str, Any]:
        """Tensors and a name list (loadable with ``torch.load(weights_only=True)``)."""
        state: dict[str, Any] = {"names": list(self.names)}
        for name in COUNT_FIELDS + DIAGNOSTIC_FIELDS:
            value = getattr(self, name)
            state[name] = None if value is None else torch.from_numpy(np.array(value))
        return state

    @classmethod
    def from_checkpoint(cls, state: Mapping[str, Any]) -> "PerImageStats":
        """The inverse of :meth:`to_checkpoint`."""
        values: dict[str, Any] = {"names": tuple(state["names"])}
        for name in COUNT_FIELDS + DIAGNOSTIC_FIELDS:
            value = state.get(name)
            values[name] = None if value is None else _as_counts(value, name)
        return cls(**values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PerImageStats):
            return NotImplemented
        if self.names != other.names:
            return False
        for item in fields(self)[1:]:
            a, b = getattr(self, item.name), getattr(other, item.name)
            if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]
