"""Overrides of the tiny synthetic runs that the end-to-end tests launch."""

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

TILE_SIZE, NUM_TRAIN, NUM_VAL, NUM_TEST = 64, 8, 4, 2
"""The session's synthetic dataset (tests/conftest.py, ``synthetic_root``)."""

SYNTHETIC = (
    f"++dataset.tile_size={TILE_SIZE}",
    f"++dataset.num_train={NUM_TRAIN}",
    f"++dataset.num_val={NUM_VAL}",
    f"++dataset.num_test={NUM_TEST}",
)
"""The generator settings of ``synthetic_root``, so that a run reads that data as it is."""

TINY_RUN = (
    *SYNTHETIC,
    "dataset.batch_size=4",
    "dataset.num_workers=0",
    "trainer.max_epochs=1",
    "trainer.device=cpu",
    "trainer.progress=false",
)
"""One epoch of two steps on ``synthetic_root``, on the CPU, without progress bars."""


def train_command(out: Path, results: Path, data: Path, *overrides: str) -> list[str]:
    """``scripts/train.py`` for a small CPU run: 64² tiles, 32 train images, batch 4, 3 epochs.

    The Hydra folder is ``out``, the record goes under ``results`` and the data under ``data``;
    ``overrides`` come last.
    """
    return [
        sys.executable,
        "scripts/train.py",
        "logger=none",
        "loss=lossd",
        f"paths.data_dir={data}",
        f"paths.results_dir={results}",
        f"hydra.run.dir={out}",
        "dataset.tile_size=64",
        "dataset.num_train=32",
        "dataset.num_val=4",
        "dataset.num_test=2",
        "dataset.batch_size=4",
        "dataset.num_workers=1",
        "trainer.max_epochs=3",
        "trainer.device=cpu",
        "trainer.progress=false",
        *overrides,
    ]


def grid_command(sweep: Path, results: Path, data_root: Path, *overrides: str) -> list[str]:
    """``scripts/train.py -m experiment=synthetic_grid`` shrunk to a few steps per cell.

    UNetFormer, seed 0, on ``data_root`` (the session's synthetic set) with :data:`TINY_RUN`;
    the sweep folder is ``sweep``, the records go under ``results``; ``overrides`` come last.
    """
    return [
        sys.executable,
        "scripts/train.py",
        "-m",
        "experiment=synthetic_grid",
        "model=unetformer",
        "seed=0",
        f"dataset.root={data_root}",
        *TINY_RUN,
        f"paths.results_dir={results}",
        f"hydra.sweep.dir={sweep}",
        *overrides,
    ]


def offline_env() -> dict[str, str]:
    """The environment of a CLI run in a test: offline weights, one OpenMP thread."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def run_to_the_end(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``command`` from the repository root; fail the test if it does not exit 0."""
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def start_until(
    command: list[str], env: dict[str, str], path: Path, **popen: Any
) -> subprocess.Popen[str]:
    """Start ``command`` and return once ``path`` exists (or the process ended, or 10 min)."""
    proc = subprocess.Popen(command, cwd=ROOT, env=env, text=True, **popen)
    deadline = time.monotonic() + 600
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc


def same_to_the_last_digit(a: object, b: object) -> bool:
    """Equal to the last digit (``repr`` of a float is exact), NaN included (absent classes)."""
    return repr(a) == repr(b)
