"""Sessions in PostgreSQL: the `rt_sessions` table behind `SessionStore`, shared by many hosts.

Role: the PostgreSQL implementation of `runner.state.sessions.SessionStore`, opened by the
runtime's composition root when the Environment's `state:` is a PostgreSQL URL
(`runner.state.backends`). Columns, values and statements are the SQLite store's
(`sessions_codec`); leases make any number of runtime instances share the sessions safely
(`runner.state.sessions`).

Invariants: every statement runs on a pooled autocommit connection; `take_lease` and
`release` are single conditional UPDATEs (atomic under PostgreSQL's row locks); a session's
configuration is stored once per distinct configuration (`rt_session_config`). In a shared
database a row's `env` is stored as the project's key (`PgDatabase.env_key`): a session of
another project looks missing (`load` by id too).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from runner.state.pg_database import PgDatabase
from runner.state.sessions import Lease, SessionRow
from runner.state.sessions_codec import (
    EXPIRED,
    FREE_FOR,
    INSERT_COLUMNS,
    RELEASE,
    SELECT,
    UPDATE_STATE,
    config_digest,
    release_values,
    row_from,
    row_values,
    state_values,
)
from runner.state.sessions_sqlite import new_owner

__all__ = ["PostgresSessionStore", "pg_sql"]

_CONFIG_CACHE = 1024


def pg_sql(sql: str) -> str:
    """A statement written with `?` placeholders, for psycopg (`%s`)."""
    return sql.replace("?", "%s")


class PostgresSessionStore:
    """The `rt_sessions` table of a PostgreSQL state database (a `SessionStore`)."""

    def __init__(
        self,
        db: PgDatabase,
        *,
        owner: str | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._owner = owner or new_owner()
        self._now = wall_clock
        placeholders = ", ".join("%s" for _ in INSERT_COLUMNS.split(","))
        self._insert = f"INSERT INTO rt_sessions ({INSERT_COLUMNS}) VALUES ({placeholders})"
        self._update = pg_sql(UPDATE_STATE)
        self._release = pg_sql(RELEASE)
        self._select = pg_sql(SELECT)
        self._stored: set[str] = set()
        self._configs: dict[int, tuple[dict[str, Any], str, str]] = {}

    @property
    def owner(self) -> str:
        return self._owner

    def save(self, row: SessionRow, *, lease_until: float | None = None) -> None:
        """Write a new session's row (and its configuration when the database may lack it, in
        the same transaction; one statement when it has it)."""
        digest: str | None = None
        text = ""
        if row.config:
            cached = self._configs.get(id(row.config))
            if cached is not None and cached[0] is row.config:
                digest, text = cached[1], cached[2]
            else:
                digest, text = config_digest(row.config)
                if len(self._configs) >= _CONFIG_CACHE:
                    self._configs.clear()
                self._configs[id(row.config)] = (row.config, digest, text)
        if self._db.project:
            row = replace(row, env=self._db.env_key(row.env))
        if digest is None or digest in self._stored:
            with self._db.connect() as conn:
                conn.execute(self._insert, row_values(row, digest, self._owner, lease_until))
            return
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO rt_session_config (hash, config) VALUES (%s, %s) "
                "ON CONFLICT (hash) DO NOTHING",
                (digest, text),
            )
            conn.execute(self._insert, row_values(row, digest, self._owner, lease_until))
        if digest is not None:
            if len(self._stored) >= _CONFIG_CACHE * 16:
                self._stored.clear()
            self._stored.add(digest)

    def save_state(self, row: SessionRow) -> None:
        with self._db.connect() as conn:
            conn.execute(self._update, state_values(row, self._owner, self._now()))

    def save_counters(self, rows: Iterable[SessionRow]) -> None:
        now = self._now()
        values = [state_values(r, self._owner, now) for r in rows]
        if not values:
            return
        with self._db.write() as conn, conn.cursor() as cur:
            cur.executemany(self._update, values)

    # ------------------------------------------------------------ leases

    def take_lease(self, session_id: str, *, until: float) -> Lease | None:
        owns, params = self._db.owns_sql()  # another project's session is not leased
        with self._db.connect() as conn:
            found = conn.execute(
                pg_sql(
                    "UPDATE rt_sessions SET lease_owner = ?, lease_until = ? WHERE id = ? AND "
                    + FREE_FOR
                    + f" AND {owns} RETURNING written_by"
                ),
                (self._owner, until, session_id, self._owner, self._now(), *params),
            ).fetchone()
        if found is None:
            return None
        return Lease(stale=found[0] is not None and found[0] != self._owner)

    def renew_leases(self, session_ids: Iterable[str], *, until: float) -> None:
        ids = list(session_ids)
        if ids:
            with self._db.connect() as conn:
                conn.execute(
                    "UPDATE rt_sessions SET lease_until = %s WHERE id = ANY(%s) "
                    "AND lease_owner = %s",
                    (until, ids, self._owner),
                )

    def release(self, row: SessionRow) -> bool:
        with self._db.connect() as conn:
            cur = conn.execute(self._release, release_values(row, self._owner))
            return cur.rowcount > 0

    def release_many(self, rows: Iterable[SessionRow]) -> None:
        values = [release_values(r, self._owner) for r in rows]
        if values:
            with self._db.write() as conn, conn.cursor() as cur:
                cur.executemany(self._release, values)

    def written_elsewhere(self, session_ids: Iterable[str]) -> dict[str, str]:
        ids = list(session_ids)
        if not ids:
            return {}
        with self._db.connect() as conn:
            rows = conn.execute(
                "SELECT id, state FROM rt_sessions WHERE id = ANY(%s) "
                "AND written_by IS NOT NULL AND written_by != %s",
                (ids, self._owner),
            ).fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    # ------------------------------------------------------------ reads

    def load(self, session_id: str) -> SessionRow | None:
        with self._db.connect() as conn:
            found = conn.execute(f"{self._select} WHERE s.id = %s", (session_id,)).fetchone()
        if found is None or not self._db.owns_key(str(found[1])):
            return None  # another project's session looks missing
        return self._row(found)

    def _row(self, values: tuple[Any, ...]) -> SessionRow:
        row = row_from(values)
        return replace(row, env=self._db.env_name(row.env)) if self._db.project else row

    def load_open(self, env: str) -> list[SessionRow]:
        with self._db.connect() as conn:
            rows = conn.execute(
                f"{self._select} WHERE s.env = %s AND s.state != 'ended' ORDER BY s.created_at",
                (self._db.env_key(env),),
            ).fetchall()
        return [self._row(r) for r in rows]

    def load_expired(self, env: str, *, now: float, max_age: float | None) -> list[SessionRow]:
        born_before = now - max_age if max_age else float("-inf")
        with self._db.connect() as conn:
            rows = conn.execute(
                pg_sql(SELECT + EXPIRED), (self._db.env_key(env), now, born_before)
            ).fetchall()
        return [self._row(r) for r in rows]

    def close(self) -> None:
        """The database is the composition root's to close."""
