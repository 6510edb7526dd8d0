"""The exceptions numcnn raises.

Each one subclasses the built-in exception a caller would naturally catch (``ValueError`` for bad
values and shapes, ``TypeError`` for bad dtypes), so ``except ValueError`` keeps working, while
``except numcnn.NumcnnError`` catches everything the library raises on purpose.
"""

__all__ = ["NumcnnError", "ShapeError", "DTypeError", "ConfigError", "ResumeMismatchError", "DataError",
           "ModelFileError", "GradcheckError", "ExerciseError", "DivergenceError", "DeviceError", "Interrupted"]


# The exit statuses of numcnn's commands (and of an MPI job a failing rank aborts).
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def one_line(message) -> str:
    """A message on one line: its non-empty lines, stripped and joined by spaces."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


class NumcnnError(Exception):
    """Base class of every error numcnn raises on purpose."""


class ShapeError(NumcnnError, ValueError):
    """An array has the wrong rank, size or channel count for the layer or function."""


class DTypeError(NumcnnError, TypeError):
    """An array has a dtype the operation does not accept (e.g. integers where floats are needed)."""


class ConfigError(NumcnnError, ValueError):
    """A hyper-parameter (kernel size, stride, learning rate, ...) is out of range."""


class ResumeMismatchError(ConfigError):
    """A run is being continued with other settings (batch size, augmentation, ...) than it was
    started with; the message names both values."""


class DataError(NumcnnError, ValueError):
    """A data file or data folder is missing, corrupt or inconsistent."""


class ModelFileError(NumcnnError, ValueError):
    """A saved model or checkpoint is missing, corrupt, or does not fit the architecture."""


class GradcheckError(NumcnnError, AssertionError):
    """Analytic and numerical gradients disagree."""


class ExerciseError(NumcnnError, AssertionError):
    """A learner's answer to a notebook exercise is wrong, or uses what the exercise rules out
    (``numcnn.teach``'s checks)."""


class DivergenceError(NumcnnError, FloatingPointError):
    """Training produced a NaN or infinite loss."""


class DeviceError(NumcnnError, RuntimeError):
    """A device was asked for that this machine cannot give (``cuda`` without CuPy or a GPU),
    or arrays of two devices met in one operation."""


class Interrupted(Exception):
    """Ctrl-C during training, with the message saying what was kept (exit status 130)."""
