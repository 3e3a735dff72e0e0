"""Training loop, evaluation, checkpoints and logging."""

from lossd.engine.options import TrainerOptions
from lossd.engine.run import run
from lossd.engine.trainer import Trainer, TrainState

__all__ = ["TrainState", "Trainer", "TrainerOptions", "run"]
