"""Errors every layer may raise for the user, and the exit codes they map to at the CLI edge.

A `UserError` is a failure the user can fix: its message names the file:line:col or the resource
address and says what to do. Layers raise it (or subclasses, e.g. the runtime's
`PoolLimitError`); only `runner.cli` turns it into a printed line and an exit code, so nothing
here imports the CLI and data keeps flowing forward (spec -> plan -> apply -> runtime -> cli).
"""

from __future__ import annotations

import re

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


# `scheme://user:password@host` (or `scheme://token@host`): the user-info part of a URL. Both
# runs are bounded (a scheme of up to 32 characters, credentials of up to 4,096), so scrubbing
# any text is linear in its length: unbounded, text like `a.a.a...://xxx...` made it quadratic.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,31}://)[^/\s@'\"<>]{1,4096}@")


def scrub_userinfo(text: str) -> str:
    """`text` with the credentials of every URL in it replaced: `https://***@host/...`.

    Endpoints, webhook and SMTP URLs may carry a user and password; no message, log line or
    error may repeat them."""
    return _USERINFO.sub(r"\1***@", text) if "@" in text else text


class UserError(Exception):
    """A failure the user can fix; the message says what to do. Printed without a traceback.
    Credentials in URLs the message quotes are scrubbed (`scrub_userinfo`)."""

    def __init__(self, message: str, *, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(scrub_userinfo(message))
        self.exit_code = exit_code
