"""Preemption: a stop signal checkpoints mid-epoch, and the resumed run ends with the same numbers.

SIGTERM/SIGUSR1/SIGUSR2 make the trainer finish its step, write ``last.ckpt`` with its place in
the epoch, hand the signal to the handler installed before it (submitit's in a Slurm job) and
raise ``PreemptedError``. The Slurm side (submitit's requeue) is in tests/test_slurm.py.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from lossd.engine.checkpoint import load_checkpoint
from lossd.engine.loaders import ResumableSampler
from lossd.engine.loggers import RunLogger
from lossd.engine.options import TrainerOptions
from lossd.engine.run import RunSetup, build_components, run_identity, run_options
from lossd.engine.runtime import DistContext
from lossd.errors import InvalidOptionError, PreemptedError
from lossd.results import read_record
from tests.tiny import (
    offline_env,
    run_to_the_end,
    same_to_the_last_digit,
    start_until,
    train_command,
)

ROOT = Path(__file__).resolve().parents[2]


# --- the sampler ---------------------------------------------------------------------------


@pytest.mark.parametrize(("world_size", "start"), [(1, 0), (1, 5), (2, 3), (1, 17)])
def test_resumable_sampler_starts_the_epochs_order_at_any_sample(world_size, start) -> None:
    data = list(range(17))
    for rank in range(world_size):
        sampler = ResumableSampler(data, num_replicas=world_size, rank=rank, seed=3)
        sampler.set_epoch(4)
        full = list(sampler)
        if world_size == 1:
            assert sorted(full) == data  # a permutation of the dataset
        start_here = min(start, len(full))
        sampler.set_start(start_here)
        assert list(sampler) == full[start_here:]
        assert len(sampler) == len(full)  # an epoch keeps its batch count when resumed
        sampler.set_epoch(5)  # a new epoch starts from its first sample
        assert sampler.start == 0 and len(list(sampler)) == len(full)
    with pytest.raises(
        InvalidOptionError, match="cannot start an epoch of 17 samples at sample 18"
    ):
        ResumableSampler(data, num_replicas=1, rank=0).set_start(18)


def test_checkpoint_every_n_steps_must_be_a_step_count() -> None:
    for bad in (0, -2, True):
        with pytest.raises(InvalidOptionError, match="checkpoint_every_n_steps"):
            TrainerOptions(max_epochs=1, checkpoint_every_n_steps=bad)
    assert TrainerOptions(max_epochs=1, checkpoint_every_n_steps=5).checkpoint_every_n_steps == 5


# --- in process: the trainer's exit path ---------------------------------------------------


class _Hook(RunLogger):
    """A logger that calls ``action(step)`` at every logged step (trainer.log_every_n_steps=1)."""

    def __init__(self, action) -> None:
        self.action = action
        self.logged: list[tuple[dict, int]] = []

    def log_metrics(self, metrics, step: int) -> None:
        self.logged.append((dict(metrics), step))
        if any(key.startswith("train/") for key in metrics):
            self.action(step)


def _trainer(cfg, out: Path, action=lambda step: None, resume: bool = False):
    """The run's trainer (built as run.py builds it) with a hook logger; resumed if asked."""
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        cfg.trainer.resume = "never"  # resumed below, once the hook logger is in place
    setup = RunSetup(
        identity=run_identity(cfg),
        options=run_options(cfg),
        ctx=DistContext(),
        device=torch.device("cpu"),
        output_dir=out,
        record_dir=out / "record",
        started=time.time(),
    )
    trainer = build_components(cfg, setup).trainer
    trainer.logger = _Hook(action)
    if resume:
        trainer.load_state(load_checkpoint(out / "checkpoints" / "last.ckpt"))
    return trainer


def _send(signum: int, at_step: int):
    def action(step: int) -> None:
        if step == at_step:
            os.kill(os.getpid(), signum)

    return action


_OVERRIDES = ("loss=base", "trainer.max_epochs=2", "trainer.log_every_n_steps=1")
_REFERENCE = {}


def _reference(make_cfg, out: Path):
    """The uninterrupted run of ``_OVERRIDES`` (trained once per session)."""
    if "state" not in _REFERENCE:
        _REFERENCE["state"] = _trainer(make_cfg(*_OVERRIDES), out).fit()
    return _REFERENCE["state"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "at_step", "position"),
    [
        (signal.SIGTERM, 1, (0, 1)),  # mid-epoch: epoch 1, after batch 1 of 2
        (signal.SIGUSR1, 2, (0, 2)),  # in epoch 1's validation: resumes by validating
        (signal.SIGUSR2, 3, (1, 1)),  # mid-epoch 2
    ],
    ids=["SIGTERM-mid-epoch", "SIGUSR1-in-validation", "SIGUSR2-next-epoch"],
)
def test_a_stop_signal_checkpoints_the_step_and_the_resumed_run_matches(
    make_cfg, tmp_path: Path, signum: int, at_step: int, position: tuple[int, int]
) -> None:
    reference = _reference(make_cfg, tmp_path / "ref")

    out = tmp_path / "run"
    before = signal.getsignal(signum)
    trainer = _trainer(make_cfg(*_OVERRIDES), out, _send(signum, at_step))
    with pytest.raises(PreemptedError, match=f"stopped by {signal.Signals(signum).name} at step"):
        trainer.fit()
    assert signal.getsignal(signum) is before  # the handlers of before fit() are back
    state = load_checkpoint(out / "checkpoints" / "last.ckpt")["trainer"]
    assert (state["epoch"], state["epoch_batches"]) == position
    assert state["global_step"] == at_step and state["requeues"] == 1
    assert state["stop"]["signal"] == signal.Signals(signum).name
    assert state["stop"]["since_checkpoint_s"] >= 0

    resumed = _trainer(make_cfg(*_OVERRIDES), out, resume=True)
    restart = resumed.state.restarts[0]
    assert (restart["step"], restart["epoch"], restart["batch"]) == (at_step, *position)
    assert restart["signal"] == signal.Signals(signum).name and restart["lost_s"] == 0.0
    assert restart["downtime_s"] >= 0 and restart["stop_s"] >= 0
    logged, logged_at = resumed.logger.logged[0]
    # known values; logged at the resumed step, which the validation of the resumed epoch
    # also uses (W&B drops a step lower than one already logged)
    assert logged_at == at_step
    assert (logged["restart/step"], logged["restart/lost_s"]) == (at_step, 0.0)
    assert (logged["restarts"], logged["requeues"]) == (1, 1)
    assert logged["restart/since_checkpoint_s"] >= 0 and logged["restart/downtime_s"] >= 0
    state = resumed.fit()
    assert state.global_step == reference.global_step == 4
    assert same_to_the_last_digit(state.history, reference.history)  # every loss mean and metric
    assert same_to_the_last_digit(state.best_metrics, reference.best_metrics)
    assert (len(state.restarts), state.requeues, state.stop) == (1, 1, None)
    final = load_checkpoint(out / "checkpoints" / "last.ckpt")["trainer"]
    assert final["restarts"] == state.restarts and final["epoch_batches"] == 0


