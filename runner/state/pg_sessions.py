"""Sessions in PostgreSQL: the `rt_sessions` table behind `SessionStore`, shared by many hosts.

Role: the PostgreSQL backend of `runner.state.sessions_sql.SqlSessionStore` (statements,
leases, the configuration stored once, the reads live there), opened by the runtime's
composition root when the Environment's `state:` is a PostgreSQL URL (`runner.state.backends`):
a pooled connection per statement, `%s` placeholders, the database's project keys, and the
statements over a list of ids as one array parameter. Leases make any number of runtime
instances share the sessions safely (`runner.state.sessions`).

Invariants: every statement runs on a pooled autocommit connection; `take_lease` and
`release` are single conditional UPDATEs (atomic under PostgreSQL's row locks); a session's
configuration is stored once per distinct configuration (`rt_session_config`). In a shared
database a row's `env` is stored as the project's key (`PgDatabase.env_key`): a session of
another project looks missing (`load` by id too).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from runner.state.pg_database import PgDatabase
from runner.state.sessions_sql import SqlSessionStore
from runner.state.sql_dialect import POSTGRESQL

__all__ = ["PostgresSessionStore"]


class PostgresSessionStore(SqlSessionStore):
    """The `rt_sessions` table of a PostgreSQL state database (a `SessionStore`)."""

    def __init__(
        self,
        db: PgDatabase,
        *,
        owner: str | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(db, dialect=POSTGRESQL, keys=db, owner=owner, wall_clock=wall_clock)

    def renew_leases(self, session_ids: Iterable[str], *, until: float) -> None:
        ids = list(session_ids)
        if ids:
            self._execute(
                "UPDATE rt_sessions SET lease_until = %s WHERE id = ANY(%s) AND lease_owner = %s",
                (until, ids, self._owner),
            )

    def written_elsewhere(self, session_ids: Iterable[str]) -> dict[str, str]:
        ids = list(session_ids)
        if not ids:
            return {}
        rows = self._fetch(
            "SELECT id, state FROM rt_sessions WHERE id = ANY(%s) "
            "AND written_by IS NOT NULL AND written_by != %s",
            (ids, self._owner),
        )
        return {str(r[0]): str(r[1]) for r in rows}

    def close(self) -> None:
        """The database is the composition root's to close."""
