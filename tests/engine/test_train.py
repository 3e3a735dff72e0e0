"""End to end: the Hydra config -> data -> model -> loss -> metrics -> checkpoint -> record."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lossd.engine import run
from lossd.engine.checkpoint import load_checkpoint
from lossd.errors import CheckpointError
from lossd.results import read_record
from tests.tiny import TINY_RUN

ROOT = Path(__file__).resolve().parents[2]


def _check_metrics(metrics: dict, num_classes: int = 6) -> None:
    for key in ("mIoU", "mF1", "OA", "mBIoU"):
        assert 0.0 <= metrics[key] <= 1.0, key
    for key in ("IoU", "F1", "BIoU"):
        assert len(metrics[key]) == num_classes


@pytest.mark.slow
def test_training_run_writes_record_checkpoints_and_wandb_folder(
    make_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_cfg("logger=wandb", "trainer.max_epochs=2", "trainer.log_every_n_steps=1")
    monkeypatch.chdir(tmp_path)  # launched from tmp_path, whose out/ is the run folder
    record = run(cfg)

    assert record["status"] == "completed"
    assert (record["dataset"], record["model"], record["loss"], record["seed"]) == (
        "synthetic",
        "unetformer",
        "lossd",
        0,
    )
    _check_metrics(record["metrics"])
    assert record["epochs"] == 2 and record["steps"] == 4  # 8 tiles / batch 4 × 2 epochs
    assert [h["epoch"] for h in record["history"]] == [1.0, 2.0]
    assert all(h["train_lossd"] > 0 for h in record["history"])
    assert record["config"]["loss"]["lambda_d"] == 1.0
    # the installed distribution's version: torch's own without the local build tag (+cu130)
    assert record["versions"]["torch"] == torch.__version__.split("+")[0]
    assert record["wall_time_s"] > 0

    # Folders inside the launch folder are recorded relative to it (portable records).
    assert record["output_dir"] == record["config"]["paths"]["output_dir"] == "out"
    assert Path(record["wandb"]["dir"]).parent == Path("out/wandb")

    out = Path(cfg.paths.output_dir)
    results = tmp_path / "results" / "synthetic" / "unetformer" / "lossd" / "seed0" / "metrics.json"
    for path in (out / "metrics.json", results):
        on_disk = read_record(path)
        assert on_disk["metrics"]["mIoU"] == pytest.approx(record["metrics"]["mIoU"])
        # no path of this machine in the file itself (read_record adds where it was read)
        assert "path" not in json.loads(path.read_text(encoding="utf-8"))
    assert record["path"] == str(results)
    # Best and last checkpoints load and describe the run.
    last = load_checkpoint(out / "checkpoints" / "last.ckpt")
    assert last["trainer"]["epoch"] == 2 and last["meta"]["model_name"] == "unetformer"
    assert load_checkpoint(out / "checkpoints" / "best.ckpt")["trainer"]["best_epoch"] >= 1
    # The offline W&B run holds the validation metrics, the per-class table and the overlays.
    wandb_dir = Path(record["wandb"]["dir"])
    assert wandb_dir.is_dir() and wandb_dir.name.startswith("offline-run-")
    blob = next(wandb_dir.glob("run-*.wandb")).read_bytes()
    for key in (b"val/mIoU", b"val/mBIoU", b"train/lossd", b"lr/backbone", b"val/per_class"):
        assert key in blob, key
    assert repr(record["last_metrics"]["mIoU"]).encode() in blob
    assert list((wandb_dir / "files" / "media" / "images").rglob("*.png"))


@pytest.mark.slow
def test_resume_auto_refuses_a_different_config(make_cfg) -> None:
    run(make_cfg("loss=base"))
    with pytest.raises(CheckpointError, match="different config"):
        run(make_cfg("loss=base", "model.lr=0.1"))
    # A completed run resumed with the same config trains no further and keeps its numbers.
    again = run(make_cfg("loss=base"))
    assert again["epochs"] == 1 and again["steps"] == 2


@pytest.mark.slow
def test_skip_done_does_not_train_again(make_cfg, tmp_path: Path) -> None:
    first = run(make_cfg("loss=base"))
    record_path = (
        tmp_path / "results" / "synthetic" / "unetformer" / "base" / "seed0" / "metrics.json"
    )
    stamp = record_path.stat().st_mtime_ns
    second = run(make_cfg("loss=base", "skip_done=true", "trainer.resume=never"))
    assert record_path.stat().st_mtime_ns == stamp
    assert second["metrics"]["mIoU"] == pytest.approx(first["metrics"]["mIoU"])


@pytest.mark.slow
def test_command_line_entry_point(tmp_path: Path, synthetic_root: Path) -> None:
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "scripts/train.py",
        "experiment=quick",
        "logger=none",
        "loss=base",
        f"paths.data_dir={synthetic_root.parent}",
        f"paths.results_dir={tmp_path / 'results'}",
        f"hydra.run.dir={tmp_path / 'out'}",
        *TINY_RUN,
        "trainer.limit_train_batches=1",
    ]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| mean" in done.stdout and "run record:" in done.stdout
    record = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert record["loss"] == "base" and record["steps"] == 1
    assert (tmp_path / "out" / ".hydra" / "config.yaml").is_file()


def test_missing_dataset_fails_with_one_clear_line(make_cfg, tmp_path: Path) -> None:
    from lossd.errors import DatasetNotFoundError

    cfg = make_cfg("dataset=potsdam", f"paths.data_dir={tmp_path / 'nothing'}")
    with pytest.raises(DatasetNotFoundError, match=r"prepare_data\.py potsdam"):
        run(cfg)
