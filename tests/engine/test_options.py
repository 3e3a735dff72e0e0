"""Bad options and failing services: each gives one clear message or a safe fallback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lossd.data.transforms import train_transform
from lossd.engine.loggers import WandbLogger
from lossd.engine.optim import lookahead
from lossd.engine.options import TrainerOptions
from lossd.engine.runtime import resolve_device
from lossd.errors import InvalidOptionError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_epochs": 0}, r"trainer\.max_epochs=0"),
        ({"max_epochs": 1, "nonfinite": "ignore"}, r"trainer\.nonfinite='ignore'"),
        ({"max_epochs": 1, "limit_train_batches": 0}, r"trainer\.limit_train_batches=0"),
        ({"max_epochs": 1, "limit_val_batches": 1.5}, r"trainer\.limit_val_batches=1\.5"),
    ],
)
def test_trainer_options_are_validated(kwargs, match) -> None:
    with pytest.raises(InvalidOptionError, match=match):
        TrainerOptions(**kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_asked_without_a_gpu() -> None:
    with pytest.raises(InvalidOptionError, match="no CUDA device"):
        resolve_device("cuda")


def test_transform_and_optimizer_options_are_validated() -> None:
    with pytest.raises(InvalidOptionError, match="crop_size=0"):
        train_transform(crop_size=0)
    with pytest.raises(InvalidOptionError, match="scales"):
        train_transform(crop_size=8, scales=[1.0, -0.5])
    with pytest.raises(InvalidOptionError, match="mean has 3 values but std has 2"):
        train_transform(crop_size=8, std=(0.2, 0.2))
    params = [{"params": [torch.nn.Parameter(torch.zeros(1))]}]
    with pytest.raises(InvalidOptionError, match=r"alpha=1\.5"):
        lookahead(params, torch.optim.AdamW, alpha=1.5)


def test_config_key_typo_fails_with_hydra_message(make_cfg) -> None:
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="max_epoch"):
        make_cfg("trainer.max_epoch=1")


class _FakeRun:
    def __init__(self, fail_log: bool = False) -> None:
        self.id, self.dir, self.fail_log, self.logged = (
            "abc123",
            "/tmp/wandb/run/files",
            fail_log,
            [],
        )
        self.summary: dict = {}

    def log(self, values, step=None) -> None:
        if self.fail_log:
            raise ConnectionError("server error 500")
        self.logged.append((step, values))

    def finish(self, exit_code=0) -> None:
        pass


def test_wandb_falls_back_to_offline_then_to_nothing(monkeypatch, tmp_path, caplog) -> None:
    import wandb

    modes: list[str] = []

    def init_online_fails(mode, **kwargs):
        modes.append(mode)
        if mode == "online":
            raise wandb.errors.CommError("no network")
        return _FakeRun()

    monkeypatch.setattr(wandb, "init", init_online_fails)
    logger = WandbLogger(dir=tmp_path, mode="online")
    assert modes == ["online", "offline"] and logger.run_id == "abc123"
    assert "falling back" in caplog.text

    def init_always_fails(mode, **kwargs):
        raise RuntimeError("bad key")

    monkeypatch.setattr(wandb, "init", init_always_fails)
    silent = WandbLogger(dir=tmp_path, mode="online")
    assert silent.run_id is None
    silent.log_metrics({"loss": 1.0}, step=1)  # a no-op, not an exception
    silent.finish()
    assert "not logged to W&B" in caplog.text


def test_wandb_failing_mid_run_disables_it_once(monkeypatch, tmp_path, caplog) -> None:
    import wandb

    run = _FakeRun(fail_log=True)
    monkeypatch.setattr(wandb, "init", lambda mode, **kwargs: run)
    logger = WandbLogger(dir=tmp_path)
    logger.log_metrics({"loss": 1.0}, step=1)
    logger.log_metrics({"loss": 2.0}, step=2)
    assert caplog.text.count("disabling W&B") == 1


@pytest.mark.slow
def test_single_run_cli_prints_one_error_line(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "scripts/train.py",
            "dataset=potsdam",
            "logger=none",
            f"paths.data_dir={tmp_path / 'none'}",
            f"paths.results_dir={tmp_path / 'results'}",
            f"hydra.run.dir={tmp_path / 'out'}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("error: no prepared images")
    assert "prepare_data.py potsdam" in lines[0] and "Traceback" not in done.stderr
    # the failure is recorded too (status failed, the exception named)
    record = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert record["status"] == "failed"
    assert record["error"].startswith("DatasetNotFoundError: no prepared images")


@pytest.mark.parametrize("node", ["trainer", "metrics", "inference"])
def test_each_option_is_declared_once_and_typed_by_the_composed_config(node) -> None:
    """Issue 21: the typed Hydra node is derived from the options class the code uses."""
    from dataclasses import fields

    from lossd.engine.config import compose_config
    from lossd.engine.inference import InferenceOptions
    from lossd.engine.options import MetricsOptions
    from lossd.engine.schema import node_schema

    options = {"trainer": TrainerOptions, "metrics": MetricsOptions, "inference": InferenceOptions}
    cls = options[node]
    schema = node_schema(cls)
    assert [f.name for f in fields(schema)] == [f.name for f in fields(cls)]
    assert all(f.metadata.get("help") for f in fields(cls)), "every option has its help"
    cfg = compose_config("train")
    composed = cfg.test.inference if node == "inference" else cfg[node]
    assert set(composed) == {f.name for f in fields(cls)}
    bad = {"trainer": "trainer.max_epochs=abc", "metrics": "metrics.diagnostics=maybe",
           "inference": "test.inference.batch_size=two"}[node]  # fmt: skip
    with pytest.raises(Exception, match=bad.split("=")[0]):
        compose_config("train", [bad])


def test_metric_options_are_validated() -> None:
    from lossd.engine.options import MetricsOptions

    with pytest.raises(InvalidOptionError, match=r"metrics\.bf_ratio=0"):
        MetricsOptions(bf_ratio=0)
    with pytest.raises(InvalidOptionError, match=r"metrics\.boundary_width=0"):
        MetricsOptions(boundary_width=0)
