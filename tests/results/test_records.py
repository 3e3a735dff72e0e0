import json
import math
from pathlib import Path

import pytest

from lossd.errors import DataFormatError
from lossd.records import format_metrics_table
from lossd.results import find_records, read_record, record_dir, write_record


def _record(**extra):
    return {
        "dataset": "synthetic",
        "model": "unetformer",
        "loss": "lossd",
        "seed": 0,
        "status": "completed",
        "metrics": {"mIoU": 0.5, "IoU": [0.25, math.nan, 0.75], "OA": float("inf")},
        **extra,
    }


def test_round_trip_is_strict_json_with_nan_restored(tmp_path: Path) -> None:
    folder = record_dir(tmp_path, "synthetic", "unetformer", "lossd", 0)
    assert folder == tmp_path / "synthetic" / "unetformer" / "lossd" / "seed0"
    path = write_record(folder, _record())
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text)  # strict JSON parser accepts it
    record = read_record(path)
    assert record["metrics"]["mIoU"] == 0.5
    assert math.isnan(record["metrics"]["IoU"][1]) and math.isnan(record["metrics"]["OA"])
    assert record["schema_version"] == 1
    assert list(find_records(tmp_path)) == [path]


def test_missing_fields_are_refused(tmp_path: Path) -> None:
    bad = _record()
    del bad["seed"]
    with pytest.raises(DataFormatError, match="seed"):
        write_record(tmp_path, bad)
    assert not (tmp_path / "metrics.json").exists()
    (tmp_path / "metrics.json").write_text('{"dataset": "x"')
    with pytest.raises(DataFormatError, match="not valid JSON"):
        read_record(tmp_path / "metrics.json")


def test_no_temporary_files_left(tmp_path: Path) -> None:
    write_record(tmp_path, _record())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_metrics_table_marks_classes_outside_the_protocol() -> None:
    metrics = {
        "IoU": [0.5, 0.25, math.nan],
        "F1": [0.6, 0.3, math.nan],
        "BIoU": [0.1, 0.2, 0.3],
        "mIoU": 0.375,
        "mF1": 0.45,
        "mBIoU": 0.15,
        "OA": 0.9,
    }
    table = format_metrics_table(metrics, ["road", "car", "clutter"], eval_classes=[0, 1])
    lines = table.splitlines()
    assert any(line.startswith("| road") and "50.00" in line for line in lines)
    assert any("clutter *" in line and "-" in line for line in lines)
    assert any(line.startswith("| mean") and "37.50" in line and "15.00" in line for line in lines)
    assert "OA 90.00 %" in table and "not in the means" in table
    # the columns are the per-class values of the main metrics; BF shows "-" when absent
    assert [c.strip() for c in lines[0].strip("|").split("|")] == [
        "class",
        "IoU %",
        "F1 %",
        "BIoU %",
        "BF %",
    ]
    assert lines[2].rstrip("| ").endswith("-")
    with_bf = format_metrics_table(
        {**metrics, "BF": [0.7, 0.8, math.nan], "mBF": 0.75}, ["road", "car", "clutter"], [0, 1]
    ).splitlines()
    assert "70.00" in with_bf[2] and "75.00" in with_bf[-2]


def test_portable_path_is_relative_inside_the_launch_folder_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lossd.records import portable_path

    inside = tmp_path / "repo" / "outputs" / "run"
    outside = tmp_path / "elsewhere" / "run"
    assert portable_path(inside, tmp_path / "repo") == "outputs/run"
    assert portable_path(outside, tmp_path / "repo") == str(outside)
    assert portable_path(None) is None
    monkeypatch.chdir(tmp_path)  # default base: the current folder; ".." is resolved first
    assert portable_path("repo/x/../outputs/run") == "repo/outputs/run"
