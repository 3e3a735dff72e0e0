"""DistributedDataParallel on CPU (gloo, 2 processes) through torchrun and the Hydra entry point."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lossd.data import SegmentationFolder
from lossd.engine.checkpoint import load_checkpoint
from lossd.metrics import SegmentationMetrics
from lossd.models import build_model
from lossd.records import read_per_image
from lossd.results import find_records, read_record
from tests.tiny import TINY_RUN

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.ddp
@pytest.mark.slow
def test_two_process_training_writes_one_record_with_exact_validation(
    tmp_path: Path, synthetic_root: Path
) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={_free_port()}",
        "scripts/train.py",
        "logger=none",
        "loss=lossd",
        f"paths.data_dir={synthetic_root.parent}",
        f"paths.results_dir={tmp_path / 'results'}",
        f"hydra.run.dir={tmp_path / 'out'}",
        *TINY_RUN,
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    records = list(find_records(tmp_path / "results"))
    assert len(records) == 1
    record = read_record(records[0])
    assert record["world_size"] == 2 and record["status"] == "completed"

    # The validation metrics of the 2-process run (each rank scored half of the tiles, the
    # counts were summed) equal a single-process evaluation of the same weights.
    checkpoint = load_checkpoint(tmp_path / "out" / "checkpoints" / "last.ckpt")
    net_kwargs = {k: v for k, v in checkpoint["meta"]["net"].items() if k != "_target_"}
    model = build_model(**net_kwargs)
    model.load_state_dict(checkpoint["model"])
    model.eval()
    metrics = SegmentationMetrics(num_classes=6, eval_classes=[0, 1, 2, 3, 4], per_image=True)
    val = SegmentationFolder(synthetic_root, "val", "synthetic")
    with torch.no_grad():
        for sample in val:
            logits = model(sample["image"][None])
            metrics.update(logits.argmax(1), sample["mask"][None], [sample["name"]])
    single = metrics.compute()
    for key in ("mIoU", "mF1", "OA", "mBIoU"):
        assert record["last_metrics"][key] == pytest.approx(single[key], abs=1e-12), key
    # the per-image counts of both ranks were gathered: every validation tile, once
    assert record["best_epoch"] == record["epochs"] == 1  # TINY_RUN: the last epoch is the best
    assert read_per_image(record)["val"] == metrics.per_image_stats()
    assert read_per_image(record)["val"].num_images == len(val)


def _finite_decision(rank: int, port: int, finite_on: list[bool], out: str) -> None:
    """One process of the gloo group: the trainer's collective finiteness and stop decision.

    Rank 1 received SIGUSR1, rank 0 did not: both must decide to stop, and rank 0 must learn
    which signal it was (it writes the checkpoint and hands the signal on).
    """
    import signal
    from types import SimpleNamespace

    import torch.distributed as dist

    from lossd.engine.runtime import DistContext
    from lossd.engine.trainer import Trainer

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        trainer = SimpleNamespace(
            dist=DistContext(rank=rank, world_size=2, local_rank=rank),
            device=torch.device("cpu"),
            _signal=(int(signal.SIGUSR1), 0.0) if rank == 1 else None,
        )
        finite, stop = Trainer._agree(trainer, finite_on[rank])  # type: ignore[arg-type]
        assert stop and trainer._signal is not None
        assert trainer._signal[0] == signal.SIGUSR1
        Path(out, f"rank{rank}").write_text(str(finite))
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
@pytest.mark.parametrize(
    ("finite_on", "expected"),
    [([True, True], "True"), ([True, False], "False"), ([False, True], "False")],
)
def test_nonfinite_loss_on_one_rank_is_seen_by_every_rank(
    tmp_path: Path, finite_on: list[bool], expected: str
) -> None:
    # A rank that skipped a batch (or stopped) alone would leave the other one waiting in
    # DDP's gradient all-reduce: every rank must take the same decision.
    torch.multiprocessing.spawn(
        _finite_decision, args=(_free_port(), finite_on, str(tmp_path)), nprocs=2, join=True
    )
    assert [(tmp_path / f"rank{r}").read_text() for r in range(2)] == [expected, expected]