@pytest.mark.slow
def test_the_signal_is_handed_to_the_previous_handler_after_the_checkpoint(
    make_cfg, tmp_path: Path
) -> None:
    # What submitit installs in a job: a SIGUSR2 handler that requeues the job and exits. The
    # trainer calls it for SIGUSR1 too (either user signal), once last.ckpt is written.
    calls = []
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"

    def submitit_like(signum, frame) -> None:
        calls.append((signum, load_checkpoint(last)["trainer"]["epoch_batches"]))
        sys.exit(-1)

    previous = signal.signal(signal.SIGUSR2, submitit_like)
    try:
        trainer = _trainer(make_cfg(*_OVERRIDES), tmp_path / "run", _send(signal.SIGUSR1, 1))
        with pytest.raises(PreemptedError, match="the job was requeued") as raised:
            trainer.fit()
        assert signal.getsignal(signal.SIGUSR2) is submitit_like
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert calls == [(signal.SIGUSR1, 1)]
    assert isinstance(raised.value.__cause__, SystemExit)


@pytest.mark.slow
def test_checkpoint_every_n_steps_writes_a_resumable_mid_epoch_checkpoint(
    make_cfg, tmp_path: Path
) -> None:
    seen = {}
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"

    def read_last(step: int) -> None:
        if step == 2:  # the checkpoint of step 1 (mid-epoch 1) exists
            state = load_checkpoint(last)["trainer"]
            seen.update(step=state["global_step"], batch=state["epoch_batches"])

    cfg = make_cfg(*_OVERRIDES, "trainer.checkpoint_every_n_steps=1")
    _trainer(cfg, tmp_path / "run", read_last).fit()
    assert seen == {"step": 1, "batch": 1}


# --- the real entry point, signalled from outside --------------------------------------------


def _command(out: Path, results: Path, data: Path) -> list[str]:
    return train_command(
        out, results, data, "trainer.max_epochs=2", "trainer.checkpoint_every_n_steps=3"
    )


@pytest.mark.slow
def test_sigusr1_from_a_shell_stops_mid_epoch_and_the_rerun_matches(tmp_path: Path) -> None:
    env = offline_env()
    data = tmp_path / "data"
    run_to_the_end(_command(tmp_path / "ref", tmp_path / "ref_results", data), env)
    expected = read_record(tmp_path / "ref" / "metrics.json")

    # The same command, sent SIGUSR1 once its first mid-epoch checkpoint (step 3) exists.
    out = tmp_path / "run"
    command = _command(out, tmp_path / "results", data)
    last = out / "checkpoints" / "last.ckpt"
    proc = start_until(command, env, last, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.send_signal(signal.SIGUSR1)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 1, stderr[-2000:]  # PreemptedError: SystemExit with its message
    assert "stopped by SIGUSR1 at step" in stdout  # the trainer's line
    assert "stopped by SIGUSR1 at step" in stderr and "Traceback" not in stderr  # the exit's
    stopped = load_checkpoint(last)["trainer"]
    assert 3 <= stopped["global_step"] < 16, "the run finished before it could be stopped"
    assert stopped["stop"]["signal"] == "SIGUSR1" and stopped["requeues"] == 1
    record = read_record(out / "metrics.json")
    assert record["status"] == "preempted" and "PreemptedError" in record["error"]

    resumed = run_to_the_end(command, env)
    assert f"restart 1: resuming at step {stopped['global_step']}" in resumed.stdout
    record = read_record(out / "metrics.json")
    assert record["status"] == "completed"
    assert record["steps"] == expected["steps"] == 16
    assert same_to_the_last_digit(
        record["metrics"], expected["metrics"]
    )  # every metric and per-class list
    assert same_to_the_last_digit(record["history"], expected["history"])
    state = load_checkpoint(last)["trainer"]
    assert [r["signal"] for r in state["restarts"]] == ["SIGUSR1"] and state["requeues"] == 1
    assert state["restarts"][0]["step"] == stopped["global_step"]
    # the run record shows the interruption too
    assert record["requeues"] == 1 and record["restarts"] == state["restarts"]
