"""The Registry Protocol on PostgreSQL: applied state, journal and apply lock shared by many hosts.

Role in the flow: what `runner.state.sqlite.SqliteRegistry` is for one host, for any number of
hosts: an Environment's `state: postgresql://...` makes the CLI's plan/apply/history and the
runtime read and write here (`runner.state.backends`). The statements and flows are
`runner.state.registry_sql`'s, written once for both backends; this module says only what is
PostgreSQL's: the database's pool (`pg_database`), the apply lock as an advisory lock
(`pg_lock`), environments stored as the project's keys (`PROJECT#ENV` in a shared database,
another project's environments invisible), and `data_version`.

Invariants: as `registry_sql`'s (a change and its journal entry in one transaction, bodies
stored as written); `data_version()` moves whenever anyone (any host) journals a change, so a
runtime re-reads applied agents only then.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from runner.state.pg_database import PgDatabase
from runner.state.pg_lock import PgApplyLock
from runner.state.registry_sql import SqlRegistry
from runner.state.sql_dialect import POSTGRESQL

__all__ = ["PostgresRegistry"]


class PostgresRegistry(SqlRegistry):
    """The Registry Protocol on a PostgreSQL database (`db` may be shared with the runtime's
    stores; `close` closes it when this registry opened it, or was told it owns it)."""

    def __init__(
        self,
        db: PgDatabase | str,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 0.05,
        on_notice: Callable[[str], None] | None = None,
        owns_database: bool = False,
        project: str = "",
    ) -> None:
        self._owns = isinstance(db, str) or owns_database
        self._db = PgDatabase(db, project=project) if isinstance(db, str) else db
        self.where = self._db.where
        locks = PgApplyLock(
            self._db,
            clock=clock,
            wall_clock=wall_clock,
            sleep=sleep,
            poll_interval=poll_interval,
            on_notice=on_notice,
        )
        super().__init__(
            self._db,
            dialect=POSTGRESQL,
            keys=self._db,
            locks=locks,
            where=self.where,
            wall_clock=wall_clock,
        )

    def data_version(self) -> int:
        """Moves whenever anyone journals a change (every registry write does)."""
        with self._db.connect() as conn:
            row = conn.execute("SELECT COALESCE(MAX(id), 0) FROM registry_journal").fetchone()
        return 0 if row is None else int(row[0])

    def close(self) -> None:
        if self._owns:
            self._db.close()
