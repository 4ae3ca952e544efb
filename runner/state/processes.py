"""Is the process that holds a lock still running? Host-local liveness, safe against pid reuse.

Role in the flow: a registry's apply lock records its holder's host, pid and start token; a
later apply on the same host asks `process_alive` whether that holder is gone, and takes a dead
holder's lock over (see `runner.state.sqlite_lock`). Nothing here is specific to a storage
backend.

Invariants: a zombie counts as dead; with a start token (`process_start_token` when the pid was
recorded: the boot id and the start time in clock ticks, /proc/<pid>/stat field 22) a pid now
held by another process counts as dead too. Where /proc is not available a live pid is trusted
as is.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["process_alive", "process_start_token"]


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start_token(pid: int) -> str | None:
    """What tells process `pid` from a later process reusing its number: the boot id and the
    start time in clock ticks since boot (/proc/<pid>/stat field 22). None where /proc is not
    available (then a live pid is trusted as is)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # fields from the 3rd on follow the parenthesised command name (which may hold spaces)
    fields = stat.rpartition(")")[2].split()
    if len(fields) < 20:
        return None
    return f"{_boot_id()}:{fields[19]}"


def process_alive(pid: int, *, start_token: str | None = None) -> bool:
    """Whether process `pid` runs on this host (a zombie counts as dead). With `start_token`
    (from `process_start_token` when the pid was recorded), a pid now held by another process
    counts as dead too."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # the state letter follows the parenthesised command name
    if stat.rpartition(")")[2].split()[:1] == ["Z"]:
        return False
    return start_token is None or process_start_token(pid) in (None, start_token)
