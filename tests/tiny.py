"""Overrides of the tiny synthetic runs that the end-to-end tests launch."""

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
