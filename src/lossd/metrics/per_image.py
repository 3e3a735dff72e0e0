"""Per-image counts of an evaluation: what paired statistics and error profiles are made of.

For every evaluated image, per class: true positives, false positives and false negatives of the
confusion matrix, the Boundary IoU band intersection and union (Cheng et al., CVPR 2021;
:mod:`lossd.metrics.boundary`) and the Boundary F-score counts (Csurka et al., BMVC 2013;
:mod:`lossd.metrics.bfscore`); with diagnostics also the over/under-segmentation histograms and
the signed distance profile (:mod:`lossd.metrics.diagnostics`). Every score of
:class:`~lossd.metrics.SegmentationMetrics` is a function of the *sums* of these counts
(:data:`lossd.metrics.catalogue.METRICS`), so a subset or a resample of the images is scored
exactly as the whole set is (:func:`scores_from_counts`): by recomputing from summed counts,
never by averaging per-image scores.

Files written before the BF counts existed lack them (:data:`OPTIONAL_COUNT_FIELDS`): they are
read with those fields None, and BF scores NaN from them.
"""

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lossd.errors import DataFormatError
from lossd.metrics.catalogue import BF_COUNT_FIELDS, COUNTS, metric_scores

__all__ = [
    "COUNT_FIELDS",
    "DIAGNOSTIC_FIELDS",
    "OPTIONAL_COUNT_FIELDS",
    "REQUIRED_COUNT_FIELDS",
    "PerImageStats",
    "scores_from_counts",
]

COUNT_FIELDS: tuple[str, ...] = tuple(COUNTS)
"""Per-image ``[N, C]`` counts (:data:`lossd.metrics.catalogue.COUNTS`), in file order."""

OPTIONAL_COUNT_FIELDS: tuple[str, ...] = BF_COUNT_FIELDS
"""Counts added after per-image files existed (BF): all present or all None."""

REQUIRED_COUNT_FIELDS: tuple[str, ...] = tuple(
    f for f in COUNT_FIELDS if f not in OPTIONAL_COUNT_FIELDS
)
"""Counts every per-image file holds."""

DIAGNOSTIC_FIELDS: tuple[str, ...] = (
    "fp_distance_hist",
    "fn_depth_hist",
    "profile_pixels",
    "profile_errors",
)
"""Per-image ``[N, C, bins]`` counts kept with ``metrics.diagnostics=true``."""

_ALL_FIELDS = COUNT_FIELDS + DIAGNOSTIC_FIELDS


