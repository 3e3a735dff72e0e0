"""Paired comparisons (lossd.results.comparisons) and error profiles (lossd.results.evidence)
from per-image counts."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lossd.errors import DataFormatError, DatasetNotFoundError, InvalidOptionError
from lossd.metrics import PROFILE_DISTANCES, SegmentationMetrics
from lossd.records import read_per_image, read_record, record_dir, write_record
from lossd.results import load_runs, main_table, write_tables
from lossd.results.comparisons import paired_lookup, paired_results, reported_per_image
from lossd.results.evidence import error_profiles, plot_error_profile, write_figures
from tests.metrics.test_per_image import _naive_profile

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ["impervious_surfaces", "building", "low_vegetation", "tree", "car", "clutter"]
EVAL = [0, 1, 2, 3, 4]


def _targets(count: int = 6, size: int = 24) -> np.ndarray:
    rng = np.random.default_rng(100)
    coarse = rng.integers(0, 6, size=(count, size // 6, size // 6))
    return np.kron(coarse, np.ones((1, 6, 6), np.int64))


def _prediction(seed: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """``_targets()`` with a fraction ``noise`` of its pixels set to random classes."""
    targets = _targets()
    rng = np.random.default_rng(seed * 10 + int(noise * 100))
    preds = targets.copy()
    flip = rng.random(targets.shape) < noise
    preds[flip] = rng.integers(0, 6, size=int(flip.sum()))
    return preds, targets


def _record_with_counts(root: Path, loss: str, seed: int, noise: float, split: str = "test"):
    """A record whose metrics and per-image counts come from one noisy prediction of targets."""
    preds, targets = _prediction(seed, noise)
    metrics = SegmentationMetrics(6, eval_classes=EVAL, diagnostics=True, per_image=True)
    metrics.update(preds, targets, [f"tile{i}" for i in range(len(targets))])
    result = metrics.compute()
    record = {
        "dataset": "synthetic",
        "model": "unetformer",
        "loss": loss,
        "seed": seed,
        "status": "completed",
        "metrics": result,
        "class_names": CLASSES,
        "eval_classes": EVAL,
    }
    if split == "test":
        record["test"] = {"split": "test", "checkpoint": "best", "metrics": result}
    folder = record_dir(root, "synthetic", "unetformer", loss, seed)
    write_record(folder, record, {split: metrics.per_image_stats()})
    return result


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("study")
    scores = {}
    for seed in range(3):
        scores[("base", seed)] = _record_with_counts(root, "base", seed, 0.30)
        scores[("lossd", seed)] = _record_with_counts(root, "lossd", seed, 0.10)
    return root, scores


def test_paired_results_agree_with_the_records_and_see_a_real_gain(study) -> None:
    root, scores = study
    paired = paired_results(load_runs(root), num_bootstrap=500, num_permutations=2000)
    assert list(paired["metric"].unique()) == ["mIoU", "mF1", "OA", "mBIoU", "mBF"]
    for _, row in paired.iterrows():
        # the records' metrics come from SegmentationMetrics.compute (its running totals), the
        # paired numbers from the per-image rows summed: the same counts, the same formula,
        # correctly rounded means, hence the same values to the last bit
        per_seed = [
            scores[("lossd", s)][row["metric"]] - scores[("base", s)][row["metric"]]
            for s in range(3)
        ]
        assert row["per_seed_delta"] == per_seed
        assert row["delta"] == pytest.approx(np.mean(per_seed), rel=1e-12)
        assert 0 < row["ci_low"] <= row["delta"] <= row["ci_high"]
        assert row["excludes_zero"] and row["p_value"] < 0.01
        assert (row["num_seeds"], row["num_images"], row["seeds"]) == (3, 6, [0, 1, 2])


def test_tables_show_the_interval_and_the_paired_table(study, tmp_path: Path) -> None:
    root, _ = study
    runs = load_runs(root)
    paired = paired_results(runs, num_bootstrap=300, num_permutations=500)
    lookup = paired_lookup(paired)
    table = main_table(runs, metric="mIoU", paired=lookup)
    cell = table.display["Δ [95 % CI]"].iloc[0]
    result = lookup[("synthetic", "unetformer", "lossd", "mIoU")]
    assert cell.endswith(" *") and cell.startswith(f"+{result.delta * 100:.2f} [")
    assert table.data["delta_ci_low"].iloc[0] == pytest.approx(result.ci_low * 100)
    written = write_tables(runs, tmp_path, paired=paired)
    assert (tmp_path / "paired.md").is_file() and tmp_path / "paired.csv" in written
    text = (tmp_path / "paired.md").read_text(encoding="utf-8")
    assert "hierarchical bootstrap" in text and "sign-flip permutation" in text
    # computed by write_tables itself: seeded, so two calls give the same bytes
    first = write_tables(runs, tmp_path / "a")
    second = write_tables(runs, tmp_path / "b")
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()


def test_error_profiles_sum_the_counts_of_the_evaluated_classes(study) -> None:
    root, _ = study
    runs = load_runs(root)
    profiles = error_profiles(runs)
    assert list(profiles["distance"].unique()) == list(PROFILE_DISTANCES)
    base = profiles[profiles["loss"] == "base"].set_index("distance")
    lossd = profiles[profiles["loss"] == "lossd"].set_index("distance")
    # the pixels at a signed distance depend on the targets only: equal for both losses
    np.testing.assert_array_equal(base["pixels"], lossd["pixels"])
    # independent: the base runs' predictions scored pixel by pixel with scipy's transform
    expected = np.zeros(len(PROFILE_DISTANCES))
    for seed in range(3):
        for pred, target in zip(*_prediction(seed, 0.30), strict=True):
            expected += _naive_profile(pred, target, 6)[1][EVAL].sum(axis=0)
    np.testing.assert_array_equal(base["errors"], expected)
    assert (base["runs"] == 3).all()
    seen = base["pixels"] > 0
    assert (lossd["error_rate"][seen] <= base["error_rate"][seen] + 1e-12).mean() > 0.8
    assert ((base["rate_min"] <= base["error_rate"]) | ~seen).all()


def test_figures_are_written_byte_for_byte_again(study, tmp_path: Path) -> None:
    root, _ = study
    runs = load_runs(root)
    first = write_figures(runs, tmp_path / "a")
    assert sorted(p.name for p in first) == [
        "errors_synthetic_unetformer.csv",
        "errors_synthetic_unetformer.png",
        "errors_synthetic_unetformer.svg",
    ]
    second = write_figures(runs, tmp_path / "b")
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()


def test_the_change_panel_turns_logarithmic_only_when_a_loss_is_far_off_the_base(
    study, tmp_path: Path
) -> None:
    root, _ = study
    runs = load_runs(root)  # Lossd at a third of the base's noise: at most -100 % everywhere
    near = plot_error_profile(error_profiles(runs), runs, "synthetic", "unetformer")
    assert near.axes[1].get_yscale() == "linear"
    for seed in range(3):  # a loss with three times the base's noise: about +150 % and more
        _record_with_counts(root / "far", "base", seed, 0.30)
        _record_with_counts(root / "far", "dtl", seed, 0.95)
    runs = load_runs(root / "far")
    profiles = error_profiles(runs)
    far = plot_error_profile(profiles, runs, "synthetic", "unetformer")
    assert far.axes[1].get_yscale() == "symlog"
    curves = [line for line in far.axes[1].lines if len(line.get_xdata()) > 2]  # not the rules
    drawn = np.concatenate([line.get_ydata() for line in curves])
    base = profiles[profiles["loss"] == "base"].set_index("distance")
    bad = profiles[profiles["loss"] == "dtl"].set_index("distance")["error_rate"]
    shown = base["errors"] >= 100 * 3  # bins with at least 100 base errors per run
    expected = 100.0 * (bad / base["error_rate"] - 1.0)[shown & (base.index != 0)]
    assert np.sort(drawn[np.isfinite(drawn)]) == pytest.approx(np.sort(expected.to_numpy()))
    assert expected.max() > 100.0


def test_the_cli_draws_figures_where_asked(study, tmp_path: Path) -> None:
    root, _ = study
    command = [sys.executable, "scripts/make_tables.py", "--runs", str(root)]
    command += ["--out", str(tmp_path / "tables"), "--figures", str(tmp_path / "figures")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    assert "paired.{md,tex,csv}" in done.stdout
    assert (tmp_path / "figures" / "errors_synthetic_unetformer.svg").is_file()


def test_records_without_counts_or_with_a_foreign_file(tmp_path: Path) -> None:
    _record_with_counts(tmp_path / "a", "base", 0, 0.2, split="val")
    path = next((tmp_path / "a").rglob("metrics.json"))
    record = read_record(path)
    assert reported_per_image(record).names[0] == "tile0"  # no test block: validation
    _record_with_counts(tmp_path / "b", "base", 0, 0.3, split="val")
    other = next((tmp_path / "b").rglob("per_image.npz"))
    path.with_name("per_image.npz").write_bytes(other.read_bytes())
    with pytest.raises(DataFormatError, match="do not belong to run record"):
        reported_per_image(read_record(path))
    bare = dict(record)
    bare.pop("per_image")
    with pytest.raises(DatasetNotFoundError, match="no per-image counts"):
        read_per_image(bare)
    with pytest.raises(InvalidOptionError, match=r"metrics\.diagnostics=true"):
        write_figures(pd.DataFrame(load_runs(tmp_path / "a")).iloc[:0], tmp_path / "f")
