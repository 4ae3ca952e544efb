"""The turn log in the state's SQLite file (`rt_turns`), behind `runner.state.turn_log.TurnLog`.

Role: the runtime writes it on the session store's connection (`connection=`), so its writes
share that connection's transactions and never count as another process's; `runner report`
opens the file read-only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from runner.sqlitefile import write_transaction
from runner.state.turn_log import (
    SESSION_SPAN_SQL,
    TURN_COLUMNS,
    SessionSpan,
    TurnFigures,
    turn_from,
    turn_values,
)

__all__ = ["SqliteTurnLog"]


class SqliteTurnLog:
    def __init__(self, path: Path, *, connection: sqlite3.Connection | None = None) -> None:
        if connection is None:
            connection = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
            self._owns = True
        else:
            self._owns = False
        self._conn = connection
        marks = ", ".join("?" for _ in TURN_COLUMNS.split(","))
        self._insert = f"INSERT INTO rt_turns ({TURN_COLUMNS}) VALUES ({marks})"

    def append(self, rows: Sequence[TurnFigures]) -> None:
        if not rows:
            return
        with write_transaction(self._conn):
            self._conn.executemany(self._insert, [turn_values(r, r.env) for r in rows])

    def turns_between(self, env: str, since: float, until: float) -> list[TurnFigures]:
        found = self._conn.execute(
            f"SELECT {TURN_COLUMNS} FROM rt_turns WHERE env = ? AND at >= ? AND at < ? ORDER BY at",
            (env, since, until),
        )
        return [turn_from(r, env) for r in found]

    def sessions_between(self, env: str, since: float, until: float) -> list[SessionSpan]:
        found = self._conn.execute(SESSION_SPAN_SQL, (env, since, until, since, until))
        return [SessionSpan(*r) for r in found]

    def prune(self, env: str, before: float) -> int:
        with write_transaction(self._conn):
            done = self._conn.execute(
                "DELETE FROM rt_turns WHERE env = ? AND at < ?", (env, before)
            )
        return done.rowcount

    def close(self) -> None:
        if self._owns:
            self._conn.close()
