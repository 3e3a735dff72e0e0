"""Paired comparison of two losses on one dataset × model cell: is "+Lossd − base" seed noise?

Input: the per-image counts (:class:`lossd.metrics.PerImageStats`) of a base run and of another
run for each of the same seeds, ``base[k]`` and ``other[k]`` trained with seed ``k``, all
evaluated on the same images (rows matched by name). A metric ``M`` of a set of images is always
recomputed from the summed counts by its one formula in the metric catalogue
(:data:`lossd.metrics.METRICS`, :meth:`lossd.metrics.Metric.score`), never averaged over images;
only the counts that metric needs are resampled.

Point estimate: ``Δ = mean_s [M(other_s) − M(base_s)]``, each ``M`` from that seed's counts
summed over all images; it equals the difference of the seed means that the tables show.

Confidence interval: two-stage (hierarchical) percentile bootstrap (Efron & Tibshirani 1993,
*An Introduction to the Bootstrap*, ch. 13; for resampling seeds then images, Saravanan et al.
2020, "Application of the hierarchical bootstrap to multi-level data in neuroscience",
Neurons, Behavior, Data analysis, and Theory 3(5)). Each replicate draws ``S`` seed pairs with
replacement and, for each drawn seed, ``N`` images with replacement, the same image draw for the
base and the other run of that seed (the comparison stays paired by image); the drawn images'
counts are summed per run and ``Δ_b = mean over the drawn seeds of [M(other) − M(base)]``. The
interval is the ``(1 − confidence)/2`` and ``1 − (1 − confidence)/2`` quantiles of the ``Δ_b``
(:func:`numpy.nanquantile`, linear interpolation). With one seed only the images are resampled.
Seed-to-seed variation enters through the seed stage: with few seeds (3 is typical) the
interval is a rough guide, not a guarantee of coverage.

p-value: two-sided sign-flip permutation test (Good 2005, *Permutation, Parametric, and
Bootstrap Tests of Hypotheses*, 3rd ed., ch. 3) with statistic ``T = Δ``. Under the null
hypothesis the two losses are exchangeable for every (seed, image) pair, so a permutation swaps,
independently for each pair, the base and the other counts of that image and recomputes ``T``
from the swapped sums. ``p = #{|T_perm| ≥ |T_obs|} / 2^(S·N)`` when all ``2^(S·N)`` swap patterns
are enumerated (``S·N ≤ exact_limit``, identity included), else ``p = (1 + #{|T_perm| ≥
|T_obs|}) / (1 + P)`` over ``P`` random patterns; ``≥`` has a tolerance of 1e-12.

NaN: a metric is NaN when no evaluated class has support in a resample (every class without
support is skipped by the mean, as in the tables), and everywhere when a run lacks the counts
it needs (per-image files written before the Boundary F-score counts existed: mBF). A NaN
replicate is left out of the quantiles (:func:`numpy.nanquantile`; bounds are NaN when every
replicate is NaN), and a NaN permuted statistic never counts as at least as extreme; a NaN
observed statistic gives a NaN p-value.

Randomness: ``seed`` seeds :class:`numpy.random.SeedSequence`; every metric gets its own
bootstrap and permutation generators, keyed by the metric's name, so the numbers of one metric
do not depend on which other metrics are asked for. The same inputs and seed give the same
numbers, whatever the chunk size used to bound memory.
"""

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossd.errors import DataFormatError, InvalidOptionError
from lossd.metrics import (
    COUNT_FIELDS,
    OPTIONAL_COUNT_FIELDS,
    PerImageStats,
    get_metric,
    metric_names,
)

__all__ = [
    "PairedResult",
    "aligned_counts",
    "format_delta_ci",
    "hierarchical_bootstrap",
    "paired_comparison",
    "per_seed_deltas",
    "sign_flip_test",
]

_MISSING = "—"  # lossd.results.tables.MISSING, not imported to keep pandas out
_MINUS = "-"  # as lossd.results.tables.format_delta (ASCII in CSV and Markdown)
_TOLERANCE = 1e-12
_MAX_EXACT = 20  # 2**20 swap patterns at most (seconds per metric)
_CHUNK_BYTES = 32 * 2**20  # working memory of one chunk of replicates or permutations


