"""The edge where exceptions become messages (the exit codes are `runner.errors`').

0 ok, 1 problems found / operation failed, 2 usage error (or changes, for --detailed-exitcode),
3 internal error. An unexpected exception prints one line and writes its traceback to a log file;
no traceback ever reaches the user.
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
import tempfile
import traceback
from pathlib import Path

from runner.errors import EXIT_INTERNAL, scrub_userinfo

__all__ = ["end_on_closed_pipe", "log_dir", "report_internal_error"]


def log_dir() -> Path:
    configured = os.environ.get("RUNNER_LOG_DIR")
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / "runner-logs"


def end_on_closed_pipe() -> int:
    """The reader closed our stdout (`runner history ... | head -1`): stop quietly, exit 0.

    stdout is pointed at /dev/null so the interpreter's final flush has nowhere to fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (a captured stream): nothing to do
        pass
    return 0


def report_internal_error(exc: BaseException) -> int:
    """Write the traceback to a log file, print one line naming it, return exit code 3."""
    directory = log_dir()
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
    path = directory / f"runner-crash-{stamp}-{os.getpid()}.log"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(scrub_userinfo("".join(traceback.format_exception(exc))), encoding="utf-8")
        where = str(path)
    except OSError:
        where = "nowhere (log directory not writable; set RUNNER_LOG_DIR)"
    summary = scrub_userinfo(str(exc).splitlines()[0]) if str(exc) else ""
    print(
        f"runner: internal error: {type(exc).__name__}: {summary} (traceback in {where})",
        file=sys.stderr,
    )
    return EXIT_INTERNAL
