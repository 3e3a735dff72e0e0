"""Paired bootstrap and sign-flip test, checked against brute-force enumeration in plain Python.

The reference metric here (``plain_metric``) recomputes IoU, F1, BIoU, BF and OA from summed
counts with Python integers, independently of the metric catalogue (lossd.metrics.METRICS).
"""

import itertools
import json
import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pytest

from lossd.errors import DataFormatError, InvalidOptionError
from lossd.metrics import PerImageStats, metric_names
from lossd.results import paired
from lossd.results.paired import (
    PairedResult,
    aligned_counts,
    format_delta_ci,
    hierarchical_bootstrap,
    paired_comparison,
)

FIELDS = ("tp", "fp", "fn", "band_intersection", "band_union")
BF_FIELDS = ("bf_pred_boundary", "bf_pred_matched", "bf_target_boundary", "bf_target_matched")
PAIRED_METRICS = ("mIoU", "mF1", "OA", "mBIoU", "mBF")  # the main tables' metrics, literally


def make_run(rng, num_images, num_classes=3, names=None, bf=True):
    """Random small counts, band intersection ≤ union, BF matched ≤ boundary pixels."""
    shape = (num_images, num_classes)
    union = rng.integers(0, 30, shape)
    counts = {}
    if bf:
        pred, target = rng.integers(0, 30, shape), rng.integers(0, 30, shape)
        counts = {
            "bf_pred_boundary": pred,
            "bf_pred_matched": (pred * rng.random(shape)).astype(np.int64),
            "bf_target_boundary": target,
            "bf_target_matched": (target * rng.random(shape)).astype(np.int64),
        }
    return PerImageStats(
        names=tuple(names or (f"img{i:03d}" for i in range(num_images))),
        tp=rng.integers(0, 50, shape),
        fp=rng.integers(0, 20, shape),
        fn=rng.integers(0, 20, shape),
        band_intersection=(union * rng.random(shape)).astype(np.int64),
        band_union=union,
        **counts,
    )


def make_runs(seed, num_seeds, num_images, num_classes=3):
    rng = np.random.default_rng(seed)
    base = [make_run(rng, num_images, num_classes) for _ in range(num_seeds)]
    other = [make_run(rng, num_images, num_classes) for _ in range(num_seeds)]
    return base, other


def plain_sums(rows):
    """Per-class sums of ``(run, row index)`` pairs, in Python integers."""
    num_classes = rows[0][0].num_classes
    fields = FIELDS + (BF_FIELDS if rows[0][0].bf_pred_boundary is not None else ())
    return {
        f: [sum(int(getattr(run, f)[i, c]) for run, i in rows) for c in range(num_classes)]
        for f in fields
    }


def plain_metric(sums, classes, metric):
    if metric == "OA":  # every class, not only the evaluated ones
        valid = sum(sums["tp"]) + sum(sums["fp"])
        return sum(sums["tp"]) / valid if valid else math.nan
    values = []
    for c in classes:
        tp, fp, fn = sums["tp"][c], sums["fp"][c], sums["fn"][c]
        if metric == "mBF":
            pred, target = sums["bf_pred_boundary"][c], sums["bf_target_boundary"][c]
            if pred + target == 0:
                continue
            p = sums["bf_pred_matched"][c] / pred if pred else 0.0
            r = sums["bf_target_matched"][c] / target if target else 0.0
            values.append(2 * p * r / (p + r) if p + r else 0.0)
            continue
        if metric == "mIoU":
            num, den = tp, tp + fp + fn
        elif metric == "mF1":
            num, den = 2 * tp, 2 * tp + fp + fn
        else:
            num, den = sums["band_intersection"][c], sums["band_union"][c]
        if den > 0:
            values.append(num / den)
    return sum(values) / len(values) if values else math.nan


def plain_delta(base_run, other_run, rows, classes, metric):
    """``M(other) − M(base)`` of the images ``rows`` (repetition allowed)."""
    return plain_metric(plain_sums([(other_run, i) for i in rows]), classes, metric) - plain_metric(
        plain_sums([(base_run, i) for i in rows]), classes, metric
    )


