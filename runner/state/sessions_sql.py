"""The session store written once over SQL: each statement and each flow of `SessionStore`.

Role: `SqlSessionStore` is `runner.state.sessions.SessionStore` for both databases. Here, once:
the statements on `rt_sessions` and `rt_session_config` (`sessions_codec`'s, written with `?`
placeholders, put in the backend's `SqlDialect` when the store is made), how a new session's
configuration is stored once per distinct configuration, the leases, the writes of state and
counters, and the reads. A backend subclass (`sessions_sqlite.SqliteSessionStore`,
`pg_sessions.PostgresSessionStore`) gives only what truly differs: how its statements reach its
database (a `SqlRunner`: SQLite's one connection, PostgreSQL's pool), how it stores environment
names (`EnvKeys`: PostgreSQL's
`PROJECT#ENV`, another project's sessions looking missing), and the statements over a list of
ids (`renew_leases`, `written_elsewhere`: SQLite's `IN`, PostgreSQL's `ANY` of an array).

Invariants:
  - A new session is one statement when its configuration is known to be stored already (or it
    has none); else the configuration (inserted unless there) and the row in one transaction.
    The configuration's JSON is made once per configuration object (the runtime hands the same
    object to every session that has it); both caches are bounded, and inserting a
    configuration that is there already changes nothing, so forgetting one is harmless.
  - `save_state`, `take_lease` and `release` are one conditional statement each (atomic on
    both databases); `save_counters` and `release_many` are one transaction each.
  - Sessions of environments that are not the store's own (`EnvKeys.owns_sql`) look missing.
"""

from __future__ import annotations

import os
import socket
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

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
from runner.state.sql_dialect import EnvKeys, SqlDialect, SqlRunner

__all__ = ["SqlSessionStore", "new_owner"]

_CONFIG_CACHE = 1024


def new_owner() -> str:
    """A fresh instance id: host, pid and a random part (`RUNNER_HOSTNAME` overrides the host)."""
    host = os.environ.get("RUNNER_HOSTNAME") or socket.gethostname()
    return f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class _Statements:
    """Every statement of the store, in one dialect, with the store's ownership condition."""

    def __init__(self, dialect: SqlDialect, owns: str, owns_selected: str) -> None:
        sql = dialect.sql
        marks = ", ".join("?" for _ in INSERT_COLUMNS.split(","))
        self.insert = sql(f"INSERT INTO rt_sessions ({INSERT_COLUMNS}) VALUES ({marks})")
        self.insert_config = sql(
            "INSERT INTO rt_session_config (hash, config) VALUES (?, ?) "
            "ON CONFLICT (hash) DO NOTHING"
        )
        self.update_state = sql(UPDATE_STATE)
        self.release = sql(RELEASE)
        # `owns` is in the dialect already: spliced after `sql`
        lease = "UPDATE rt_sessions SET lease_owner = ?, lease_until = ? WHERE id = ? AND "
        self.take_lease = sql(lease + FREE_FOR) + f" AND {owns} RETURNING written_by"
        self.load = sql(f"{SELECT} WHERE s.id = ?") + f" AND {owns_selected}"
        self.load_open = sql(
            f"{SELECT} WHERE s.env = ? AND s.state != 'ended' ORDER BY s.created_at"
        )
        self.load_expired = sql(SELECT + EXPIRED)


