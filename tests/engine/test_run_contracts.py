"""The engine's contracts: one run identity, a record for every failure, versioned checkpoints."""

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, open_dict

from lossd.engine import run
from lossd.engine.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from lossd.engine.config import compose_config
from lossd.engine.loggers import RunLogger
from lossd.engine.model_io import load_model_from_checkpoint
from lossd.engine.run import run_identity
from lossd.errors import CheckpointError, DatasetNotFoundError, InvalidOptionError
from lossd.records import PER_IMAGE_NAME, RECORD_NAME, RunIdentity, read_per_image, read_record

CONF = Path(__file__).resolve().parents[2] / "conf"


def _compose(*overrides: str) -> DictConfig:
    return compose_config("train", overrides)


# ---------------------------------------------------------------- one run identity


def test_quick_and_the_main_job_write_different_records() -> None:
    main_job, quick = _compose(), _compose("experiment=quick")
    main_dir = run_identity(main_job).record_dir(main_job.paths.results_dir)
    quick_dir = run_identity(quick).record_dir(quick.paths.results_dir)
    assert main_dir == Path("./results/runs/synthetic/unetformer/lossd/seed0")
    assert quick_dir == Path("./results/runs/quick/synthetic/unetformer/lossd/seed0")
    # the Hydra folder and the record derive from the same name
    assert main_job.run_name == "synthetic/unetformer/lossd/seed0"
    assert quick.run_name == "quick/synthetic/unetformer/lossd/seed0"


@pytest.mark.parametrize(
    ("experiment", "loss"),
    [
        ("paper", "lossd"),
        ("synthetic_grid", "lossd"),
        ("losses", "lossd"),
        ("synthetic_lambda", "lossd_x1.0"),  # one loss name per weight (its lambda_d)
    ],
)
def test_every_experiment_names_its_runs_by_the_identity(experiment: str, loss: str) -> None:
    cfg = _compose(f"experiment={experiment}", "model=fcn", "seed=2")
    name = f"{experiment}/synthetic/fcn/{loss}/seed2"
    assert cfg.run_name == name  # the Hydra folder's name (conf/hydra/default.yaml)
    assert run_identity(cfg).record_dir("r") == Path("r", name)


def test_run_identity_layout_and_bad_names() -> None:
    identity = RunIdentity("study", "loveda", "sfanet", "lossd", 2)
    assert identity.record_dir("r") == Path("r/study/loveda/sfanet/lossd/seed2")
    assert identity.output_dir("o") == Path("o/study/loveda/sfanet/lossd/seed2")
    assert RunIdentity(None, "a", "b", "c", 0).name == "a/b/c/seed0"
    with pytest.raises(InvalidOptionError, match="model='a/b'"):
        RunIdentity(None, "loveda", "a/b", "lossd", 0)


# ---------------------------------------------------------------- failures leave a record


class RecordingLogger(RunLogger):
    """A logger that remembers how each run was closed."""

    finished: ClassVar[list[int]] = []

    def __init__(self, **_: Any) -> None:
        self.run_id = "recording"

    def finish(self, exit_code: int = 0) -> None:
        RecordingLogger.finished.append(exit_code)


class BrokenLoggerError(RuntimeError):
    """Raised by :func:`broken_logger`."""


def broken_logger(**_: Any) -> RunLogger:
    raise BrokenLoggerError("the logger could not start")


def broken_model(**_: Any) -> torch.nn.Module:
    raise ValueError("injected model failure")


LOGGER = "tests.engine.test_run_contracts.RecordingLogger"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        (("dataset.train.root=/nonexistent/synthetic",), DatasetNotFoundError),
        (
            (
                f"++logger._target_={LOGGER}",
                "model.net._target_=tests.engine.test_run_contracts.broken_model",
            ),
            InstantiationException,  # Hydra wraps a _target_'s own exception
        ),
        (("++logger._target_=tests.engine.test_run_contracts.broken_logger",), BrokenLoggerError),
    ],
    ids=["data", "model", "logger"],
)
def test_an_exception_anywhere_writes_a_failed_record_and_closes_the_logger(
    make_cfg, tmp_path: Path, overrides: tuple[str, ...], error: type[Exception]
) -> None:
    RecordingLogger.finished.clear()
    cfg = make_cfg("loss=base", *overrides)
    if "logger" not in " ".join(overrides):
        with open_dict(cfg):
            cfg.logger = None
    with pytest.raises(error):
        run(cfg)
    for folder in (tmp_path / "out", tmp_path / "results/synthetic/unetformer/base/seed0"):
        record = read_record(folder / RECORD_NAME)
        assert record["status"] == "failed"
        assert record["error"].startswith(f"{error.__name__}: ")
        assert record["run_name"] == "synthetic/unetformer/base/seed0"
    if LOGGER in " ".join(overrides):
        assert RecordingLogger.finished == [1]  # the W&B run is closed, marked failed


def test_a_completed_run_closes_its_logger_and_records_labels(make_cfg, tmp_path: Path) -> None:
    RecordingLogger.finished.clear()
    cfg = make_cfg("loss=lossd", f"++logger._target_={LOGGER}", "trainer.limit_train_batches=1")
    record = run(cfg)
    assert RecordingLogger.finished == [0]
    assert record["labels"] == {"dataset": "Synthetic", "model": "UNetFormer", "loss": "+Lossd"}
    assert record["headline_metric"] == "mF1"
    assert record["status"] == "completed" and record["error"] is None


