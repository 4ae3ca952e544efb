"""Sessions in the registry's SQLite file: the `rt_sessions` table, behind `SessionStore`.

Role: the SQLite implementation of `runner.state.sessions.SessionStore`. The runtime's
composition root (`runner.runtime.assembly`) opens it on the registry file and builds the
operator store (`runner.state.operators_sqlite`) on the same connection.

Invariants:
  - Only tables prefixed `rt_` are touched; the registry's tables are not read or written here.
  - A file made by an older runner gains what is newer on open (`runner.state.sqlite_schema`'s
    migrations), so its sessions keep working.
  - A session's effective configuration (`SessionRow.config`, fixed at creation, up to a few
    KiB with its structured inputs) is stored once per distinct configuration in
    `rt_session_config`, keyed by the sha256 of its JSON; the session row holds that key, so it
    stays small (it is rewritten on every state change and counter flush) and a million
    sessions of a few configurations store a few configurations.
  - One connection per store, used from one thread (the event loop's); autocommit, WAL journal,
    synchronous=NORMAL (durable across process crashes, not across power loss), busy timeout so
    an apply in another process never makes a write fail.
  - `data_version()` changes when another connection (another process, or the registry in this
    one) committed to the file: the runtime re-reads applied agents only then. Stores of the
    runtime that share the file share this connection (`connection`), so their own writes do
    not count as another's.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from runner.sqlitefile import write_transaction
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
from runner.state.sqlite_schema import migrate

__all__ = ["SqliteSessionStore", "new_owner", "open_connection"]


def new_owner() -> str:
    """A fresh instance id: host, pid and a random part (`RUNNER_HOSTNAME` overrides the host)."""
    host = os.environ.get("RUNNER_HOSTNAME") or socket.gethostname()
    return f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def open_connection(path: Path) -> sqlite3.Connection:
    """A connection to a runtime store file: autocommit, usable from the event loop's thread
    and worker threads, busy timeout (another process may apply meanwhile), synchronous=NORMAL
    (WAL is set by `prepare_database`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(
        str(path), isolation_level=None, check_same_thread=False, timeout=30.0
    )
    connection.execute("PRAGMA busy_timeout = 30000")
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


_CONFIG_CACHE = 1024


class SqliteSessionStore:
    """The `rt_sessions` table of the registry file (a `SessionStore`)."""

    def __init__(
        self,
        path: str | Path,
        *,
        owner: str | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self._owner = owner or new_owner()
        self._now = wall_clock
        self._conn = open_connection(self.path)
        migrate(self._conn, where=str(self.path))
        placeholders = ", ".join("?" * len(INSERT_COLUMNS.split(",")))
        self._insert = f"INSERT INTO rt_sessions ({INSERT_COLUMNS}) VALUES ({placeholders})"
        self._stored: set[str] = set()  # configuration hashes this store knows are in the file
        self._configs: dict[int, tuple[dict[str, Any], str, str]] = {}

    @property
    def owner(self) -> str:
        return self._owner

    @property
    def connection(self) -> sqlite3.Connection:
        """The store's connection, for other `rt_*` stores of the runtime to share: writes on a
        second connection would change `data_version()` and make the runtime re-read applied
        agents on every turn."""
        return self._conn

    def save(self, row: SessionRow, *, lease_until: float | None = None) -> None:
        """Write a new session's row (and its configuration when the file lacks it, in the same
        transaction)."""
        if not row.config:
            self._conn.execute(self._insert, row_values(row, None, self._owner, lease_until))
            return
        digest, text = self._config_text(row.config)
        if digest in self._stored:
            self._conn.execute(self._insert, row_values(row, digest, self._owner, lease_until))
            return
        with write_transaction(self._conn) as conn:
            conn.execute(
                "INSERT OR IGNORE INTO rt_session_config (hash, config) VALUES (?, ?)",
                (digest, text),
            )
            conn.execute(self._insert, row_values(row, digest, self._owner, lease_until))
        if len(self._stored) >= _CONFIG_CACHE * 16:
            self._stored.clear()  # bounded: INSERT OR IGNORE keeps it correct without it
        self._stored.add(digest)

    def _config_text(self, config: dict[str, Any]) -> tuple[str, str]:
        """(sha256, JSON) of a configuration; the runtime hands the same configuration object to
        every session that has it, so its JSON is made once."""
        cached = self._configs.get(id(config))
        if cached is not None and cached[0] is config:
            return cached[1], cached[2]
        digest, text = config_digest(config)
        if len(self._configs) >= _CONFIG_CACHE:
            self._configs.clear()
        self._configs[id(config)] = (config, digest, text)
        return digest, text

    def save_state(self, row: SessionRow) -> None:
        """Write what changes after creation (state change, end): one UPDATE, no JSON for the
        fields fixed at creation (pins, pools, preferences, features, configuration)."""
        self._conn.execute(UPDATE_STATE, state_values(row, self._owner, self._now()))

    def save_counters(self, rows: Iterable[SessionRow]) -> None:
        """Write turn counters, tokens, activity, answering agent and router state in one batch."""
        now = self._now()
        values = [state_values(r, self._owner, now) for r in rows]
        if not values:
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(UPDATE_STATE, values)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # ------------------------------------------------------------ leases

    def take_lease(self, session_id: str, *, until: float) -> Lease | None:
        found = self._conn.execute(
            "UPDATE rt_sessions SET lease_owner = ?, lease_until = ? WHERE id = ? AND "
            + FREE_FOR
            + " RETURNING written_by",
            (self._owner, until, session_id, self._owner, self._now()),
        ).fetchone()
        if found is None:
            return None
        return Lease(stale=found[0] is not None and found[0] != self._owner)

    def renew_leases(self, session_ids: Iterable[str], *, until: float) -> None:
        values = [(until, sid, self._owner) for sid in session_ids]
        if values:
            self._conn.executemany(
                "UPDATE rt_sessions SET lease_until = ? WHERE id = ? AND lease_owner = ?", values
            )

    def release(self, row: SessionRow) -> bool:
        cur = self._conn.execute(RELEASE, release_values(row, self._owner))
        return cur.rowcount > 0

    def release_many(self, rows: Iterable[SessionRow]) -> None:
        values = [release_values(r, self._owner) for r in rows]
        if not values:
            return
        with write_transaction(self._conn) as conn:
            conn.executemany(RELEASE, values)

    def written_elsewhere(self, session_ids: Iterable[str]) -> dict[str, str]:
        ids = list(session_ids)
        out: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            for sid, state in self._conn.execute(
                f"SELECT id, state FROM rt_sessions WHERE id IN ({marks}) "
                "AND written_by IS NOT NULL AND written_by != ?",
                (*chunk, self._owner),
            ):
                out[str(sid)] = str(state)
        return out

    # ------------------------------------------------------------ reads

    def load(self, session_id: str) -> SessionRow | None:
        found = self._conn.execute(f"{SELECT} WHERE s.id = ?", (session_id,)).fetchone()
        return None if found is None else row_from(found)

    def load_open(self, env: str) -> list[SessionRow]:
        """Every session of `env` that has not ended."""
        rows = self._conn.execute(
            f"{SELECT} WHERE s.env = ? AND s.state != 'ended' ORDER BY s.created_at", (env,)
        ).fetchall()
        return [row_from(r) for r in rows]

    def load_expired(self, env: str, *, now: float, max_age: float | None) -> list[SessionRow]:
        born_before = now - max_age if max_age else float("-inf")
        rows = self._conn.execute(SELECT + EXPIRED, (env, now, born_before)).fetchall()
        return [row_from(r) for r in rows]

    def data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        self._conn.close()