@dataclass(frozen=True)
class PairedResult:
    """Paired comparison of one metric between two losses (module docstring).

    Attributes:
        metric: Metric name (one of :data:`lossd.metrics.METRIC_NAMES`).
        delta: Mean over seeds of ``M(other_s) − M(base_s)``, values in 0..1 units.
        ci_low, ci_high: Percentile bootstrap interval of ``delta``.
        confidence: Coverage asked of the interval, e.g. 0.95.
        per_seed_delta: ``M(other_s) − M(base_s)`` for each seed.
        p_value: Two-sided sign-flip permutation p-value.
        num_seeds, num_images: Seed pairs and matched images.
        num_bootstrap: Bootstrap replicates.
        num_permutations: Swap patterns used (``2**(S*N)`` when enumerated exactly).
        exact: Whether every swap pattern was enumerated.
    """

    metric: str
    delta: float
    ci_low: float
    ci_high: float
    confidence: float
    per_seed_delta: tuple[float, ...]
    p_value: float
    num_seeds: int
    num_images: int
    num_bootstrap: int
    num_permutations: int
    exact: bool

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies strictly above or strictly below 0 (False if NaN)."""
        return self.ci_low > 0 or self.ci_high < 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values, ``excludes_zero`` included."""
        return {
            "metric": self.metric,
            "delta": self.delta,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "confidence": self.confidence,
            "per_seed_delta": list(self.per_seed_delta),
            "p_value": self.p_value,
            "num_seeds": self.num_seeds,
            "num_images": self.num_images,
            "num_bootstrap": self.num_bootstrap,
            "num_permutations": self.num_permutations,
            "exact": self.exact,
            "excludes_zero": self.excludes_zero,
        }


