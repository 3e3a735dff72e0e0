"""Fault tolerance: a run killed mid-epoch resumes to the same numbers; writes are atomic."""

import math
import signal
import subprocess
from pathlib import Path

import pytest
import torch

from lossd.engine.checkpoint import load_checkpoint, save_checkpoint
from lossd.errors import NonFiniteLossError
from lossd.records import read_per_image
from lossd.results import read_record
from tests.tiny import offline_env, run_to_the_end, start_until, train_command

ROOT = Path(__file__).resolve().parents[2]


def _command(out: Path, results: Path, data: Path) -> list[str]:
    return train_command(out, results, data)


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_result(tmp_path: Path) -> None:
    env = offline_env()
    data = tmp_path / "data"
    # Uninterrupted reference run.
    run_to_the_end(_command(tmp_path / "ref", tmp_path / "ref_results", data), env)
    expected = read_record(tmp_path / "ref" / "metrics.json")

    # Same command, killed with SIGKILL as soon as the first epoch's checkpoint exists.
    out = tmp_path / "run"
    command = _command(out, tmp_path / "results", data)
    last = out / "checkpoints" / "last.ckpt"
    proc = start_until(command, env, last, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(last)["trainer"]["epoch"]
    assert 1 <= killed_at < 3, "the run finished before it could be killed"
    assert not (out / "metrics.json").exists()

    resumed = run_to_the_end(command, env)
    assert f"after epoch {killed_at}" in resumed.stdout
    record = read_record(out / "metrics.json")
    assert record["steps"] == expected["steps"]
    for key in ("mIoU", "mF1", "OA", "mBIoU"):
        assert record["metrics"][key] == expected["metrics"][key], key
    assert record["history"][-1]["train_total"] == expected["history"][-1]["train_total"]
    # the per-image counts of the selected epoch survive the kill (kept in the checkpoint)
    assert read_per_image(record) == read_per_image(expected)


def test_a_crash_while_writing_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "last.ckpt"
    save_checkpoint(path, {"trainer": {"epoch": 1}})

    def torn_write(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", torn_write)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"trainer": {"epoch": 2}})
    monkeypatch.undo()
    assert load_checkpoint(path)["trainer"]["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


@pytest.mark.slow
def test_non_finite_loss_stops_with_a_failed_record(make_cfg, tmp_path: Path) -> None:
    from lossd.engine import run

    cfg = make_cfg("loss=base", "trainer.max_epochs=2", "model.lr=1e30", "model.backbone_lr=1e30")
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at epoch \d+, step \d+ \(ce="):
        run(cfg)
    record = read_record(
        tmp_path / "results" / "synthetic" / "unetformer" / "base" / "seed0" / "metrics.json"
    )
    assert record["status"] == "failed" and "non-finite" in record["error"]


@pytest.mark.slow
def test_non_finite_batches_can_be_skipped(make_cfg, tmp_path: Path, monkeypatch) -> None:
    """Issue 24, bug 3: with trainer.nonfinite=skip the NaN batch changes nothing.

    The objective returns a NaN total (with a NaN gradient) on the first batch of the second
    epoch (4 batches: 2 epochs of 2). The weights the next batch sees must be the ones the NaN
    batch saw, finite; the trainer counts optimizer steps (``global_step``), so the record
    says 3 steps, and the second epoch's mean loss is that of its one good batch.
    """
    from lossd.engine import run
    from lossd.engine.trainer import Trainer
    from lossd.losses import ObjectiveOutput, SegmentationObjective

    nan_call = 2
    trainers: list[Trainer] = []
    weights_seen: list[dict[str, torch.Tensor]] = []  # before each batch's step
    totals: list[float] = []
    trainer_init, objective_forward = Trainer.__init__, SegmentationObjective.forward

    def init(self, *args, **kwargs):
        trainer_init(self, *args, **kwargs)
        trainers.append(self)

    def forward(self, outputs, target):
        total, terms = objective_forward(self, outputs, target)
        model = trainers[-1].model
        weights_seen.append({n: p.detach().clone() for n, p in model.named_parameters()})
        if len(weights_seen) - 1 == nan_call:
            total = total * float("nan")  # NaN value and NaN gradient
            terms = {**terms, "total": total.detach()}
        totals.append(float(terms["total"]))
        return ObjectiveOutput((total, terms))

    monkeypatch.setattr(Trainer, "__init__", init)
    monkeypatch.setattr(SegmentationObjective, "forward", forward)
    cfg = make_cfg("loss=base", "trainer.max_epochs=2", "trainer.nonfinite=skip")
    record = run(cfg)

    assert record["status"] == "completed"
    assert len(weights_seen) == 4 and math.isnan(totals[nan_call])
    before, after = weights_seen[nan_call], weights_seen[nan_call + 1]
    # the batches before it did train (the comparison below is not vacuous) ...
    assert any(not torch.equal(before[n], weights_seen[0][n]) for n in before)
    # ... the NaN batch did not: same weights, all finite
    for name, value in after.items():
        assert torch.equal(value, before[name]), name
        assert torch.isfinite(value).all(), name
    final = load_checkpoint(tmp_path / "out" / "checkpoints" / "last.ckpt")["model"]
    assert all(torch.isfinite(v).all() for v in final.values() if v.is_floating_point())
    assert record["steps"] == 3  # optimizer steps: 4 batches, 1 skipped
    assert record["history"][1]["train_total"] == pytest.approx(totals[nan_call + 1])
