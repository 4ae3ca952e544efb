"""The operator store in the registry's SQLite file: `rt_hq_*` and `rt_esc_*` tables.

Role: the SQLite backend of `runner.state.operators_sql.SqlOperatorStore` (statements, records
and the escalation buffer live there): one connection, `?` placeholders, environment names
stored as they are. The runtime's composition root builds it on the session store's connection
(`runner.state.sessions_sqlite`): writes on a second connection would change
`PRAGMA data_version` for the runtime and make it re-read the registry on every turn.

Invariants: the schema is brought up to date when the store opens; a batch (the escalation
buffer) is one `BEGIN IMMEDIATE` transaction; a connection the store was given stays open on
`close()`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from runner.state.operators_sql import SqlOperatorStore
from runner.state.sessions_sqlite import ConnectionRunner, open_connection
from runner.state.sql_dialect import SQLITE, UNSCOPED
from runner.state.sqlite_schema import migrate

__all__ = ["SqliteOperatorStore"]


class SqliteOperatorStore(SqlOperatorStore):
    """The `rt_hq_*` and `rt_esc_*` tables of the registry file (an `OperatorStore`)."""

    def __init__(self, path: str | Path, *, connection: sqlite3.Connection | None = None) -> None:
        self.path = Path(path)
        self._owns = connection is None
        self._conn = open_connection(self.path) if connection is None else connection
        migrate(self._conn, where=str(self.path))
        super().__init__(ConnectionRunner(self._conn), dialect=SQLITE, keys=UNSCOPED)

    def _release(self) -> None:
        if self._owns:
            self._conn.close()
