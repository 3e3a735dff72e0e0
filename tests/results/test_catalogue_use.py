"""Tables, records, paired statistics, W&B rows and the trainer take their metrics from the
catalogue (lossd.metrics.METRICS); runs are ordered and coloured in one place
(lossd.results.order); per-image files older than the BF counts are still read."""

import ast
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lossd.metrics.catalogue as catalogue
from lossd.data import DATASET_NAMES
from lossd.metrics import (
    EVAL_CLASSES,
    METRICS,
    Metric,
    SegmentationMetrics,
    metric_names,
    per_class_names,
)
from lossd.models import MODEL_NAMES
from lossd.records import format_metrics_table, read_record, record_dir, write_record
from lossd.results import evidence, load_runs, order, plots, write_tables
from lossd.results.comparisons import paired_results, reported_per_image
from lossd.results.paired import paired_comparison
from lossd.results.wandb_runs import wandb_run_to_row

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "lossd"
# every module that names metrics for a table, a record, a printed table, W&B or the trainer
CONSUMERS = [
    SRC / "records" / "report.py",
    SRC / "engine" / "trainer.py",
    SRC / "engine" / "loggers.py",
    *sorted((SRC / "results").glob("*.py")),
]
CLASSES = ["impervious_surfaces", "building", "low_vegetation", "tree", "car", "clutter"]


# --- no literal lists of metric names outside the catalogue -----------------------------------


