"""One exception type per kind of failure, each subclassing the closest builtin.

Messages say what failed, the offending value or file, what was expected and what to do.
"""

__all__ = [
    "CheckpointError",
    "DataFormatError",
    "DatasetNotFoundError",
    "InvalidOptionError",
    "LossdError",
    "NonFiniteLossError",
    "OutputExistsError",
    "PreemptedError",
    "WeightsUnavailableError",
]


class LossdError(Exception):
    """Base of every lossd error: a user-facing problem with one actionable message."""


class DatasetNotFoundError(LossdError, FileNotFoundError):
    """A dataset folder or file is missing (raw download or prepared patches)."""


class DataFormatError(LossdError, ValueError):
    """Data is present but malformed: layout, dtype, shape, size or label value."""


class InvalidOptionError(LossdError, ValueError):
    """An argument or config value is not one of the accepted choices or is out of range."""


class CheckpointError(LossdError, RuntimeError):
    """A checkpoint cannot be read, or was made for another model or number of classes."""


class WeightsUnavailableError(LossdError, RuntimeError):
    """Pretrained weights were asked for but are neither cached nor downloadable."""


class NonFiniteLossError(LossdError, FloatingPointError):
    """The training loss became NaN or infinite."""


class OutputExistsError(LossdError, FileExistsError):
    """An output path exists and overwriting was not asked for."""


class PreemptedError(SystemExit):
    """Training stopped on a preemption or time-limit signal after saving its place.

    Raised by :meth:`lossd.engine.Trainer.fit` after SIGTERM, SIGUSR1 or SIGUSR2, once the step
    in progress has finished and ``last.ckpt`` holds the exact position in the epoch; the same
    command (``trainer.resume=auto``) continues from there. It subclasses :class:`SystemExit`,
    not :class:`LossdError`: it must pass the ``except Exception`` of Hydra's job runner and of
    submitit's job process, so that a Slurm job ends without a result and its requeued copy
    runs the cell again (docs/cluster.md). Uncaught, it exits with status 1 and its message.
    """
