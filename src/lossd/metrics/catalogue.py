"""The metric catalogue: every metric of lossd defined once, with the one formula that scores it.

Each :class:`Metric` names its record key (``mIoU``), its display label, its per-class key where
it has one (``IoU``), whether higher is better, what it averages (the dataset's evaluation
classes, or every valid pixel), the per-class counts it needs (:data:`COUNTS`) and its formula
from the *summed* counts. One numpy implementation, float64, over any leading axes, serves
:meth:`lossd.metrics.SegmentationMetrics.compute` (the records), the per-image counts
(:class:`lossd.metrics.PerImageStats`) and the resampled sums of the paired bootstrap
(:mod:`lossd.results.paired`); records, printed tables, W&B, the results tables and the paired
comparisons read their metric names from :data:`METRICS`. Adding a metric is one entry here (and
its counts where they are made).

Formulas (GeoSeg tools/metric.py for the confusion scores, with the departures of
:mod:`lossd.metrics.confusion`; Cheng et al., CVPR 2021 for Boundary IoU; Csurka et al., BMVC
2013 and MATLAB ``bfscore`` for BF, :mod:`lossd.metrics.bfscore`), per class ``c``:

- IoU = TP / (TP + FP + FN); F1 = 2 TP / (2 TP + FP + FN); both NaN where TP + FP + FN = 0;
- precision = TP / (TP + FP), recall = TP / (TP + FN): NaN where TP + FP + FN = 0, else 0 where
  the denominator is 0;
- BIoU = band intersection / band union, NaN where the union is 0;
- BF = 2 P R / (P + R) with P = matched / predicted boundary pixels and R = matched / true
  boundary pixels (0 where that denominator is 0); NaN where the class has no boundary pixel in
  prediction nor target, 0 where P + R = 0;
- OA = Σ TP / Σ (TP + FP) over all classes (every valid wrong pixel is one false positive),
  NaN without valid pixels.

Means run over ``eval_classes`` and skip NaN classes (``np.nanmean``, as GeoSeg), NaN when every
class is NaN. The sum is correctly rounded (:func:`class_mean`, equal to :func:`math.fsum`), so a
mean does not depend on how it is vectorised: the accumulator's totals and the same counts summed
from per-image rows score to the same last bit.
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lossd.errors import InvalidOptionError

__all__ = [
    "BF_COUNT_FIELDS",
    "COUNTS",
    "EVAL_CLASSES",
    "METRICS",
    "METRIC_NAMES",
    "TABLES",
    "VALID_PIXELS",
    "Metric",
    "bf_values",
    "class_mean",
    "get_metric",
    "metric_names",
    "metric_scores",
    "metrics_dict",
    "per_class_names",
]

COUNTS: dict[str, str] = {
    "tp": "true positives: pixels of the class predicted as the class",
    "fp": "false positives: valid pixels of another class predicted as the class",
    "fn": "false negatives: pixels of the class predicted as another class",
    "band_intersection": "Boundary IoU: pixels in the true and the predicted band of the class",
    "band_union": "Boundary IoU: pixels in the true or the predicted band of the class",
    "bf_pred_boundary": "BF: predicted boundary pixels of the class",
    "bf_pred_matched": "BF: predicted boundary pixels within the tolerance of a true one",
    "bf_target_boundary": "BF: true boundary pixels of the class",
    "bf_target_matched": "BF: true boundary pixels within the tolerance of a predicted one",
}
"""Per-class counts (arrays ``[..., C]``) the formulas read, in per-image file order."""

BF_COUNT_FIELDS: tuple[str, ...] = tuple(name for name in COUNTS if name.startswith("bf_"))
"""The Boundary F-score's counts (``bf_`` + :data:`lossd.metrics.bfscore.BF_COUNTS`)."""

EVAL_CLASSES = "eval_classes"
"""A metric averaged over the dataset's evaluation classes (skipping NaN classes)."""
VALID_PIXELS = "valid_pixels"
"""A metric over every valid pixel, evaluated classes or not (OA)."""