def _literal_metric_lists(source: str, names: set[str]) -> list[int]:
    """Lines of tuples, lists, sets and dict keys holding two or more metric names as literals."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            items = node.elts
        elif isinstance(node, ast.Dict):
            items = [k for k in node.keys if k is not None]
        else:
            continue
        literal = [i.value for i in items if isinstance(i, ast.Constant)]
        if sum(isinstance(v, str) and v in names for v in literal) >= 2:
            found.append(node.lineno)
    return found


def test_no_module_lists_metric_names_of_its_own():
    names = set(metric_names()) | set(per_class_names())
    problems = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in CONSUMERS
        for line in _literal_metric_lists(path.read_text(encoding="utf-8"), names)
    ]
    assert not problems, f"metric names listed outside lossd.metrics.catalogue: {problems}"
    # the check sees what it should
    names_today = set(metric_names()) | set(per_class_names())
    assert _literal_metric_lists('x = ("mIoU", "mF1", "OA")\n', names_today) == [1]
    assert _literal_metric_lists('y = {"IoU": "mIoU", "F1": "mF1"}\n', names_today) == [1]
    assert _literal_metric_lists('z = ("mIoU",)\nw = "mBIoU"\n', names_today) == []


# --- a metric added to the catalogue shows up everywhere --------------------------------------


def _recall(counts):
    tp = np.asarray(counts["tp"], dtype=np.float64)
    fn = np.asarray(counts["fn"], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), np.nan)


FAKE = Metric(
    name="mFake",
    label="mFake",
    per_class="Fake",
    higher_is_better=True,
    averages=EVAL_CLASSES,
    counts=("tp", "fn"),
    formula=_recall,
    description="a test metric (recall under another name)",
    tables=("main", "losses"),
)


def _study(root: Path) -> Path:
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 6, size=(4, 4, 4))
    targets = np.kron(coarse, np.ones((1, 6, 6), np.int64))
    for loss, noise in (("base", 0.3), ("lossd", 0.1), ("rmi", 0.2)):
        for seed in (0, 1):
            preds = targets.copy()
            flip = np.random.default_rng(seed * 7 + int(noise * 10)).random(targets.shape)
            preds[flip < noise] = (preds[flip < noise] + 1) % 6
            metrics = SegmentationMetrics(6, eval_classes=range(5), per_image=True)
            metrics.update(preds, targets, [f"t{i}" for i in range(4)])
            result = metrics.compute()
            record = {
                "dataset": "synthetic",
                "model": "unetformer",
                "loss": loss,
                "seed": seed,
                "status": "completed",
                "metrics": result,
                "test": {"split": "test", "checkpoint": "best", "metrics": result},
                "class_names": CLASSES,
                "eval_classes": [0, 1, 2, 3, 4],
            }
            folder = record_dir(root, "synthetic", "unetformer", loss, seed)
            write_record(folder, record, {"test": metrics.per_image_stats()})
    return root


def test_a_metric_added_to_a_copy_of_the_catalogue_shows_up_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalogue, "METRICS", (*METRICS, FAKE))
    root = _study(tmp_path / "runs")
    record = read_record(root / "synthetic/unetformer/lossd/seed0/metrics.json")
    assert "mFake" in record["metrics"] and len(record["metrics"]["Fake"]) == 6
    assert record["metrics"]["mFake"] == record["metrics"]["mRecall"]  # the same formula
    runs = load_runs(root)
    assert "mFake" in runs.columns and "Fake/building" in runs.columns
    written = {p.name for p in write_tables(runs, tmp_path / "tables")}
    assert {"main_mFake.md", "per_class_synthetic_Fake.md", "losses.md", "paired.md"} <= written
    losses = (tmp_path / "tables" / "losses.md").read_text(encoding="utf-8")
    assert "| mFake" in losses and "Δ mFake" in losses
    paired = pd.read_csv(tmp_path / "tables" / "paired.csv")
    assert list(paired["metric"].unique()) == [*metric_names("main")]
    assert "mFake" in set(paired["metric"])
    text = format_metrics_table(record["metrics"], CLASSES, [0, 1, 2, 3, 4])
    assert "Fake %" in text.splitlines()[0]
    run = type(
        "Run",
        (),
        {
            "config": {"dataset": {"name": "synthetic"}, "model": {"name": "unetformer"}},
            "summary_metrics": {"best/mFake": 0.5, "best/mIoU": 0.4},
            "state": "finished",
            "path": ["e", "p", "r"],
            "created_at": "2026-01-01",
        },
    )()
    run.config.update({"loss": {"name": "base"}, "seed": 0})
    row = wandb_run_to_row(run)
    assert row is not None and row["metrics"]["mFake"] == 0.5


def test_tables_read_the_catalogue_as_it_is_now(tmp_path: Path) -> None:
    """Without the fake metric, no trace of it (the catalogue is read when called)."""
    root = _study(tmp_path / "runs")
    written = {p.name for p in write_tables(load_runs(root), tmp_path / "tables")}
    assert not any("Fake" in name for name in written)
    assert {"main_mBF.md", "per_class_synthetic_BF.md"} <= written


# --- order and colours in one place ------------------------------------------------------------


def test_losses_datasets_and_models_in_one_order() -> None:
    losses = ["rmi", "lossd_x30", "base", "lossd", "dice", "lossd_x10", "boundary_f1"]
    assert order.ordered_losses(losses) == [
        "base",
        "lossd",
        "lossd_x10",
        "lossd_x30",
        "boundary_f1",
        "dice",
        "rmi",
    ]
    assert order.ordered_datasets(["zzz", *reversed(DATASET_NAMES)]) == [*DATASET_NAMES, "zzz"]
    assert order.ordered_models(["aaa", *reversed(MODEL_NAMES)]) == [*MODEL_NAMES, "aaa"]
    assert order.ordered_models(["sfanet", "unetformer", "sfanet"]) == ["unetformer", "sfanet"]


def test_one_colour_scheme_for_every_figure() -> None:
    assert plots.loss_colours is order.loss_colours is evidence.loss_colours
    colours = order.loss_colours(["base", "lossd", "rmi", "dtl"])
    assert colours == {"base": "0.55", "lossd": "tab:red", "rmi": "tab:blue", "dtl": "tab:orange"}
    # without "lossd", the first Lossd variant drawn is red; eleven losses, eleven colours
    study = ["base", "lossd_x30", "abl", "boundary_dou", "boundary_f1", "boundary_kervadec"]
    study += ["cldice", "dtl", "hd_dt", "lovasz", "rmi"]
    colours = order.loss_colours(study)
    assert colours["base"] == "0.55" and colours["lossd_x30"] == "tab:red"
    assert len(set(colours.values())) == 11
    lambdas = order.loss_colours(["base", "lossd", "lossd_x10", "lossd_x30"])
    assert lambdas == {
        "base": "0.55",
        "lossd": "tab:red",
        "lossd_x10": "tab:blue",
        "lossd_x30": "tab:orange",
    }
    assert not hasattr(plots, "_loss_colours") and not hasattr(evidence, "_colours")


# --- per-image files written before the BF counts -----------------------------------------------


def test_committed_per_image_files_without_bf_counts_are_read() -> None:
    study = ROOT / "results" / "runs" / "synthetic_lambda_full" / "synthetic" / "unetformer"
    base, other = [], []
    for seed in (0, 1):
        for runs, loss in ((base, "base"), (other, "lossd_x30")):
            record = read_record(study / loss / f"seed{seed}" / "metrics.json")
            runs.append(reported_per_image(record))
    assert not base[0].has_bf and "mBF" not in base[0].scores([0, 1, 2, 3, 4])
    results = paired_comparison(
        base, other, [0, 1, 2, 3, 4], ["mIoU", "mBF"], num_bootstrap=50, num_permutations=50
    )
    assert math.isfinite(results["mIoU"].delta) and results["mIoU"].delta > 0
    assert math.isnan(results["mBF"].delta) and math.isnan(results["mBF"].p_value)


def test_paired_results_give_the_bf_score_when_the_records_hold_its_counts(tmp_path: Path) -> None:
    root = _study(tmp_path / "runs")
    frame = paired_results(load_runs(root), num_bootstrap=50, num_permutations=50)
    bf = frame[frame["metric"] == "mBF"]
    assert len(bf) == 2 and bf["delta"].notna().all()  # these records have the counts
