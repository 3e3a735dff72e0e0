"""Figures of the runs: the plotted numbers are checked against hand-computed values."""

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lossd.errors import CheckpointError, InvalidOptionError
from lossd.io import read_mask
from lossd.results import (
    error_histograms,
    load_runs,
    plot_class_deltas,
    plot_error_histograms,
    plot_examples,
    plot_metric_scatter,
    predict_examples,
)
from lossd.results.plots import Example
from tests.results.test_tables import POTSDAM, RECORDS, _record, write_runs

BINS = ["1", "2-3", "4-7", "8-15", "16-31", "32+"]


def _with_histograms(loss: str, seed: int, fp: list[list[int]], fn: list[list[int]]) -> dict:
    record = _record("potsdam", "unetformer", loss, seed, 0.5, 0.6, 0.3)
    # the histograms of the reported metrics: the test block (tests/results/test_tables.py)
    record["test"]["metrics"].update(fp_distance_hist=fp, fn_depth_hist=fn, diagnostic_bins=BINS)
    return record


def _uniform(value: int, clutter: int = 100) -> list[list[int]]:
    """Six classes × six bins: ``value`` everywhere, the clutter row (not evaluated) ``clutter``."""
    return [[value] * 6 for _ in range(5)] + [[clutter] * 6]


HISTOGRAM_RECORDS = [
    # base: 1 and 3 pixels per class and bin -> 5 and 15 over the 5 evaluated classes -> mean 10
    _with_histograms("base", 0, _uniform(1), _uniform(0)),
    _with_histograms("base", 1, _uniform(3), _uniform(0)),
    # +Lossd: 10 false positives of class 0 at distance 1; 2 false negatives per class at 32+
    _with_histograms(
        "lossd",
        0,
        [[10, 0, 0, 0, 0, 0]] + [[0] * 6 for _ in range(4)] + [[7] * 6],
        [[0, 0, 0, 0, 0, 2] for _ in range(6)],
    ),
]


@pytest.fixture
def runs(tmp_path: Path) -> pd.DataFrame:
    return load_runs(write_runs(tmp_path / "runs"))