TABLES = ("main", "losses")
"""Where a metric is shown: ``main``: the ``main_<metric>`` tables, the paired comparisons, the
per-class tables of its per-class values, the per-class table printed after training and
evaluation, the epoch summary line; ``losses``: the columns of the loss comparison table."""

Formula = Callable[[Mapping[str, Any]], np.ndarray]


def _counts(counts: Mapping[str, Any], *names: str) -> list[np.ndarray]:
    return [np.asarray(counts[name], dtype=np.float64) for name in names]


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` where the denominator is positive, else NaN (no warning)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1), np.nan)


def _supported(values: np.ndarray, support: np.ndarray) -> np.ndarray:
    """``values`` where the class has support, NaN elsewhere."""
    return np.where(support > 0, values, np.nan)


def _iou(counts: Mapping[str, Any]) -> np.ndarray:
    tp, fp, fn = _counts(counts, "tp", "fp", "fn")
    return _ratio(tp, tp + fp + fn)


def _f1(counts: Mapping[str, Any]) -> np.ndarray:
    tp, fp, fn = _counts(counts, "tp", "fp", "fn")
    return _ratio(2 * tp, 2 * tp + fp + fn)


def _precision(counts: Mapping[str, Any]) -> np.ndarray:
    tp, fp, fn = _counts(counts, "tp", "fp", "fn")
    return _supported(tp / np.maximum(tp + fp, 1), tp + fp + fn)


def _recall(counts: Mapping[str, Any]) -> np.ndarray:
    tp, fp, fn = _counts(counts, "tp", "fp", "fn")
    return _supported(tp / np.maximum(tp + fn, 1), tp + fp + fn)


def _biou(counts: Mapping[str, Any]) -> np.ndarray:
    inter, union = _counts(counts, "band_intersection", "band_union")
    return _ratio(inter, union)


def bf_values(counts: Mapping[str, Any]) -> np.ndarray:
    """Per-class Boundary F-score from summed BF counts (:mod:`lossd.metrics.bfscore`).

    ``P = pred_matched / pred_boundary`` and ``R = target_matched / target_boundary`` (0 where
    that boundary is empty), ``BF = 2 P R / (P + R)``; NaN where the class has no boundary pixel
    in prediction nor target (no support), 0 where ``P + R = 0`` (e.g. a class never predicted,
    or predicted where it is absent).

    Args:
        counts: ``bf_pred_boundary``, ``bf_pred_matched``, ``bf_target_boundary``,
            ``bf_target_matched``: arrays ``[..., C]``.

    Returns:
        float64 ``[..., C]``.
    """
    pred, pred_hit, target, target_hit = _counts(counts, *BF_COUNT_FIELDS)
    precision = pred_hit / np.maximum(pred, 1)
    recall = target_hit / np.maximum(target, 1)
    both = precision + recall
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(both > 0, 2 * precision * recall / np.where(both > 0, both, 1), 0.0)
    return _supported(score, pred + target)


def _overall_accuracy(counts: Mapping[str, Any]) -> np.ndarray:
    tp, fp = _counts(counts, "tp", "fp")
    return _ratio(tp.sum(axis=-1), (tp + fp).sum(axis=-1))


# --- correctly rounded means ----------------------------------------------------------------

_LIMB = 2.0**52
_GRID_BITS = 105  # every double in [2**-53, 1] is an integer multiple of 2**-105
_MAX_TERMS = 2**9  # limb sums stay below 2**63


def _bit_length(values: np.ndarray) -> np.ndarray:
    """Bit length of positive int64 values (exact, unlike a float log2)."""
    exponent = np.frexp(values.astype(np.float64))[1].astype(np.int64)
    too_long = np.left_shift(np.int64(1), exponent - 1) > values  # rounded up to 2**k
    return exponent - too_long


def _grid_sums(values: np.ndarray) -> np.ndarray:
    """Correctly rounded row sums of ``[N, K]`` values that are 0 or in ``[2**-53, 1]``.

    Each value is an exact integer ``T_i`` times ``2**-105``, split into two int64 limbs
    ``T_i = hi * 2**53 + lo``; the exact integer total is rounded once to 53 bits, half to even
    (what :func:`math.fsum` returns).
    """
    scaled = values * _LIMB  # exact: a power-of-two scaling
    high = np.floor(scaled)
    low = (scaled - high) * (2.0 * _LIMB)  # exact integers below 2**53
    top = high.astype(np.int64).sum(axis=1)
    rest = low.astype(np.int64).sum(axis=1)
    top += rest >> 53
    rest &= (1 << 53) - 1
    # total T = top * 2**53 + rest; keep its 53 leading bits, round half to even
    out: np.ndarray = np.ldexp(rest.astype(np.float64), -_GRID_BITS)  # exact where top == 0
    big = top > 0
    if big.any():
        top, rest = top[big], rest[big]
        bits = _bit_length(top)
        short = bits <= 53
        shift_up = np.where(short, 53 - bits, 0)
        shift_down = np.where(short, 0, bits - 53)
        quotient = np.where(
            short, (top << shift_up) + (rest >> np.minimum(bits, 62)), top >> shift_down
        )
        remainder = np.where(
            short,
            rest & ((np.int64(1) << bits) - 1),
            ((top & ((np.int64(1) << shift_down) - 1)) << 53) + rest,
        )
        half = np.int64(1) << (bits - 1)
        quotient += (remainder > half) | ((remainder == half) & (quotient % 2 == 1))
        out[big] = np.ldexp(quotient.astype(np.float64), bits - _GRID_BITS)
    return out


def _fsum_rows(values: np.ndarray) -> np.ndarray:
    """``math.fsum`` of each row of ``[N, K]`` finite values, vectorised where exactly possible."""
    rows = values.shape[0]
    out = np.zeros(rows, dtype=np.float64)
    if rows == 0 or values.shape[1] == 0:
        return out
    on_grid = ((values == 0) | ((values >= 2.0**-53) & (values <= 1.0))).all(axis=1)
    if values.shape[1] > _MAX_TERMS:
        on_grid[:] = False
    if on_grid.any():
        out[on_grid] = _grid_sums(values[on_grid])
    for index in np.flatnonzero(~on_grid):
        out[index] = math.fsum(values[index].tolist())
    return out


def class_mean(values: np.ndarray | Sequence[float], classes: Sequence[int]) -> np.ndarray:
    """Mean of ``values[..., c]`` over ``classes``, skipping NaN, over any leading axes.

    The sum is correctly rounded (:func:`math.fsum` of the finite values) and divided by their
    number, so the result equals ``math.fsum(kept) / len(kept)`` bit for bit; NaN where every
    selected value is NaN (``np.nanmean`` semantics without its warning).

    Args:
        values: ``[..., C]`` per-class values.
        classes: Class indices to average over.

    Returns:
        float64 array of the leading shape (a 0-d array for ``[C]``).
    """
    array = np.asarray(values, dtype=np.float64)[..., list(classes)]
    lead = array.shape[:-1]
    flat = array.reshape(-1, array.shape[-1])
    finite = ~np.isnan(flat)
    count = finite.sum(axis=1)
    total = _fsum_rows(np.where(finite, flat, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return mean.reshape(lead)


def _first_count(counts: Mapping[str, Any]) -> np.ndarray:
    for name in COUNTS:
        if counts.get(name) is not None:
            return np.asarray(counts[name])
    raise ValueError(f"no metric counts among {sorted(counts)}; expected some of {list(COUNTS)}")


def _leading_shape(counts: Mapping[str, Any]) -> tuple[int, ...]:
    return tuple(_first_count(counts).shape[:-1])


def _class_count(counts: Mapping[str, Any]) -> int:
    return int(_first_count(counts).shape[-1])


# --- the catalogue --------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One metric: its names, what it averages, the counts it needs and its formula.

    Attributes:
        name: Key in the metrics dict, the records and W&B (``val/<name>``), e.g. ``mIoU``.
        label: Display name in tables and figures.
        per_class: Key of the per-class list (``IoU``), None for a metric without one (OA).
        higher_is_better: Whether a larger value is better.
        averages: :data:`EVAL_CLASSES` (mean of the per-class values) or :data:`VALID_PIXELS`.
        counts: The :data:`COUNTS` its formula reads.
        formula: Summed counts ``[..., C]`` -> per-class values ``[..., C]`` (for
            :data:`EVAL_CLASSES`) or the value ``[...]`` (for :data:`VALID_PIXELS`).
        description: One line for docs and notes, with the source.
        tables: Where it is shown, a subset of :data:`TABLES`.
    """

    name: str
    label: str
    per_class: str | None
    higher_is_better: bool
    averages: str
    counts: tuple[str, ...]
    formula: Formula = field(repr=False, compare=False)
    description: str = ""
    tables: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.averages not in (EVAL_CLASSES, VALID_PIXELS):
            raise ValueError(f"metric {self.name}: averages={self.averages!r}")
        if (self.per_class is None) != (self.averages == VALID_PIXELS):
            raise ValueError(f"metric {self.name}: a class mean needs a per-class name")
        unknown = [c for c in self.counts if c not in COUNTS]
        if unknown or not set(self.tables) <= set(TABLES):
            raise ValueError(f"metric {self.name}: unknown counts {unknown} or tables")

    def available(self, counts: Mapping[str, Any]) -> bool:
        """Whether ``counts`` holds every count the formula reads (older records may not)."""
        return all(counts.get(name) is not None for name in self.counts)

    def values(self, counts: Mapping[str, Any]) -> np.ndarray:
        """Per-class values ``[..., C]`` (the value ``[...]`` for a pixel metric)."""
        return self.formula(counts)

    def score(self, counts: Mapping[str, Any], eval_classes: Sequence[int]) -> np.ndarray:
        """The metric from summed counts ``[..., C]``: an array of the leading shape.

        NaN everywhere when ``counts`` lacks a count the metric needs.
        """
        if not self.available(counts):
            return np.full(_leading_shape(counts), np.nan)
        values = self.values(counts)
        if self.averages == VALID_PIXELS:
            return np.asarray(values, dtype=np.float64)
        return class_mean(values, eval_classes)


METRICS: tuple[Metric, ...] = (
    Metric(
        name="mIoU",
        label="mIoU",
        per_class="IoU",
        higher_is_better=True,
        averages=EVAL_CLASSES,
        counts=("tp", "fp", "fn"),
        formula=_iou,
        description="mean intersection over union (Jaccard), GeoSeg tools/metric.py",
        tables=("main", "losses"),
    ),
    Metric(
        name="mF1",
        label="mF1",
        per_class="F1",
        higher_is_better=True,
        averages=EVAL_CLASSES,
        counts=("tp", "fp", "fn"),
        formula=_f1,
        description="mean F1 (Dice), GeoSeg tools/metric.py",
        tables=("main", "losses"),
    ),
    Metric(
        name="OA",
        label="OA",
        per_class=None,
        higher_is_better=True,
        averages=VALID_PIXELS,
        counts=("tp", "fp"),
        formula=_overall_accuracy,
        description="overall accuracy over every valid pixel, GeoSeg tools/metric.py",
        tables=("main",),
    ),
    Metric(
        name="mBIoU",
        label="mBIoU",
        per_class="BIoU",
        higher_is_better=True,
        averages=EVAL_CLASSES,
        counts=("band_intersection", "band_union"),
        formula=_biou,
        description="mean Boundary IoU (Cheng et al., CVPR 2021), counts pooled over the set",
        tables=("main", "losses"),
    ),
    Metric(
        name="mBF",
        label="mBF",
        per_class="BF",
        higher_is_better=True,
        averages=EVAL_CLASSES,
        counts=BF_COUNT_FIELDS,
        formula=bf_values,
        description=(
            "mean Boundary F-score (Csurka et al., BMVC 2013; MATLAB bfscore), counts pooled "
            "over the set"
        ),
        tables=("main", "losses"),
    ),
    Metric(
        name="mPrecision",
        label="mPrecision",
        per_class="Precision",
        higher_is_better=True,
        averages=EVAL_CLASSES,
        counts=("tp", "fp", "fn"),
        formula=_precision,
        description="mean precision TP / (TP + FP)",
    ),
    Metric(
        name="mRecall",
        label="mRecall",
        per_class="Recall",
        higher_is_better=True,
        averages=EVAL_CLASSES,
        counts=("tp", "fp", "fn"),
        formula=_recall,
        description="mean recall TP / (TP + FN)",
    ),
)
"""Every metric, in the order of the tables."""

METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in METRICS)
"""The names of :data:`METRICS`, in order."""


def _catalogue(catalogue: Sequence[Metric] | None) -> Sequence[Metric]:
    """``catalogue``, or :data:`METRICS` as it is now (looked up when called, not imported)."""
    return METRICS if catalogue is None else catalogue


def get_metric(name: str, catalogue: Sequence[Metric] | None = None) -> Metric:
    """The metric named ``name`` (its record key, e.g. ``mIoU``, or its per-class key, ``IoU``).

    Raises:
        InvalidOptionError: If no metric has that name.
    """
    for metric in _catalogue(catalogue):
        if name in (metric.name, metric.per_class):
            return metric
    raise InvalidOptionError(
        f"unknown metric {name!r}; expected one of {[m.name for m in _catalogue(catalogue)]}"
    )


def metric_names(
    table: str | None = None, catalogue: Sequence[Metric] | None = None
) -> tuple[str, ...]:
    """Names of the metrics shown in ``table`` (one of :data:`TABLES`; None: all), in order."""
    return tuple(m.name for m in _catalogue(catalogue) if table is None or table in m.tables)


def per_class_names(
    table: str | None = None, catalogue: Sequence[Metric] | None = None
) -> tuple[str, ...]:
    """Per-class keys (``IoU``, ...) of the metrics shown in ``table`` (None: all), in order."""
    return tuple(
        m.per_class
        for m in _catalogue(catalogue)
        if m.per_class is not None and (table is None or table in m.tables)
    )


def metric_scores(
    counts: Mapping[str, Any],
    eval_classes: Sequence[int],
    names: Sequence[str] | None = None,
    catalogue: Sequence[Metric] | None = None,
) -> dict[str, np.ndarray]:
    """Metrics from summed counts ``[..., C]`` over any leading axes (e.g. bootstrap resamples).

    Args:
        counts: Count name -> ``[..., C]`` array (:data:`COUNTS`; those of older records may
            be missing or None).
        eval_classes: Classes the class means run over.
        names: Metrics wanted (default: every metric whose counts are all present).
        catalogue: The metric definitions (default :data:`METRICS`).

    Returns:
        Name -> float64 array of the leading shape (NaN for a wanted metric whose counts are
        missing).
    """
    chosen = (
        [get_metric(n, catalogue) for n in names]
        if names is not None
        else [m for m in _catalogue(catalogue) if m.available(counts)]
    )
    return {m.name: m.score(counts, eval_classes) for m in chosen}


def metrics_dict(
    counts: Mapping[str, Any],
    eval_classes: Sequence[int],
    catalogue: Sequence[Metric] | None = None,
) -> dict[str, Any]:
    """Every metric of the catalogue as a record holds it, from one set of totals ``[C]``.

    Returns:
        For each metric in order: its per-class list (key ``per_class``; NaN entries as
        defined) when it has one, then its value (key ``name``) as a Python float. A metric
        whose counts are missing gets NaN values (``[NaN] * C`` for its per-class list).
    """
    num_classes = _class_count(counts)
    out: dict[str, Any] = {}
    chosen = _catalogue(catalogue)
    for metric in chosen:
        if metric.per_class is not None:
            per_class = (
                metric.values(counts) if metric.available(counts) else np.full(num_classes, np.nan)
            )
            out[metric.per_class] = [float(v) for v in np.asarray(per_class).tolist()]
    for metric in chosen:
        out[metric.name] = float(metric.score(counts, eval_classes))
    return out
