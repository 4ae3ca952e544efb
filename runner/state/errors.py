"""A state file that cannot be used -> one line naming the file and what to do (exit 1, not 3).

Role in the flow: every SQLite call of the registry runs inside `state_file_errors(path)`, so a
corrupt file (truncated, garbage, bit-flipped), an unreadable one, a read-only folder or a full
disk reaches the user as a `StateFileError` (a `UserError`) instead of an internal error that
names no file. A busy database is not translated here: the busy timeout and the apply lock own
waiting, and their errors already say what to do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runner.errors import UserError

__all__ = ["StateFileError", "describe_state_error", "state_file_errors"]


class StateFileError(UserError):
    """A state file runner cannot read or write; the message names it and what to do."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


def describe_state_error(path: Path, exc: BaseException) -> str | None:
    """The one-line message for `exc` raised on the state file `path` (None: not a file error)."""
    reason = (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).strip()
    low = reason.lower()
    if "locked" in low or "busy" in low:
        return None
    if "full" in low or "no space" in low or "too large" in low or "quota" in low:
        return (
            f"{path}: cannot write the state file: {reason}; free space on that disk (or set "
            "RUNNER_HOME to a folder on another), then run the command again"
        )
    if "malformed" in low or "not a database" in low or "corrupt" in low or "encrypted" in low:
        return (
            f"{path}: the state file is corrupt ({reason}); restore it from a backup, or move "
            "it aside to start afresh (runner then no longer knows what it applied: `runner "
            "import NAME` adopts existing agents)"
        )
    if "readonly" in low or "read-only" in low or "permission" in low or "access" in low:
        return (
            f"{path}: cannot write the state file ({reason}); make {path.parent} writable by "
            "this user, or set RUNNER_HOME to a writable folder"
        )
    if "i/o error" in low:
        return (
            f"{path}: cannot use the state file ({reason}: the disk may be full or failing); "
            "free space on that disk (or set RUNNER_HOME to a folder on another), then run the "
            "command again"
        )
    if "unable to open" in low or isinstance(exc, OSError):
        return (
            f"{path}: cannot open the state file ({reason}); check that {path.parent} exists "
            "and is readable and writable by this user, or set RUNNER_HOME to a folder that is"
        )
    if isinstance(exc, sqlite3.DatabaseError):
        return (
            f"{path}: the state file cannot be used ({reason}); restore it from a backup, or "
            "move it aside to start afresh"
        )
    return None


@contextmanager
def state_file_errors(path: Path) -> Iterator[None]:
    """Turn SQLite and OS errors on `path` into a `StateFileError` saying what to do."""
    try:
        yield
    except (sqlite3.DatabaseError, OSError) as exc:
        message = describe_state_error(path, exc)
        if message is None:
            raise
        raise StateFileError(path, message) from exc
