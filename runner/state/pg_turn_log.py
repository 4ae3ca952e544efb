"""The turn log in a PostgreSQL state database (`rt_turns`): `SqlTurnLog` on the database's
pool, environments keyed by project. The runtime's pool writes it, `runner report` reads it."""

from __future__ import annotations

from runner.state.pg_database import PgDatabase
from runner.state.sql_dialect import POSTGRESQL
from runner.state.turn_log import SqlTurnLog

__all__ = ["PostgresTurnLog"]


class PostgresTurnLog(SqlTurnLog):
    def __init__(self, db: PgDatabase) -> None:
        super().__init__(db, dialect=POSTGRESQL, keys=db)