def brute_force_p(base, other, classes, metric):
    """Exact sign-flip p-value: every swap pattern of every (seed, image), identity included."""
    num_seeds, num_images = len(base), base[0].num_images

    def statistic(flips):
        deltas = []
        for s in range(num_seeds):
            pattern = flips[s * num_images : (s + 1) * num_images]
            new_base = [((other if f else base)[s], i) for i, f in enumerate(pattern)]
            new_other = [((base if f else other)[s], i) for i, f in enumerate(pattern)]
            deltas.append(
                plain_metric(plain_sums(new_other), classes, metric)
                - plain_metric(plain_sums(new_base), classes, metric)
            )
        return sum(deltas) / num_seeds

    observed = statistic([0] * (num_seeds * num_images))
    patterns = list(itertools.product([0, 1], repeat=num_seeds * num_images))
    extreme = sum(abs(statistic(f)) >= abs(observed) - 1e-12 for f in patterns)
    return extreme / len(patterns)


def exact_distribution(values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and their probabilities, outcomes equally likely."""
    counts = Counter(round(v, 12) for v in values)
    atoms = np.array(sorted(counts))
    return atoms, np.array([counts[a] for a in atoms]) / len(values)


def max_cdf_gap(samples, atoms, probs):
    """Kolmogorov distance between the samples and a discrete distribution, at its atoms."""
    exact_cdf = np.cumsum(probs)
    sample_cdf = np.array([np.mean(samples <= a + 1e-12) for a in atoms])
    return float(np.max(np.abs(sample_cdf - exact_cdf)))


def improved(run, k=2):
    """``run`` better on every image and class: k pixels moved from FP/FN to TP, and to I, and
    k more boundary pixels matched."""
    return PerImageStats(
        names=run.names,
        tp=run.tp + 2 * k,
        fp=run.fp - k,
        fn=run.fn - k,
        band_intersection=run.band_intersection + k,
        band_union=run.band_union,
        bf_pred_boundary=run.bf_pred_boundary,
        bf_pred_matched=run.bf_pred_matched + k,
        bf_target_boundary=run.bf_target_boundary,
        bf_target_matched=run.bf_target_matched + k,
    )


def test_identical_runs_give_zero_delta_and_p_one():
    for num_seeds, num_images in ((3, 8), (2, 3)):  # Monte Carlo (24 > 16), exact (6 ≤ 16)
        base, _ = make_runs(0, num_seeds, num_images)
        fields = ("names", *FIELDS, *BF_FIELDS)
        other = [PerImageStats(**{f: getattr(r, f) for f in fields}) for r in base]
        results = paired_comparison(base, other, [0, 1, 2], num_bootstrap=300, num_permutations=300)
        assert tuple(results) == PAIRED_METRICS == metric_names("main")
        for r in results.values():
            assert r.delta == 0.0
            assert r.per_seed_delta == (0.0,) * num_seeds
            assert r.ci_low == 0.0 and r.ci_high == 0.0
            assert not r.excludes_zero
            assert r.p_value == 1.0
            assert r.exact is (num_images == 3)


def test_better_on_every_image_is_detected():
    rng = np.random.default_rng(1)
    base = [make_run(rng, 40) for _ in range(3)]
    base = [
        PerImageStats(
            names=r.names,
            tp=r.tp,
            fp=r.fp + 2,
            fn=r.fn + 2,
            band_intersection=r.band_intersection,
            band_union=r.band_union + 2,
            bf_pred_boundary=r.bf_pred_boundary + 2,
            bf_pred_matched=r.bf_pred_matched,
            bf_target_boundary=r.bf_target_boundary + 2,
            bf_target_matched=r.bf_target_matched,
        )
        for r in base
    ]  # room to move 2 pixels on every image and class
    other = [improved(r) for r in base]
    results = paired_comparison(base, other, [0, 1, 2], num_bootstrap=500, num_permutations=2000)
    for r in results.values():
        assert r.delta > 0
        assert all(d > 0 for d in r.per_seed_delta)
        assert r.ci_low > 0 and r.ci_high >= r.ci_low
        assert r.excludes_zero
        assert r.p_value < 0.01
        assert r.p_value == pytest.approx(1 / 2001)  # no random pattern is as extreme
        assert not r.exact and r.num_permutations == 2000
        assert (r.num_seeds, r.num_images, r.num_bootstrap) == (3, 40, 500)
    reverse = paired_comparison(other, base, [0, 1, 2], num_bootstrap=500, num_permutations=2000)
    for r in reverse.values():
        assert r.delta < 0 and r.ci_high < 0 and r.excludes_zero


@pytest.mark.parametrize("metric", PAIRED_METRICS)
def test_bootstrap_one_seed_matches_all_resamples(metric):
    base, other = make_runs(2, num_seeds=1, num_images=3)
    classes = [0, 1, 2]
    exact = [
        plain_delta(base[0], other[0], rows, classes, metric)
        for rows in itertools.product(range(3), repeat=3)
    ]  # the 27 equally likely ordered resamples
    atoms, probs = exact_distribution(exact)
    _, b, o = aligned_counts(base, other)
    samples = hierarchical_bootstrap(b, o, classes, metric, 20000, np.random.default_rng(0))
    assert samples.shape == (20000,)
    assert np.mean(samples) == pytest.approx(np.mean(exact), abs=0.002)
    assert all(np.min(np.abs(atoms - v)) < 1e-12 for v in np.unique(samples))
    # each atom has probability ≥ 1/27 > 2.5%, so the bootstrap's 2.5% and 97.5% quantiles are
    # the exact distribution's smallest and largest values
    low, high = np.quantile(samples, [0.025, 0.975])
    assert low == pytest.approx(atoms[0], abs=1e-12)
    assert high == pytest.approx(atoms[-1], abs=1e-12)
    assert max_cdf_gap(samples, atoms, probs) < 0.02


def test_bootstrap_resamples_seeds_then_images():
    base, other = make_runs(3, num_seeds=2, num_images=3)
    classes = [0, 1, 2]
    exact = []
    for seeds in itertools.product(range(2), repeat=2):
        for draws in itertools.product(itertools.product(range(3), repeat=3), repeat=2):
            deltas = [
                plain_delta(base[s], other[s], rows, classes, "mIoU")
                for s, rows in zip(seeds, draws, strict=True)
            ]
            exact.append(sum(deltas) / 2)  # 4 · 27 · 27 equally likely outcomes
    atoms, probs = exact_distribution(exact)
    _, b, o = aligned_counts(base, other)
    samples = hierarchical_bootstrap(b, o, classes, "mIoU", 20000, np.random.default_rng(1))
    assert np.mean(samples) == pytest.approx(np.mean(exact), abs=0.002)
    assert all(np.min(np.abs(atoms - v)) < 1e-12 for v in np.unique(samples))
    assert max_cdf_gap(samples, atoms, probs) < 0.02


@pytest.mark.parametrize(("num_seeds", "num_images"), [(1, 4), (2, 3)])
def test_exact_sign_flip_matches_brute_force(num_seeds, num_images):
    base, other = make_runs(4, num_seeds, num_images)
    results = paired_comparison(base, other, [0, 1, 2], num_bootstrap=50)
    for metric, r in results.items():
        assert r.exact and r.num_permutations == 2 ** (num_seeds * num_images)
        assert r.p_value == brute_force_p(base, other, [0, 1, 2], metric)


def test_monte_carlo_p_value_is_close_to_exact():
    base, other = make_runs(5, num_seeds=2, num_images=4)
    common = {"num_bootstrap": 50, "num_permutations": 20000}
    exact = paired_comparison(base, other, [0, 1, 2], exact_limit=16, **common)
    sampled = paired_comparison(base, other, [0, 1, 2], exact_limit=0, **common)
    for metric in PAIRED_METRICS:
        assert exact[metric].exact and exact[metric].num_permutations == 256
        assert not sampled[metric].exact and sampled[metric].num_permutations == 20000
        assert sampled[metric].p_value >= 1 / 20001
        assert sampled[metric].p_value == pytest.approx(exact[metric].p_value, abs=0.02)
    assert 0.05 < exact["mIoU"].p_value < 0.95  # a case where the two could disagree


def test_point_estimate_is_mean_of_per_seed_differences():
    base, other = make_runs(6, num_seeds=3, num_images=6)
    classes = [0, 2]
    results = paired_comparison(base, other, classes, num_bootstrap=50, num_permutations=50)
    rows = range(6)
    for metric, r in results.items():
        per_seed = [
            plain_delta(b, o, rows, classes, metric) for b, o in zip(base, other, strict=True)
        ]
        assert r.per_seed_delta == pytest.approx(per_seed, abs=1e-12)
        assert r.delta == pytest.approx(sum(per_seed) / 3, abs=1e-12)
        other_mean = np.mean([run.scores(classes)[metric] for run in other])
        base_mean = np.mean([run.scores(classes)[metric] for run in base])
        assert r.delta == pytest.approx(other_mean - base_mean, abs=1e-12)
        assert r.delta != 0
        assert r.ci_low <= r.delta <= r.ci_high


def test_same_seed_same_numbers_other_seed_other_interval():
    base, other = make_runs(7, num_seeds=3, num_images=10)
    options = {"num_bootstrap": 300, "num_permutations": 300}
    first = paired_comparison(base, other, [0, 1, 2], seed=11, **options)
    again = paired_comparison(base, other, [0, 1, 2], seed=11, **options)
    changed = paired_comparison(base, other, [0, 1, 2], seed=12, **options)
    for metric in PAIRED_METRICS:
        assert first[metric].to_dict() == again[metric].to_dict()
        assert first[metric].delta == changed[metric].delta
        assert first[metric].ci_low != changed[metric].ci_low
        assert first[metric].ci_high != changed[metric].ci_high
    alone = paired_comparison(base, other, [0, 1, 2], ["mBIoU"], seed=11, **options)
    assert list(alone) == ["mBIoU"]
    assert alone["mBIoU"] == first["mBIoU"]  # one metric's numbers ignore the others


def test_numbers_do_not_depend_on_chunk_size(monkeypatch):
    base, other = make_runs(8, num_seeds=2, num_images=10)
    options = {"num_bootstrap": 40, "num_permutations": 40}
    whole = paired_comparison(base, other, [0, 1, 2], **options)
    monkeypatch.setattr(paired, "_CHUNK_BYTES", 1)  # one replicate or pattern per chunk
    assert paired_comparison(base, other, [0, 1, 2], **options) == whole


def test_rows_are_matched_by_name():
    base, other = make_runs(9, num_seeds=2, num_images=12)
    options = {"num_bootstrap": 200, "num_permutations": 200}
    expected = paired_comparison(base, other, [0, 1, 2], **options)
    perm = np.random.default_rng(0).permutation(12)
    shuffled_other = [other[0], other[1].take(perm)]
    shuffled_base = [base[0].take(perm[::-1]), base[1]]
    assert shuffled_other[1].names != other[1].names
    assert paired_comparison(shuffled_base, shuffled_other, [0, 1, 2], **options) == expected


def test_different_images_raise_naming_them():
    base, other = make_runs(10, num_seeds=3, num_images=8)
    with pytest.raises(DataFormatError, match=r"other run of seed 2 .*lacks 'img000'"):
        paired_comparison(base, [other[0], other[1], other[2].take(range(1, 8))], [0])
    extra = PerImageStats.concat([other[1], make_run(np.random.default_rng(0), 1, names=["zzz"])])
    with pytest.raises(DataFormatError, match=r"other run of seed 1 .*has extra 'zzz'"):
        paired_comparison(base, [other[0], extra, other[2]], [0])
    with pytest.raises(DataFormatError, match=r"base run of seed 1 .*'img003', 'img004', 'img005'"):
        paired_comparison([base[0], base[1].take(range(3)), base[2]], other, [0])
    with pytest.raises(DataFormatError, match="and 2 more"):
        paired_comparison([base[0], base[1].take(range(3)), base[2]], other, [0])
    repeated = base[1].take([0, 0, 1, 2, 3, 4, 5, 6, 7])
    with pytest.raises(DataFormatError, match="'img000' more than once"):
        paired_comparison([base[0], repeated, base[2]], other, [0])


def test_different_class_counts_raise():
    base, other = make_runs(11, num_seeds=2, num_images=5)
    wider = make_run(np.random.default_rng(0), 5, num_classes=4)
    with pytest.raises(DataFormatError, match="other run of seed 1 has 4 classes"):
        paired_comparison(base, [other[0], wider], [0])


def test_mismatched_seed_counts_raise():
    base, other = make_runs(12, num_seeds=3, num_images=5)
    with pytest.raises(DataFormatError, match="3 base and 2 other"):
        paired_comparison(base, other[:2], [0, 1, 2])
    with pytest.raises(DataFormatError, match="0 base and 0 other"):
        paired_comparison([], [], [0, 1, 2])


@pytest.mark.parametrize(
    ("option", "match"),
    [
        ({"metrics": ["mAcc"]}, "unknown paired metric"),
        ({"confidence": 1.0}, "confidence"),
        ({"num_bootstrap": 0}, "num_bootstrap"),
        ({"exact_limit": 21}, "exact_limit"),
        ({"seed": -1}, "seed"),
        ({"eval_classes": [0, 3]}, "eval_classes"),
    ],
)
def test_invalid_options_raise(option, match):
    base, other = make_runs(13, num_seeds=1, num_images=4)
    kwargs = {"eval_classes": [0, 1, 2], **option}
    with pytest.raises(InvalidOptionError, match=match):
        paired_comparison(base, other, **kwargs)


def test_resamples_without_support_are_skipped():
    base, other = make_runs(14, num_seeds=1, num_images=6)
    zero = np.zeros_like(base[0].tp)
    keep = zero.copy()
    keep[0] = 1  # class support on image 0 only

    def only_image_zero(run):
        return PerImageStats(
            names=run.names,
            tp=run.tp * keep,
            fp=run.fp * keep,
            fn=run.fn * keep,
            band_intersection=zero,
            band_union=zero,
        )

    base, other = [only_image_zero(base[0])], [only_image_zero(other[0])]
    _, b, o = aligned_counts(base, other)
    samples = hierarchical_bootstrap(b, o, [0], "mIoU", 500, np.random.default_rng(0))
    assert np.isnan(samples).any() and not np.isnan(samples).all()
    result = paired_comparison(base, other, [0], num_bootstrap=500)
    iou = result["mIoU"]
    assert math.isfinite(iou.ci_low) and iou.ci_low == iou.ci_high == iou.delta  # one image
    biou = result["mBIoU"]  # no band anywhere: undefined
    assert math.isnan(biou.delta) and math.isnan(biou.ci_low) and math.isnan(biou.p_value)
    assert not biou.excludes_zero
    assert format_delta_ci(biou) == "—"


def result_with(delta, low, high):
    return PairedResult(
        metric="mIoU",
        delta=delta,
        ci_low=low,
        ci_high=high,
        confidence=0.95,
        per_seed_delta=(delta,),
        p_value=0.5,
        num_seeds=1,
        num_images=3,
        num_bootstrap=10,
        num_permutations=8,
        exact=True,
    )


@pytest.mark.parametrize(
    ("values", "digits", "text"),
    [
        ((0.0123, 0.0045, 0.0201), 2, "+1.23 [+0.45, +2.01] *"),
        ((-0.0123, -0.02, 0.001), 2, "-1.23 [-2.00, +0.10]"),
        ((-0.0123, -0.02, -0.001), 2, "-1.23 [-2.00, -0.10] *"),
        ((-0.00001, -0.001, 0.001), 2, "+0.00 [-0.10, +0.10]"),  # never "-0.00"
        ((0.0123, 0.0, 0.02), 1, "+1.2 [+0.0, +2.0]"),  # a bound at 0 does not exclude it
        ((math.nan, math.nan, math.nan), 2, "—"),
        ((0.01, math.nan, math.nan), 2, "+1.00 [—, —]"),
    ],
)
def test_format_delta_ci(values, digits, text):
    assert format_delta_ci(result_with(*values), digits=digits) == text


def test_to_dict_is_plain():
    result = result_with(0.0123, 0.0045, 0.0201)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["per_seed_delta"] == [0.0123]
    assert data["excludes_zero"] is True
    assert data["exact"] is True and data["num_permutations"] == 8


def test_runs_without_bf_counts_give_nan_bf_and_the_same_other_numbers():
    """Per-image files older than the BF counts: mBF is NaN ("—"), every other metric as before."""
    with_bf = make_runs(15, num_seeds=2, num_images=6)
    without = [
        [PerImageStats(**{f: getattr(r, f) for f in ("names", *FIELDS)}) for r in runs]
        for runs in with_bf
    ]
    options = {"num_bootstrap": 200, "num_permutations": 200}
    full = paired_comparison(*with_bf, [0, 1, 2], **options)
    old = paired_comparison(*without, [0, 1, 2], **options)
    mixed = paired_comparison(with_bf[0], without[1], [0, 1, 2], **options)
    assert list(old) == list(full) == list(PAIRED_METRICS)
    for metric in PAIRED_METRICS:
        if metric == "mBF":
            for result in (old[metric], mixed[metric]):
                assert math.isnan(result.delta) and math.isnan(result.ci_low)
                assert math.isnan(result.p_value) and format_delta_ci(result) == "—"
            assert math.isfinite(full[metric].delta)
        else:
            assert old[metric] == full[metric] == mixed[metric]


def test_the_random_streams_are_pinned():
    """Regression pin of the committed tables' numbers: the bootstrap and permutation streams
    of (seed, metric, stage) give these bounds and p-values, to the last digit (values of
    lossd 0.2.0). A different stream is as valid statistically but changes published numbers."""
    expected = {
        1: (-0.07393209617226029, 0.07081132238198479, 0.91259765625, True, 4096),
        2: (-0.10349211515731588, 0.04105164617972685, 0.4584717607973422, False, 300),
    }
    for num_seeds, (low, high, p_value, exact, patterns) in expected.items():
        base, other = make_runs(21, num_seeds=num_seeds, num_images=12)
        r = paired_comparison(
            base, other, [0, 1, 2], ["mIoU"], num_bootstrap=200, num_permutations=300, seed=5
        )["mIoU"]
        assert (r.ci_low, r.ci_high, r.p_value, r.exact, r.num_permutations) == (
            low,
            high,
            p_value,
            exact,
            patterns,
        )


def test_defaults_and_option_boundaries():
    base, other = make_runs(22, num_seeds=2, num_images=9)  # 18 cells > 16: Monte Carlo
    r = paired_comparison(base, other, [0, 1, 2], ["mIoU"])["mIoU"]
    assert (r.num_bootstrap, r.num_permutations, r.confidence, r.exact) == (
        2000,
        10000,
        0.95,
        False,
    )
    one = paired_comparison(base, other, [0, 1, 2], ["mIoU"], num_bootstrap=1, num_permutations=1)
    assert one["mIoU"].num_bootstrap == 1 and one["mIoU"].num_permutations == 1
    for confidence in (0.0, 1.0, -0.5):
        with pytest.raises(InvalidOptionError, match="confidence"):
            paired_comparison(base, other, [0, 1, 2], confidence=confidence)


def test_to_dict_keys_and_the_default_digits():
    result = result_with(0.0123, 0.0045, 0.0201)
    assert list(result.to_dict()) == [
        "metric",
        "delta",
        "ci_low",
        "ci_high",
        "confidence",
        "per_seed_delta",
        "p_value",
        "num_seeds",
        "num_images",
        "num_bootstrap",
        "num_permutations",
        "exact",
        "excludes_zero",
    ]
    assert result.to_dict()["confidence"] == 0.95 and result.to_dict()["num_images"] == 3
    assert result.to_dict()["p_value"] == 0.5
    assert format_delta_ci(result) == "+1.23 [+0.45, +2.01] *"


def test_image_lists_in_messages():
    base, other = make_runs(23, num_seeds=1, num_images=7)
    # four missing images: three named, "and 1 more"; nothing extra, so no "has extra"
    with pytest.raises(DataFormatError) as info:
        paired_comparison(base, [other[0].take(range(3))], [0])
    message = str(info.value)
    assert "it lacks 'img003', 'img004', 'img005' and 1 more; evaluate" in message
    assert "has extra" not in message
    # exactly three: all named, no "more"
    with pytest.raises(DataFormatError, match=r"it lacks 'img004', 'img005', 'img006'; evaluate"):
        paired_comparison(base, [other[0].take(range(4))], [0])
    empty = base[0].take([])
    with pytest.raises(
        DataFormatError, match=r"^paired comparison needs at least one evaluated image$"
    ):
        paired_comparison([empty], [empty], [0])
