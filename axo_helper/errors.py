"""One error hierarchy. Every message says what was wrong and what to do.

Exit codes (documented in docs/cli.md):
  0  success
  1  failure (bad input data, nothing fits, no GPU, training failed, ...)
  2  usage error (a malformed option value, a missing file named on the command line)
  3  `validate`: the config is valid but does not fit the GPU
  130  interrupted (Ctrl-C)
A failed training passes Axolotl's own exit code through (TrainingError).

Every exit code comes from the class of the error raised: a raise site picks the
class, never the number.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_DOES_NOT_FIT = 3
EXIT_INTERRUPTED = 130


class AxoHelperError(Exception):
    """A problem the user can act on. `hint` says what to do about it."""

    exit_code: int = EXIT_FAILURE

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(AxoHelperError):
    """A malformed option value or argument (exit 2)."""

    exit_code = EXIT_USAGE


class MissingPathError(UsageError):
    """A path named on the command line that does not exist or is the wrong kind (exit 2)."""


class Interrupted(AxoHelperError):
    """Ctrl-C: the child was stopped and the run directory says how far it got (exit 130)."""

    exit_code = EXIT_INTERRUPTED


class TrainingError(AxoHelperError):
    """Axolotl failed: its own exit code passes through (1 when it had none)."""

    def __init__(self, message: str, hint: str | None = None, *, child_exit_code: int | None):
        super().__init__(message, hint)
        self.exit_code = child_exit_code or EXIT_FAILURE


class HardwareError(AxoHelperError):
    """No GPU, no driver, an unknown GPU profile."""


class GPUSpecError(UsageError):
    """A --gpu value that cannot be parsed or matched."""


class ModelError(AxoHelperError):
    """A model that cannot be resolved or is not a causal LM."""


class HubUnavailableError(ModelError):
    """The hub could not be asked (offline or unreachable) and nothing is cached.
    `reason` is that part of the message alone ("the hub is offline ...")."""

    reason: str = ""


class ModelPathError(ModelError, MissingPathError):
    """--model names a local path that is missing, empty or not a model folder (exit 2)."""


class DatasetError(AxoHelperError):
    """A dataset that is empty, binary or of an unknown or mixed format."""


class DatasetUsageError(DatasetError, UsageError):
    """A dataset argument that cannot be used as given (exit 2)."""


class DatasetPathError(DatasetUsageError, MissingPathError):
    """--data or --tokenizer names a path that is missing or of an unsupported type (exit 2)."""


class PlanError(AxoHelperError):
    """Nothing fits: the message names the smallest change that would."""


class ConfigError(AxoHelperError):
    """An Axolotl config that cannot be read or is invalid."""


class MissingExtraError(AxoHelperError):
    """A command needs the [train] extra (Axolotl, torch)."""

    def __init__(self, what: str):
        super().__init__(
            f"{what} needs Axolotl and torch, which are not installed",
            hint='install them with: pip install "axo-helper[train]" torch==2.13.0 '
            "(or the torch build for your CUDA)",
        )


class ExportUsageError(UsageError):
    """An export argument that cannot be used: no run directory, a bad size or variant."""


class OutputExistsError(UsageError):
    """Refusing to overwrite something without --force."""


class FileWriteError(AxoHelperError):
    """A file could not be written: full disk, read-only file system, a parent that is a file."""


def os_error(exc: OSError, path: object, doing: str = "write") -> FileWriteError:
    """An OSError on `path` as a message that says what is wrong and what to do."""
    import errno

    why = {
        errno.ENOSPC: ("the disk is full", "free some space, or write somewhere else"),
        errno.EDQUOT: ("the disk quota is used up", "free some space, or write somewhere else"),
        errno.EROFS: ("the file system is read-only", "write somewhere writable"),
        errno.EACCES: ("permission denied", "check the permissions, or write somewhere else"),
        errno.EPERM: ("permission denied", "check the permissions, or write somewhere else"),
        errno.ENOTDIR: (
            "a parent of the path is a file, not a directory",
            "pick a path whose parents are directories",
        ),
        errno.EISDIR: ("it is a directory", "name a file instead"),
        errno.ENAMETOOLONG: ("the name is too long", "pick a shorter path"),
    }.get(exc.errno or 0)
    if exc.errno == errno.EEXIST and _parent_is_a_file(path):  # mkdir(parents=True) says so
        why = (
            "a parent of the path is a file, not a directory",
            "pick a path whose parents are directories",
        )
    reason, hint = why or (exc.strerror or str(exc), "check the path and the disk")
    return FileWriteError(f"cannot {doing} {path}: {reason}", hint=hint)


def _parent_is_a_file(path: object) -> bool:
    from pathlib import Path

    return any(p.exists() and not p.is_dir() for p in Path(str(path)).parents)


class TraceError(AxoHelperError):
    """The model's real code could not run its step on fake tensors."""
