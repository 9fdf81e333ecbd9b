"""The toolkit's one error contract.

An *expected* failure -- a bad call, missing or corrupt data, an unreadable record, a checkpoint of
another model, a limit that would be exceeded -- raises a :class:`ToolkitError` whose message says
how to fix it. A command line prints it as one ``error:`` line and exits 2, having written nothing
(:func:`separation.core.cli.run_command`). Anything else is a bug: the command shows the traceback
and exits 1.

Each class also derives from the built-in exception a Python caller would expect (a bad value is a
``ValueError``, missing data a ``FileNotFoundError``, a limit a ``MemoryError``), so library code
can be used with ordinary ``except ValueError`` clauses.
"""
from __future__ import annotations


class ToolkitError(Exception):
    """Base of every expected failure; the message says how to fix it."""


class InvalidInputError(ToolkitError, ValueError):
    """An argument or an input value that the toolkit does not accept."""


class InvalidTypeError(ToolkitError, TypeError):
    """An argument of a type the toolkit does not accept."""


class UsageError(InvalidInputError):
    """Bad input to a command line, found before any work."""


class ConfigError(InvalidInputError):
    """An invalid configuration: the message names the field (or file) and what would be valid."""


class DataError(ToolkitError):
    """Data that cannot be used as it is."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """A dataset's files are missing; the message says how to get them."""


class DownloadError(DatasetNotFoundError):
    """A download that did not complete (nothing was left in the data folder)."""


class CorruptDataError(DataError, ValueError):
    """Data files whose content is not what they should hold (checksum mismatch, truncation)."""


class UnwritableError(DataError, PermissionError):
    """A folder the toolkit must write (data, cache, shards) is not writable."""


class RecordError(ToolkitError, ValueError):
    """A record folder that cannot be used: unreadable, ill-typed, of another kind or schema."""


class CheckpointError(ToolkitError, ValueError):
    """A file that is not a usable checkpoint (corrupt, not a checkpoint, wrong architecture)."""


class LimitError(ToolkitError, MemoryError):
    """Work that would exceed a limit (memory, pairs); the message gives the estimate and the remedy."""

    def __new__(cls, *args, **kwargs):  # MemoryError's own __new__ refuses subclasses when unpickled (Dask)
        return Exception.__new__(cls, *args, **kwargs)


class ClusterError(ToolkitError, ConnectionError):
    """A cluster that cannot be reached or used (no scheduler, no worker, no shared folder)."""


class MissingDependencyError(ToolkitError, ImportError):
    """A feature whose optional dependency is not installed; the message names the extra."""


__all__ = ["CheckpointError", "ClusterError", "ConfigError", "CorruptDataError", "DataError", "DatasetNotFoundError",
           "DownloadError", "InvalidInputError", "InvalidTypeError", "LimitError", "MissingDependencyError",
           "RecordError", "ToolkitError", "UnwritableError", "UsageError"]
