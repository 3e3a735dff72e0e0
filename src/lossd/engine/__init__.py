"""Training loop, evaluation, checkpoints and logging."""

from lossd.engine.run import run
from lossd.engine.trainer import Trainer, TrainerOptions, TrainState

__all__ = ["TrainState", "Trainer", "TrainerOptions", "run"]