def test_class_deltas_bars_are_the_per_class_differences(runs: pd.DataFrame) -> None:
    fig = plot_class_deltas(runs, "loveda", "IoU")
    ax = fig.axes[0]
    heights = [bar.get_height() for bar in ax.patches]
    assert len(heights) == 2 * 7  # UNetFormer, SFA-Net × 7 classes
    assert heights[:7] == pytest.approx([0.0, 7.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert all(math.isnan(h) for h in heights[7:])  # SFA-Net has no base run: no bars
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["background", "building"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["UNetFormer", "SFA-Net"]
    with pytest.raises(InvalidOptionError, match="uavid"):
        plot_class_deltas(runs, "uavid")


def test_metric_scatter_plots_every_completed_run(runs: pd.DataFrame) -> None:
    fig = plot_metric_scatter(runs, "mIoU", "mBIoU")
    loveda, potsdam = fig.axes[:2]
    assert (loveda.get_title(), potsdam.get_title()) == ("LoveDA", "Potsdam")
    points = sorted(
        tuple(map(tuple, c.get_offsets().round(6)))
        for c in loveda.collections
        if len(c.get_offsets())
    )
    assert points == sorted(
        [
            ((60.0, 40.0),),  # SFA-Net +Lossd
            ((50.0, 30.0), (52.0, 32.0), (54.0, 34.0)),  # UNetFormer base
            (
                (53.0, 33.0),
                (56.0, 36.0),
                (56.0, 36.0),
            ),  # UNetFormer +Lossd (failed seed 3 left out)
            ((51.0, 31.0),),  # UNetFormer +RMI
        ]
    )
    assert [tuple(c.get_offsets()[0]) for c in potsdam.collections] == [(70.0, 40.0)]
    with pytest.raises(InvalidOptionError, match="no completed run"):
        plot_metric_scatter(runs[runs["status"] == "failed"])


def test_error_histograms_sum_evaluated_classes_and_average_runs(tmp_path: Path) -> None:
    runs = load_runs(write_runs(tmp_path / "h", HISTOGRAM_RECORDS))
    hist = error_histograms(runs).set_index(["loss", "kind", "bin"])
    for label in BINS:
        base = hist.loc[("base", "fp_distance_hist", label)]
        assert (base["pixels"], base["runs"]) == (10.0, 2)
        assert base["fraction"] == pytest.approx(1 / 6)
        assert math.isnan(hist.loc[("base", "fn_depth_hist", label), "fraction"])  # no FN at all
    lossd_fp = [hist.loc[("lossd", "fp_distance_hist", b), "pixels"] for b in BINS]
    assert lossd_fp == [10.0, 0, 0, 0, 0, 0]  # the clutter row (7s) is not evaluated
    lossd_fn = [hist.loc[("lossd", "fn_depth_hist", b), "pixels"] for b in BINS]
    assert lossd_fn == [0, 0, 0, 0, 0, 10.0]
    assert hist.loc[("lossd", "fn_depth_hist", "32+"), "fraction"] == 1.0
    assert list(error_histograms(runs)["bin"][:6]) == BINS  # bins keep their order

    fig = plot_error_histograms(error_histograms(runs))
    fp_ax, fn_ax = fig.axes[:2]
    heights = [bar.get_height() for bar in fp_ax.patches]
    assert heights == [10.0] * 6 + [10.0, 0, 0, 0, 0, 0]  # base bars, then +Lossd bars
    assert [t.get_text() for t in fp_ax.get_xticklabels()] == BINS
    assert "over-segmentation" in fp_ax.get_title() and "under-segmentation" in fn_ax.get_title()


def test_no_histograms_is_an_empty_frame_and_a_clear_error(runs: pd.DataFrame) -> None:
    empty = error_histograms(runs)
    assert empty.empty and list(empty.columns)[:5] == ["dataset", "model", "loss", "kind", "bin"]
    with pytest.raises(InvalidOptionError, match=r"metrics\.diagnostics=true"):
        plot_error_histograms(empty)


def _example(name: str, value: int) -> Example:
    return Example(
        name=name,
        image=np.zeros((8, 8, 3), np.uint8),
        target=np.full((8, 8), 1, np.uint8),
        prediction=np.full((8, 8), value, np.uint8),
    )


def test_plot_examples_puts_predictions_beside_the_truth() -> None:
    palette = [(255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0), (255, 255, 0), (255, 0, 0)]
    columns = {
        "base": [_example("a", 2), _example("b", 2)],
        "lossd": [_example("a", 1), _example("b", 1)],
    }
    fig = plot_examples(columns, POTSDAM, palette, title="synthetic / unetformer")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["a", "truth", "base", "lossd", "b", "truth", "base", "lossd"]
    lossd_panel = fig.axes[3].get_images()[0].get_array()
    assert lossd_panel[0, 0].tolist() == [0, 0, 255]  # class 1 in the palette's colour
    assert fig.axes[2].get_images()[0].get_array()[0, 0].tolist() == [0, 255, 255]
    single = plot_examples([_example("a", 0)], POTSDAM, palette)
    assert [ax.get_title() for ax in single.axes] == ["a", "truth", "prediction"]
    with pytest.raises(InvalidOptionError, match="same images"):
        plot_examples({"base": [_example("a", 0)], "lossd": [_example("z", 0)]}, POTSDAM, palette)
    with pytest.raises(InvalidOptionError, match="no examples"):
        plot_examples([], POTSDAM, palette)


def test_predict_examples_without_checkpoint_fails_clearly(tmp_path: Path) -> None:
    record = {**RECORDS[0], "output_dir": str(tmp_path / "gone"), "config": {}}
    with pytest.raises(CheckpointError, match=r"gone/checkpoints/best\.ckpt"):
        predict_examples(record)
    # A relative output_dir (a record written by a run inside its launch folder) is looked up
    # under base_dir.
    record = {**RECORDS[0], "output_dir": "outputs/gone", "config": {}}
    expected = re.escape(str(tmp_path / "outputs" / "gone" / "checkpoints" / "best.ckpt"))
    with pytest.raises(CheckpointError, match=expected):
        predict_examples(record, base_dir=tmp_path)


@pytest.mark.slow
def test_predict_examples_from_a_trained_run(make_cfg, synthetic_root: Path) -> None:
    from lossd.engine import run

    record = run(make_cfg("loss=base"))
    examples = predict_examples(record, num_images=2)
    stems = sorted(p.stem for p in (synthetic_root / "val" / "images").iterdir())
    assert [e.name for e in examples] == stems[:2]
    for example in examples:
        assert example.image.shape == (64, 64, 3) and example.image.dtype == np.uint8
        assert example.target.shape == example.prediction.shape == (64, 64)
        assert int(example.prediction.max()) < 6
    mask = read_mask(synthetic_root / "val" / "masks" / f"{stems[0]}.png")
    assert np.array_equal(examples[0].target, mask)
