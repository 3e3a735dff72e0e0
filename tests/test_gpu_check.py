"""bench/gpu_check.py --smoke: every check's code path runs on the CPU and writes its report.

The GPU check (issue 16) is a benchmark script, run where a GPU is lent; its smoke mode runs the
same code at toy sizes so that the script cannot rot between GPU runs. A fake GeoSeg checkout
(our own networks under GeoSeg's file and class names) exercises check 5's loading path.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

COLUMNS = {
    1: {"dataset", "model", "batch", "crop", "precision", "loss", "step_ms", "img_s", "x_base"},
    2: {"precision", "shape", "ce_ms", "lossd_ms", "naive_ms", "lossd_over_ce", "value_diff"},
    3: {"part", "model", "size", "precision", "img_s", "anchor_fps", "mp_s", "peak_alloc_gib"},
    4: {"dataset", "model", "workers", "loader_img_s", "device_img_s", "loader_over_device"},
    5: {"model", "precision", "ours_ms", "original_ms", "ours_over_original"},
    6: {"run", "launcher", "steps", "seconds", "mIoU", "metric_diff", "equal"},
}
"""Columns each check's rows must have (a subset of its ``columns``)."""

MEASURED = {
    1: ("step_ms", "img_s", "x_base"),
    2: ("ce_ms", "lossd_ms", "naive_ms", "lossd_over_ce", "naive_over_lossd"),
    3: ("img_s", "mp_s"),
    4: ("loader_img_s", "device_img_s", "loader_over_device"),
    5: ("ours_ms", "original_ms", "ours_over_original"),
    6: ("seconds",),
}
"""The measurements of an ok row, each in at least one row of its check: finite and > 0."""

NON_NEGATIVE = {"value_diff", "grad_diff", "metric_diff", "mIoU"}
"""Numbers that may be 0 (differences, a 2-step model's mIoU)."""

FAKE_GEOSEG = """
from torch import nn

from lossd.models import build_model


class {cls}(nn.Module):
    def __init__(self, {arg}, pretrained=False):
        super().__init__()
        self.net = build_model("{name}", {arg})

    def forward(self, x):
        return self.net(x)
"""


def _fake_geoseg(root: Path) -> Path:
    models = root / "geoseg" / "models"
    models.mkdir(parents=True)
    for cls, arg, name in (
        ("UNetFormer", "num_classes", "unetformer"),
        ("ABCNet", "n_classes", "abcnet"),
    ):
        source = FAKE_GEOSEG.format(cls=cls, arg=arg, name=name)
        (models / f"{cls}.py").write_text(source, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    tmp = tmp_path_factory.mktemp("gpu_check")
    geoseg = _fake_geoseg(tmp / "GeoSeg")
    out = tmp / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [
            sys.executable,
            "bench/gpu_check.py",
            "--smoke",
            "--out",
            str(out),
            "--geoseg",
            str(geoseg),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return done, out


@pytest.mark.slow
def test_smoke_run_exits_zero_and_writes_both_reports(smoke_run) -> None:
    done, out = smoke_run
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert (out / "gpu_check.json").is_file() and (out / "gpu_check.md").is_file()
    assert not (out / "scratch").exists(), "the scratch folder is removed without --keep"


@pytest.mark.slow
def test_json_has_one_entry_per_check_with_the_expected_keys(smoke_run) -> None:
    _, out = smoke_run
    report = json.loads((out / "gpu_check.json").read_text(encoding="utf-8"))
    assert report["failed"] == 0
    assert report["meta"]["smoke"] is True and report["meta"]["device"] == "cpu"
    checks = report["checks"]
    assert [check["number"] for check in checks] == [1, 2, 3, 4, 5, 6]
    for check in checks:
        number = check["number"]
        assert {"name", "title", "goal", "columns", "rows", "failed", "seconds"} <= set(check)
        assert COLUMNS[number] <= set(check["columns"]), number
        assert check["rows"], f"check {number} has no row"
        for row in check["rows"]:
            assert set(row) == {*check["columns"], "status", "note"}
            assert row["status"] in {"ok", "skipped"}, (number, row)
        ok = [row for row in check["rows"] if row["status"] == "ok"]
        assert ok, f"check {number} measured nothing in smoke mode"
        # The low-precision rows are skipped on the CPU and say why.
        for row in check["rows"]:
            if row.get("precision") in {"bf16", "fp16"}:
                assert row["status"] == "skipped" and row["note"] == "needs CUDA"


@pytest.mark.slow
def test_every_ok_row_has_finite_positive_numbers(smoke_run) -> None:
    _, out = smoke_run
    report = json.loads((out / "gpu_check.json").read_text(encoding="utf-8"))
    for check in report["checks"]:
        number = check["number"]
        ok = [row for row in check["rows"] if row["status"] == "ok"]
        for row in ok:
            for key, value in row.items():
                if isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                assert math.isfinite(value), (number, key, row)
                assert value >= 0 if key in NON_NEGATIVE else value > 0, (number, key, row)
        for key in MEASURED[number]:
            values = [row[key] for row in ok if row[key] is not None]
            assert values, f"check {number}: no ok row measured {key}"
    e2e = {row["run"]: row for row in report["checks"][5]["rows"]}
    assert e2e["kill -9, resume=auto"]["equal"] is True
    assert e2e["torchrun --nproc_per_node 1"]["equal"] is True
    assert e2e["gloo all-reduce probe"]["status"] == "ok"


@pytest.mark.slow
def test_markdown_has_a_table_per_check(smoke_run) -> None:
    _, out = smoke_run
    text = (out / "gpu_check.md").read_text(encoding="utf-8")
    sections = text.split("\n## ")[1:]
    assert [section.split(".", 1)[0] for section in sections] == ["1", "2", "3", "4", "5", "6"]
    for section in sections:
        lines = section.splitlines()
        header = next(i for i, line in enumerate(lines) if line.startswith("| "))
        assert lines[header + 1].startswith("|---")
        assert lines[header + 2].startswith("| "), section[:80]
