"""The turn log in a PostgreSQL state database (`rt_turns`), behind
`runner.state.turn_log.TurnLog`: the runtime's pool writes it, `runner report` reads it."""

from __future__ import annotations

from collections.abc import Sequence

from runner.state.pg_database import PgDatabase
from runner.state.sql_dialect import POSTGRESQL
from runner.state.turn_log import (
    SESSION_SPAN_SQL,
    TURN_COLUMNS,
    SessionSpan,
    TurnFigures,
    turn_from,
    turn_values,
)

__all__ = ["PostgresTurnLog"]


class PostgresTurnLog:
    def __init__(self, db: PgDatabase) -> None:
        self._db = db
        marks = ", ".join("%s" for _ in TURN_COLUMNS.split(","))
        self._insert = f"INSERT INTO rt_turns ({TURN_COLUMNS}) VALUES ({marks})"

    def append(self, rows: Sequence[TurnFigures]) -> None:
        if not rows:
            return
        with self._db.write() as conn, conn.cursor() as cur:
            cur.executemany(self._insert, [turn_values(r, self._db.env_key(r.env)) for r in rows])

    def turns_between(self, env: str, since: float, until: float) -> list[TurnFigures]:
        with self._db.connect() as conn:
            found = conn.execute(
                f"SELECT {TURN_COLUMNS} FROM rt_turns WHERE env = %s AND at >= %s AND at < %s "
                "ORDER BY at",
                (self._db.env_key(env), since, until),
            ).fetchall()
        return [turn_from(r, env) for r in found]

    def sessions_between(self, env: str, since: float, until: float) -> list[SessionSpan]:
        with self._db.connect() as conn:
            found = conn.execute(
                POSTGRESQL.sql(SESSION_SPAN_SQL),
                (self._db.env_key(env), since, until, since, until),
            ).fetchall()
        return [SessionSpan(*r) for r in found]

    def prune(self, env: str, before: float) -> int:
        with self._db.connect() as conn:
            done = conn.execute(
                "DELETE FROM rt_turns WHERE env = %s AND at < %s", (self._db.env_key(env), before)
            )
        return done.rowcount
