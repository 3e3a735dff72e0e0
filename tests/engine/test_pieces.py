import random
from pathlib import Path

import numpy as np
import pytest
import torch

from lossd.engine.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from lossd.engine.loaders import ShardSampler, eval_loader, train_loader
from lossd.engine.optim import param_groups
from lossd.engine.runtime import DistContext, autocast_dtype, resolve_device
from lossd.errors import CheckpointError, InvalidOptionError


def test_rng_state_round_trip_through_a_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    path = save_checkpoint(tmp_path / "c.ckpt", {"rng": capture_rng_state(), "epoch": 4})
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    state = load_checkpoint(path)
    restore_rng_state(state["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]
    assert state["epoch"] == 4


def test_bad_checkpoints_are_explained(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "junk.ckpt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match=r"model\.weights"):
        load_checkpoint(tmp_path / "plain.pt")


def test_shards_cover_every_sample_once() -> None:
    data = list(range(11))
    shards = [list(ShardSampler(data, r, 3)) for r in range(3)]
    assert sorted(i for s in shards for i in s) == data
    assert [len(ShardSampler(data, r, 3)) for r in range(3)] == [4, 4, 3]


def test_batch_size_is_global() -> None:
    data = [torch.zeros(1)] * 16
    loader = train_loader(data, 8, 0, seed=0, ctx=DistContext(rank=1, world_size=2))
    assert loader.batch_size == 4
    with pytest.raises(InvalidOptionError, match="multiple of the number of processes"):
        train_loader(data, 3, 0, seed=0, ctx=DistContext(rank=0, world_size=2))
    assert len(list(eval_loader(data, 4, 0, DistContext()))) == 4


def test_training_order_depends_on_seed_and_epoch_only() -> None:
    data = list(range(20))

    def order(seed: int, epoch: int) -> list[int]:
        loader = train_loader(data, 4, 0, seed=seed, ctx=DistContext())
        loader.sampler.set_epoch(epoch)
        return [int(i) for batch in loader for i in batch]

    assert order(0, 1) == order(0, 1)
    assert order(0, 1) != order(0, 2)
    assert order(0, 1) != order(1, 1)


def test_backbone_gets_its_own_learning_rate() -> None:
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = torch.nn.Linear(2, 2)
            self.head = torch.nn.Linear(2, 1)

    net = Net()
    groups = param_groups(net, backbone_lr=1e-5)
    assert [g["name"] for g in groups] == ["backbone", "head"]
    assert groups[0]["lr"] == 1e-5 and "lr" not in groups[1]
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in net.backbone.parameters()}
    optimizer = torch.optim.AdamW(groups, lr=1e-3)
    assert [g["lr"] for g in optimizer.param_groups] == [1e-5, 1e-3]
    assert len(param_groups(net, None)) == 1


def test_device_and_precision_choices() -> None:
    cpu = torch.device("cpu")
    assert resolve_device("cpu") == cpu
    assert autocast_dtype("auto", cpu) is None
    with pytest.raises(InvalidOptionError, match=r"trainer\.device='tpu'"):
        resolve_device("tpu")
    with pytest.raises(InvalidOptionError, match="needs a CUDA device"):
        autocast_dtype("bf16", cpu)
    with pytest.raises(InvalidOptionError, match=r"trainer\.precision"):
        autocast_dtype("half", cpu)
