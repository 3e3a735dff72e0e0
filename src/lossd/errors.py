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