def _name_list(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def aligned_counts(
    base: Sequence[PerImageStats], other: Sequence[PerImageStats]
) -> tuple[tuple[str, ...], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Count fields of every run stacked ``[S, N, C]``, images in sorted-name order.

    Args:
        base: One base run per seed.
        other: One other run per seed, ``other[k]`` paired with ``base[k]``.

    Returns:
        The sorted image names, and per run kind a dict field -> ``[S, N, C]`` int64 array, with
        every count field that all the runs hold (the BF counts only when every run has them).

    Raises:
        DataFormatError: If the numbers of seeds differ or are 0, a run repeats an image, a
            run's image names differ from those of ``base[0]``, or the numbers of classes differ.
    """
    if len(base) != len(other) or not base:
        raise DataFormatError(
            f"paired comparison needs the same number (≥ 1) of base and other runs, one per "
            f"seed; got {len(base)} base and {len(other)} other runs"
        )
    names = tuple(sorted(base[0].names))
    if not names:
        raise DataFormatError("paired comparison needs at least one evaluated image")
    reference = set(names)
    num_classes = base[0].num_classes
    fields = [
        f
        for f in COUNT_FIELDS
        if f not in OPTIONAL_COUNT_FIELDS
        or all(getattr(run, f) is not None for run in (*base, *other))
    ]
    stacked: list[dict[str, np.ndarray]] = []
    for role, runs in (("base", base), ("other", other)):
        rows: dict[str, list[np.ndarray]] = {field: [] for field in fields}
        for k, run in enumerate(runs):
            if run.num_classes != num_classes:
                raise DataFormatError(
                    f"{role} run of seed {k} has {run.num_classes} classes, base run of seed 0 "
                    f"has {num_classes}; compare runs of the same dataset"
                )
            index = {name: i for i, name in enumerate(run.names)}
            if len(index) != run.num_images:
                repeated = sorted({n for n in run.names if run.names.count(n) > 1})
                raise DataFormatError(
                    f"{role} run of seed {k} evaluated {_name_list(repeated)} more than once"
                )
            missing = sorted(reference - index.keys())
            extra = sorted(index.keys() - reference)
            if missing or extra:
                parts = [f"lacks {_name_list(missing)}"] if missing else []
                parts += [f"has extra {_name_list(extra)}"] if extra else []
                raise DataFormatError(
                    f"{role} run of seed {k} was evaluated on other images than base run of "
                    f"seed 0: it {' and '.join(parts)}; evaluate every run on the same split"
                )
            order = np.fromiter((index[n] for n in names), dtype=np.int64, count=len(names))
            for field in fields:
                rows[field].append(np.asarray(getattr(run, field), dtype=np.int64)[order])
        stacked.append({field: np.stack(arrays) for field, arrays in rows.items()})
    return names, stacked[0], stacked[1]


def _fields(counts: Mapping[str, np.ndarray], metric: str) -> tuple[str, ...] | None:
    """The count fields ``metric`` reads, or None when ``counts`` lacks one of them."""
    needed = get_metric(metric).counts
    return needed if all(f in counts for f in needed) else None


def per_seed_deltas(
    base_counts: Mapping[str, np.ndarray],
    other_counts: Mapping[str, np.ndarray],
    eval_classes: Sequence[int],
    metric: str,
) -> np.ndarray:
    """``M(other_s) − M(base_s)`` per seed from counts summed over all images, shape ``[S]``.

    NaN for every seed when the counts lack a field the metric needs.
    """
    definition = get_metric(metric)
    base_scores = definition.score({k: v.sum(axis=1) for k, v in base_counts.items()}, eval_classes)
    other_scores = definition.score(
        {k: v.sum(axis=1) for k, v in other_counts.items()}, eval_classes
    )
    return np.asarray(other_scores - base_scores, dtype=np.float64)


def _stack_fields(counts: Mapping[str, np.ndarray], fields: Sequence[str]) -> np.ndarray:
    """``[S, N, F*C]`` float64, the count fields side by side (exact integers below 2**53)."""
    return np.concatenate([np.asarray(counts[f], dtype=np.float64) for f in fields], axis=-1)


def _split_fields(
    stacked: np.ndarray, num_classes: int, fields: Sequence[str]
) -> dict[str, np.ndarray]:
    """Inverse of :func:`_stack_fields` on the last axis."""
    return {
        field: stacked[..., i * num_classes : (i + 1) * num_classes]
        for i, field in enumerate(fields)
    }


def _mean_delta(
    base_sums: np.ndarray,
    other_sums: np.ndarray,
    num_classes: int,
    eval_classes: Sequence[int],
    metric: str,
    fields: Sequence[str],
) -> np.ndarray:
    """Mean over the seed axis (-2 of the sums) of ``M(other) − M(base)``."""
    definition = get_metric(metric)
    base_scores = definition.score(_split_fields(base_sums, num_classes, fields), eval_classes)
    other_scores = definition.score(_split_fields(other_sums, num_classes, fields), eval_classes)
    return np.asarray(np.mean(other_scores - base_scores, axis=-1))


def _chunk_rows(bytes_per_row: int) -> int:
    return max(1, _CHUNK_BYTES // max(1, bytes_per_row))


def hierarchical_bootstrap(
    base_counts: Mapping[str, np.ndarray],
    other_counts: Mapping[str, np.ndarray],
    eval_classes: Sequence[int],
    metric: str,
    num_bootstrap: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Bootstrap distribution of ``Δ``, seeds then images resampled (module docstring).

    Args:
        base_counts: Field -> ``[S, N, C]`` counts of the base runs.
        other_counts: The same for the other runs, images aligned with ``base_counts``.
        eval_classes: Classes the metric's mean runs over.
        metric: A name of :data:`lossd.metrics.METRIC_NAMES`.
        num_bootstrap: Replicates ``B``.
        rng: Source of the resamples (not used when the counts lack the metric's fields).

    Returns:
        ``[B]`` replicates of ``Δ`` (NaN where the metric is undefined for a resample, and
        everywhere when the counts lack a field the metric needs).
    """
    fields = _fields(base_counts, metric) if _fields(other_counts, metric) else None
    if fields is None:
        return np.full(num_bootstrap, np.nan)
    base_x, other_x = _stack_fields(base_counts, fields), _stack_fields(other_counts, fields)
    num_seeds, num_images, width = base_x.shape
    num_classes = width // len(fields)
    both = np.concatenate([base_x, other_x], axis=-1)  # [S, N, 2*F*C]
    if num_seeds > 1:
        seeds = rng.integers(0, num_seeds, size=(num_bootstrap, num_seeds))
    else:
        seeds = np.zeros((num_bootstrap, 1), dtype=np.int64)
    pvals = np.full(num_images, 1.0 / num_images)
    # weights (int64 + float64 + masked copy) and sums with their scores, per replicate
    chunk = _chunk_rows(8 * num_seeds * (3 * num_images + 2 * both.shape[-1] + 20 * num_classes))
    deltas = np.empty(num_bootstrap, dtype=np.float64)
    for start in range(0, num_bootstrap, chunk):
        stop = min(start + chunk, num_bootstrap)
        weights = rng.multinomial(num_images, pvals, size=(stop - start, num_seeds))
        flat = weights.reshape(-1, num_images).astype(np.float64)
        drawn = seeds[start:stop].reshape(-1)
        sums = np.zeros((flat.shape[0], both.shape[-1]), dtype=np.float64)
        for s in range(num_seeds):
            rows = drawn == s
            if rows.any():
                sums[rows] = flat[rows] @ both[s]
        pairs = sums.reshape(stop - start, num_seeds, -1)
        deltas[start:stop] = _mean_delta(
            pairs[..., :width], pairs[..., width:], num_classes, eval_classes, metric, fields
        )
    return deltas


def sign_flip_test(
    base_counts: Mapping[str, np.ndarray],
    other_counts: Mapping[str, np.ndarray],
    eval_classes: Sequence[int],
    metric: str,
    num_permutations: int,
    rng: np.random.Generator,
    exact_limit: int,
) -> tuple[float, int, bool]:
    """Two-sided sign-flip permutation test of ``Δ = 0`` (module docstring).

    Args:
        base_counts: Field -> ``[S, N, C]`` counts of the base runs.
        other_counts: The same for the other runs, images aligned with ``base_counts``.
        eval_classes: Classes the metric's mean runs over.
        metric: A name of :data:`lossd.metrics.METRIC_NAMES`.
        num_permutations: Random swap patterns ``P`` when not enumerating.
        rng: Source of the random swap patterns (unused when enumerating).
        exact_limit: Enumerate all ``2**(S*N)`` patterns when ``S*N`` is at most this.

    Returns:
        The p-value (NaN when ``Δ`` is undefined), the number of swap patterns used and whether
        they were all enumerated.
    """
    num_seeds, num_images = next(iter(base_counts.values())).shape[:2]
    cells = num_seeds * num_images
    exact = cells <= exact_limit
    used = 2**cells if exact else num_permutations
    observed = float(np.mean(per_seed_deltas(base_counts, other_counts, eval_classes, metric)))
    fields = _fields(base_counts, metric)
    if not math.isfinite(observed) or fields is None:
        return math.nan, used, exact
    base_x, other_x = _stack_fields(base_counts, fields), _stack_fields(other_counts, fields)
    width = base_x.shape[-1]
    num_classes = width // len(fields)
    threshold = abs(observed) - _TOLERANCE
    base_total, other_total = base_x.sum(axis=1), other_x.sum(axis=1)  # [S, F*C]
    diff = other_x - base_x  # [S, N, F*C]
    chunk = _chunk_rows(8 * num_seeds * (3 * num_images + 4 * width + 20 * num_classes))
    bits = np.arange(cells, dtype=np.int64)
    extreme = 0
    for start in range(0, used, chunk):
        stop = min(start + chunk, used)
        if exact:
            codes = np.arange(start, stop, dtype=np.int64)
            flips = ((codes[:, None] >> bits) & 1).astype(np.float64)
        else:
            flips = (rng.random((stop - start, cells)) < 0.5).astype(np.float64)
        flips = flips.reshape(stop - start, num_seeds, num_images)
        moved = np.empty((stop - start, num_seeds, width), dtype=np.float64)
        for s in range(num_seeds):
            moved[:, s] = flips[:, s] @ diff[s]
        stats = _mean_delta(
            base_total + moved, other_total - moved, num_classes, eval_classes, metric, fields
        )
        extreme += int(np.count_nonzero(np.abs(stats) >= threshold))
    p_value = extreme / used if exact else (1 + extreme) / (1 + used)
    return p_value, used, exact


def _generator(seed: int, metric: str, stage: int) -> np.random.Generator:
    key = (zlib.crc32(metric.encode()), stage)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def paired_comparison(
    base: Sequence[PerImageStats],
    other: Sequence[PerImageStats],
    eval_classes: Sequence[int],
    metrics: Sequence[str] | None = None,
    *,
    num_bootstrap: int = 2000,
    num_permutations: int = 10000,
    confidence: float = 0.95,
    seed: int = 0,
    exact_limit: int = 16,
) -> dict[str, PairedResult]:
    """Paired effect, bootstrap interval and permutation p-value of ``other − base`` per metric.

    Args:
        base: Per-image counts of one base run per seed.
        other: Per-image counts of one other run per seed, ``other[k]`` paired with ``base[k]``,
            evaluated on the same images (matched by name).
        eval_classes: Classes the metrics' means run over.
        metrics: Metrics to compare (names of the metric catalogue; default those of the main
            tables, ``lossd.metrics.metric_names("main")``). A metric whose counts a run
            lacks (mBF from per-image files older than the BF counts) gets NaN numbers.
        num_bootstrap: Hierarchical bootstrap replicates.
        num_permutations: Random swap patterns when the test is not enumerated exactly.
        confidence: Coverage of the percentile interval, in (0, 1).
        seed: Seed of every random draw (non-negative).
        exact_limit: Enumerate all ``2**(S*N)`` swap patterns when ``S*N`` is at most this
            (at most 20).

    Returns:
        Metric name -> :class:`PairedResult`, in the order of ``metrics``.

    Raises:
        DataFormatError: If the runs cannot be paired (:func:`aligned_counts`).
        InvalidOptionError: If a metric, class or numeric option is out of range.
    """
    known = metric_names()
    metrics = metric_names("main") if metrics is None else list(metrics)
    unknown = [m for m in metrics if m not in known]
    if unknown:
        raise InvalidOptionError(f"unknown paired metric(s) {unknown}; choose from {list(known)}")
    if num_bootstrap < 1 or num_permutations < 1:
        raise InvalidOptionError(
            f"num_bootstrap and num_permutations must be ≥ 1, got {num_bootstrap} and "
            f"{num_permutations}"
        )
    if not 0 < confidence < 1:
        raise InvalidOptionError(f"confidence must lie in (0, 1), got {confidence}")
    if seed < 0:
        raise InvalidOptionError(f"seed must be non-negative, got {seed}")
    if not 0 <= exact_limit <= _MAX_EXACT:
        raise InvalidOptionError(f"exact_limit must lie in 0..{_MAX_EXACT}, got {exact_limit}")
    names, base_counts, other_counts = aligned_counts(base, other)
    num_classes = base[0].num_classes
    classes = [int(c) for c in eval_classes]
    if not classes or any(not 0 <= c < num_classes for c in classes):
        raise InvalidOptionError(
            f"eval_classes must be a non-empty subset of 0..{num_classes - 1}, got {classes}"
        )
    tail = (1 - confidence) / 2
    results: dict[str, PairedResult] = {}
    for metric in metrics:
        per_seed = per_seed_deltas(base_counts, other_counts, classes, metric)
        replicates = hierarchical_bootstrap(
            base_counts, other_counts, classes, metric, num_bootstrap, _generator(seed, metric, 0)
        )
        if np.isnan(replicates).all():
            low, high = math.nan, math.nan
        else:
            low, high = (float(q) for q in np.nanquantile(replicates, [tail, 1 - tail]))
        p_value, used, exact = sign_flip_test(
            base_counts,
            other_counts,
            classes,
            metric,
            num_permutations,
            _generator(seed, metric, 1),
            exact_limit,
        )
        results[metric] = PairedResult(
            metric=metric,
            delta=float(np.mean(per_seed)),
            ci_low=low,
            ci_high=high,
            confidence=confidence,
            per_seed_delta=tuple(float(d) for d in per_seed),
            p_value=p_value,
            num_seeds=len(base),
            num_images=len(names),
            num_bootstrap=num_bootstrap,
            num_permutations=used,
            exact=exact,
        )
    return results


def _points(value: float, digits: int) -> str:
    """Signed percentage points, unicode minus, never ``−0.00``; ``—`` when undefined."""
    if not math.isfinite(value):
        return _MISSING
    rounded = round(value * 100, digits)
    return f"{rounded if rounded != 0 else 0.0:+.{digits}f}".replace("-", _MINUS)


def format_delta_ci(result: PairedResult, digits: int = 2) -> str:
    """``"+1.23 [+0.45, +2.01]"`` in percentage points, ``" *"`` appended when the CI excludes 0.

    A NaN ``delta`` gives ``"—"``; a NaN bound is shown as ``"—"``.
    """
    if not math.isfinite(result.delta):
        return _MISSING
    text = (
        f"{_points(result.delta, digits)} "
        f"[{_points(result.ci_low, digits)}, {_points(result.ci_high, digits)}]"
    )
    return text + (" *" if result.excludes_zero else "")