# ---------------------------------------------------------------- checkpoint metadata


def test_checkpoint_meta_is_written_and_read_back(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("loss=base", "trainer.limit_train_batches=1")
    run(cfg)
    path = tmp_path / "out/checkpoints/best.ckpt"
    meta = CheckpointMeta.from_checkpoint(load_checkpoint(path), path)
    assert (meta.model_name, meta.dataset, meta.num_classes) == ("unetformer", "synthetic", 6)
    assert meta.class_names[0] == "impervious_surfaces" and len(meta.class_names) == 6
    assert meta.mean == pytest.approx((0.485, 0.456, 0.406))
    assert meta.net["_target_"] == "lossd.models.build_model"
    assert meta.version == CheckpointMeta.VERSION
    model, again = load_model_from_checkpoint(path)
    assert again == meta and not model.training


def test_an_old_checkpoint_gets_a_clear_message(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("loss=base", "trainer.limit_train_batches=1")
    run(cfg)
    state = load_checkpoint(tmp_path / "out/checkpoints/best.ckpt")
    meta = state.pop("meta")
    old = save_checkpoint(
        tmp_path / "old.ckpt",
        {**state, **{k: meta[k] for k in ("model_name", "num_classes", "config")}},
    )
    with pytest.raises(
        CheckpointError, match=r"written by an older lossd \(checkpoint metadata version 1"
    ):
        load_model_from_checkpoint(old)
    newer = save_checkpoint(tmp_path / "newer.ckpt", {**state, "meta": {**meta, "version": 99}})
    with pytest.raises(
        CheckpointError, match="has metadata version 99; this lossd reads version 2"
    ):
        load_model_from_checkpoint(newer)


# ---------------------------------------------------------------- the test set is part of a run


def test_a_run_tests_its_selected_checkpoint_as_evaluate_does(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(
        "loss=base",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=1",
        "metrics.diagnostics=true",
    )
    record = run(cfg)
    test = record["test"]
    assert record["protocol"] == "heldout"
    assert (test["split"], test["checkpoint"], test["labels"]) == ("test", "best", "masks")
    assert test["epoch"] == record["best_epoch"] == record["val"]["epoch"]
    # the val block is the selected epoch's validation: the history's best mIoU
    best = max(record["history"], key=lambda entry: entry["mIoU"])
    assert (record["val"]["split"], record["val"]["epoch"]) == ("val", best["epoch"])
    assert record["val"]["metrics"]["mIoU"] == best["mIoU"]
    # the same checkpoint through scripts/evaluate.py's function gives the same numbers
    from lossd.engine.evaluate import evaluate
    from tests.engine.test_checkpoint_errors import eval_config

    best_ckpt = tmp_path / "out/checkpoints/best.ckpt"
    eval_cfg = eval_config(tmp_path / "eval", best_ckpt, "split=test", "metrics.diagnostics=true")
    with open_dict(eval_cfg):
        eval_cfg.paths.data_dir = cfg.paths.data_dir
    evaluated = evaluate(eval_cfg)
    assert evaluated["num_images"] == test["num_images"]
    for key in ("mIoU", "mF1", "OA", "mBIoU", "IoU", "BIoU"):  # NaN: clutter is not evaluated
        np.testing.assert_array_equal(evaluated["metrics"][key], test["metrics"][key])
    # per-image counts: beside both copies of the record, summing to its blocks, and
    # reproduced exactly by the evaluation of the same checkpoint
    stored = read_record(record["path"])
    groups = read_per_image(stored)
    assert sorted(groups) == ["test", "val"]
    assert (tmp_path / "out" / PER_IMAGE_NAME).is_file()
    for block, rows in groups.items():
        totals, metrics = rows.totals(), stored[block]["metrics"]
        np.testing.assert_array_equal(totals["fp_distance_hist"], metrics["fp_distance_hist"])
        np.testing.assert_array_equal(totals["fn_depth_hist"], metrics["fn_depth_hist"])
        for key, value in rows.scores(stored["eval_classes"]).items():
            assert value == pytest.approx(metrics[key], rel=1e-12, abs=1e-15)
    assert groups["val"].num_images == 4 and groups["test"].num_images == 2
    assert read_per_image(read_record(Path(evaluated["path"])))["eval"] == groups["test"]


def test_the_last_checkpoint_or_no_test_as_the_protocol_says(make_cfg) -> None:
    cfg = make_cfg(
        "loss=base",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=1",
        "protocols.heldout.test_checkpoint=last",
    )
    assert run(cfg)["test"]["epoch"] == 2 and cfg.test.checkpoint == "last"
    no_test = "protocols.heldout.test_split=null"
    cfg = make_cfg("loss=base", "trainer.limit_train_batches=1", no_test, "trainer.resume=never")
    assert run(cfg)["test"] is None
    cfg = make_cfg(
        "loss=base",
        "trainer.limit_train_batches=1",
        "test.checkpoint=first",
        "trainer.resume=never",
    )
    with pytest.raises(InvalidOptionError, match=r"test.checkpoint='first'; expected one of"):
        run(cfg)