class SqlSessionStore(ABC):
    """The sessions of one database (module docstring), its statements run by `run`; a subclass
    adds the statements over a list of ids, and what it opened to close."""

    def __init__(
        self,
        run: SqlRunner,
        *,
        dialect: SqlDialect,
        keys: EnvKeys,
        owner: str | None,
        wall_clock: Callable[[], float],
    ) -> None:
        self._execute = run.execute  # bound once: `save`, `save_state`, `release` are hot
        self._fetch = run.fetch
        self._execute_batches = run.execute_batches
        self._keys = keys
        self._owner = owner or new_owner()
        self._now = wall_clock
        owns, self._owns_params = keys.owns_sql()
        owns_selected, self._load_params = keys.owns_sql("s.env")  # in `SELECT`'s join
        self._sql = _Statements(dialect, owns, owns_selected)
        self._stored: set[str] = set()  # configuration hashes known to be in the database
        self._configs: dict[int, tuple[dict[str, Any], str, str]] = {}

    # ------------------------------------------------------------ what a backend gives

    @abstractmethod
    def renew_leases(self, session_ids: Iterable[str], *, until: float) -> None:
        """Extend this instance's leases of `session_ids` to `until`."""

    @abstractmethod
    def written_elsewhere(self, session_ids: Iterable[str]) -> dict[str, str]:
        """id -> state of those of `session_ids` another instance wrote last."""

    @abstractmethod
    def close(self) -> None:
        """Let go of what the store opened (not a database it was given)."""

    # ------------------------------------------------------------ writes

    @property
    def owner(self) -> str:
        return self._owner

    def save(self, row: SessionRow, *, lease_until: float | None = None) -> None:
        """Write a new session's row (and its configuration when the database may lack it, in
        the same transaction; one statement when it has it)."""
        digest, text = self._config_text(row.config) if row.config else (None, "")
        key = self._keys.env_key(row.env)
        if key != row.env:
            row = replace(row, env=key)
        values = row_values(row, digest, self._owner, lease_until)
        if digest is None or digest in self._stored:
            self._execute(self._sql.insert, values)
            return
        self._execute_batches(
            [(self._sql.insert_config, [(digest, text)]), (self._sql.insert, [values])]
        )
        if len(self._stored) >= _CONFIG_CACHE * 16:
            self._stored.clear()
        self._stored.add(digest)

    def _config_text(self, config: dict[str, Any]) -> tuple[str, str]:
        """(sha256, JSON) of a configuration, made once per configuration object."""
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
        self._execute(self._sql.update_state, state_values(row, self._owner, self._now()))

    def save_counters(self, rows: Iterable[SessionRow]) -> None:
        """Write turn counters, tokens, activity, answering agent and router state in one batch."""
        now = self._now()
        values = [state_values(r, self._owner, now) for r in rows]
        if values:
            self._execute_batches([(self._sql.update_state, values)])

    # ------------------------------------------------------------ leases

    def take_lease(self, session_id: str, *, until: float) -> Lease | None:
        params = (self._owner, until, session_id, self._owner, self._now(), *self._owns_params)
        found = self._fetch(self._sql.take_lease, params)
        if not found:
            return None
        written_by = found[0][0]
        return Lease(stale=written_by is not None and written_by != self._owner)

    def release(self, row: SessionRow) -> bool:
        return self._execute(self._sql.release, release_values(row, self._owner)) > 0

    def release_many(self, rows: Iterable[SessionRow]) -> None:
        values = [release_values(r, self._owner) for r in rows]
        if values:
            self._execute_batches([(self._sql.release, values)])

    # ------------------------------------------------------------ reads

    def load(self, session_id: str) -> SessionRow | None:
        found = self._fetch(self._sql.load, (session_id, *self._load_params))
        return self._row(found[0]) if found else None

    def load_open(self, env: str) -> list[SessionRow]:
        """Every session of `env` that has not ended."""
        rows = self._fetch(self._sql.load_open, (self._keys.env_key(env),))
        return [self._row(r) for r in rows]

    def load_expired(self, env: str, *, now: float, max_age: float | None) -> list[SessionRow]:
        born_before = now - max_age if max_age else float("-inf")
        rows = self._fetch(self._sql.load_expired, (self._keys.env_key(env), now, born_before))
        return [self._row(r) for r in rows]

    def _row(self, values: Sequence[Any]) -> SessionRow:
        row = row_from(values)
        name = self._keys.env_name(row.env)
        return row if name == row.env else replace(row, env=name)
