"""The turn log in the state's SQLite file (`rt_turns`): `SqlTurnLog` on one connection.

Role: the runtime writes it on the session store's connection (`connection=`), so its writes
share that connection's transactions and never count as another process's; `runner report`
opens the file read-only.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from runner.state.sessions_sqlite import ConnectionRunner
from runner.state.sql_dialect import SQLITE, UNSCOPED
from runner.state.turn_log import SqlTurnLog

__all__ = ["SqliteTurnLog"]


class SqliteTurnLog(SqlTurnLog):
    def __init__(self, path: Path, *, connection: sqlite3.Connection | None = None) -> None:
        self._owns = connection is None
        if connection is None:
            connection = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
        self._conn = connection
        super().__init__(ConnectionRunner(connection), dialect=SQLITE, keys=UNSCOPED)

    def close(self) -> None:
        if self._owns:
            self._conn.close()
