"""Overrides of the tiny synthetic runs that the end-to-end tests launch."""

import sys
from pathlib import Path

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


def same_to_the_last_digit(a: object, b: object) -> bool:
    """Equal to the last digit (``repr`` of a float is exact), NaN included (absent classes)."""
    return repr(a) == repr(b)
