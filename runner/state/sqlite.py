"""The Registry Protocol on SQLite: one file on one host, the project's `.runner/state.db`.

Role in the flow: the planner reads `applied(env)`; the executor writes each outcome the moment
it happens (`record_*`) and holds the environment's lock for a whole apply (`lock`), announcing
its remote writes in it (`record_write_started`/`record_write_finished`: the executor's
`WriteFence`); the runtime reads bodies of teams, pools, alerts and channels. The same file holds
the runtime's own tables (prefixed `rt_`, written only by the runtime's stores); the schema of
the whole file is `sqlite_schema`'s numbered migrations, applied by whichever store opens first.

The statements and flows (applied state, journal, project ownership) are
`runner.state.registry_sql`'s, written once for both backends; this module says only what is
SQLite's:
  `sqlite_database`  the file: a connection per call, write transactions that queue;
  `sqlite_lock`      the apply lock per environment, dead-holder takeover and the write fence;
and here: environment names stored as they are (one project per file), a read-only registry
(`open_read_only`: a missing file reads as empty, a file from before projects has no owner), a
record that does not decode is a corrupt file (`StateFileError`), and the idle connection.

Invariants:
  - WAL mode and a busy timeout: readers never block the writer, writers queue instead of
    failing. Every write is one transaction. One idle connection stays open for the registry's
    life: closing the *last* connection checkpoints the WAL with an fsync (~5 ms a write
    otherwise, ~0.2 ms with it).
  - As `registry_sql`'s: a change and its journal entry in one transaction; bodies stored as
    written; `claim_project` refuses another project with nothing changed, and the first claim
    adopts records made before projects.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from runner.state.base import AppliedResource
from runner.state.errors import StateFileError, state_file_errors
from runner.state.registry_sql import SqlRegistry
from runner.state.sql_dialect import SQLITE, UNSCOPED
from runner.state.sqlite_database import RegistryDatabase
from runner.state.sqlite_lock import SqliteApplyLock

__all__ = ["SqliteRegistry"]


class SqliteRegistry(SqlRegistry):
    """The Registry Protocol on one SQLite file (created, with its folder, on first use)."""

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 0.05,
        busy_timeout_ms: int = 30_000,
        on_notice: Callable[[str], None] | None = None,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._db = RegistryDatabase(self.path, busy_timeout_ms=busy_timeout_ms, read_only=read_only)
        locks = SqliteApplyLock(
            self._db,
            clock=clock,
            wall_clock=wall_clock,
            sleep=sleep,
            poll_interval=poll_interval,
            on_notice=on_notice,
        )
        super().__init__(
            self._db,
            dialect=SQLITE,
            keys=UNSCOPED,
            locks=locks,
            where=self.path,
            wall_clock=wall_clock,
        )
        self._keeper: sqlite3.Connection | None = None
        if read_only:
            return
        with state_file_errors(self.path):
            self._keeper = sqlite3.connect(self.path, check_same_thread=False)
            self._keeper.execute("SELECT 1 FROM registry_locks LIMIT 1").fetchall()

    @classmethod
    def open_read_only(cls, path: str | Path) -> SqliteRegistry:
        """The registry at `path` for reading only (`runner plan`): creates no file or folder and
        writes nothing; a missing file reads as an empty registry."""
        return cls(path, read_only=True)

    def _readable(self) -> bool:
        """False for a read-only registry whose file does not exist (it reads as empty)."""
        return not self.read_only or self._db.exists

    def _resource(self, row: Sequence[Any]) -> AppliedResource:
        try:
            return super()._resource(row)
        except (ValueError, TypeError) as exc:  # a bit flipped inside a record
            raise StateFileError(
                self.path,
                f"{self.path}: the state file is corrupt (a record does not decode: {exc}); "
                "restore it from a backup, or move it aside to start afresh",
            ) from exc

    def project_of(self, env: str) -> str | None:
        """The runner project that applied `env` through this registry (None: none recorded,
        or a file from before projects opened read-only, without the table)."""
        if not self._readable():
            return None
        with self._db.connect() as conn:
            try:
                row = conn.execute(self._sql.project, (env,)).fetchone()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return None
                raise
        return None if row is None else str(row[0])

    def close(self) -> None:
        """Release the idle connection and the kept writer (reads live for one call); reads and
        writes still work after it, only slower."""
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.close()
        self._db.close()