def scores_from_counts(
    counts: Mapping[str, np.ndarray | None], eval_classes: Sequence[int]
) -> dict[str, np.ndarray]:
    """Every metric of the catalogue whose counts are given, from summed counts.

    The formulas of :data:`lossd.metrics.catalogue.METRICS` (the ones
    :meth:`~lossd.metrics.SegmentationMetrics.compute` uses): IoU = TP / (TP + FP + FN), F1 =
    2 TP / (2 TP + FP + FN), BIoU = I / U, BF from the boundary counts, ...; means over
    ``eval_classes`` skipping NaN (correctly rounded sums); OA = ΣTP / (ΣTP + ΣFP) over all
    classes.

    Args:
        counts: Count name -> arrays ``[..., C]`` (e.g. ``[C]`` for a total, ``[B, S, C]`` for
            resamples); a missing or None count leaves out the metrics that need it.
        eval_classes: Classes the means run over.

    Returns:
        Metric name -> array of the leading shape, values in 0..1, in catalogue order.
    """
    return metric_scores(counts, eval_classes)


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
        bf_pred_boundary, bf_pred_matched, bf_target_boundary, bf_target_matched: ``[N, C]``
            Boundary F-score counts (:mod:`lossd.metrics.bfscore`), or None in files written
            before they existed.
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
    bf_pred_boundary: np.ndarray | None = None
    bf_pred_matched: np.ndarray | None = None
    bf_target_boundary: np.ndarray | None = None
    bf_target_matched: np.ndarray | None = None
    fp_distance_hist: np.ndarray | None = None
    fn_depth_hist: np.ndarray | None = None
    profile_pixels: np.ndarray | None = None
    profile_errors: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.names)
        shape = np.shape(self.tp)
        if len(shape) != 2 or shape[0] != n:
            raise DataFormatError(f"per-image 'tp' has shape {shape}, expected [{n}, C]")
        optional = [getattr(self, name) is not None for name in OPTIONAL_COUNT_FIELDS]
        if any(optional) and not all(optional):
            raise DataFormatError(f"per-image BF counts need all of {list(OPTIONAL_COUNT_FIELDS)}")
        for name in COUNT_FIELDS:
            value = getattr(self, name)
            if value is None and name in OPTIONAL_COUNT_FIELDS:
                continue
            got = np.shape(value)
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
    def has_bf(self) -> bool:
        """Whether the Boundary F-score counts are present (files since they exist)."""
        return self.bf_pred_boundary is not None

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
        bf: Tensor | None = None,
    ) -> "PerImageStats":
        """Rows of one batch from per-image joint counts, BF counts and diagnostics.

        Args:
            names: One name per image.
            joint: ``[B, 4, C+1, C+1]`` (:func:`lossd.metrics.joint_counts` with ``per_image``).
            histograms: ``[B, 2, C, 6]`` or None (:func:`lossd.metrics.error_diagnostics`).
            profile: ``[B, 2, C, 64]`` or None.
            bf: ``[B, 4, C]`` (:func:`lossd.metrics.bf_counts` with ``per_image``) or None.
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
        if bf is not None:
            bf = bf.detach().cpu()
            diagnostics.update(
                {name: _as_counts(bf[:, i], name) for i, name in enumerate(OPTIONAL_COUNT_FIELDS)}
            )
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
        for name in _ALL_FIELDS:
            arrays = [getattr(p, name) for p in parts]
            missing = sum(a is None for a in arrays)
            if 0 < missing < len(arrays):
                raise DataFormatError(f"per-image field '{name}' is missing in some parts only")
            values[name] = None if missing else np.concatenate(arrays)
        return cls(**values)

    def take(self, indices: Sequence[int] | np.ndarray) -> "PerImageStats":
        """The rows at ``indices`` (in that order)."""
        index = np.asarray(indices, dtype=np.int64)
        values: dict[str, Any] = {"names": tuple(self.names[i] for i in index.tolist())}
        for name in _ALL_FIELDS:
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
            for name in _ALL_FIELDS
            if getattr(self, name) is not None
        }

    def scores(self, eval_classes: Sequence[int]) -> dict[str, float]:
        """Every metric its counts allow (:func:`scores_from_counts`) of all the images."""
        return {k: float(v) for k, v in scores_from_counts(self.totals(), eval_classes).items()}

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Plain arrays keyed ``<prefix><field>`` (names as a unicode array), for ``.npz``."""
        arrays = {f"{prefix}names": np.asarray(self.names, dtype=np.str_)}
        for name in _ALL_FIELDS:
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
        missing = [k for k in ("names", *REQUIRED_COUNT_FIELDS) if f"{prefix}{k}" not in arrays]
        if missing:
            raise DataFormatError(f"per-image arrays lack {[prefix + k for k in missing]}")
        values: dict[str, Any] = {"names": tuple(str(n) for n in arrays[f"{prefix}names"])}
        for name in _ALL_FIELDS:
            key = f"{prefix}{name}"
            values[name] = _as_counts(arrays[key], key) if key in arrays else None
        return cls(**values)

    def to_checkpoint(self) -> dict[str, Any]:
        """Tensors and a name list (loadable with ``torch.load(weights_only=True)``)."""
        state: dict[str, Any] = {"names": list(self.names)}
        for name in _ALL_FIELDS:
            value = getattr(self, name)
            state[name] = None if value is None else torch.from_numpy(np.array(value))
        return state

    @classmethod
    def from_checkpoint(cls, state: Mapping[str, Any]) -> "PerImageStats":
        """The inverse of :meth:`to_checkpoint`."""
        values: dict[str, Any] = {"names": tuple(state["names"])}
        for name in _ALL_FIELDS:
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
